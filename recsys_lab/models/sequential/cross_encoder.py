"""Cross-encoder (early interaction, BST-style, Chen et al. 2019): one pass per candidate.

    s(u, i) = <Enc([h; i])_last, e_i> + b_i

where the candidate i joins the history h (the last L = ``max_len`` items) as one extra token
(its item embedding plus a learned type vector) that attends to the history in every layer.
By default the history does not attend back to the candidate (``history_attends_candidate=False``,
the prefix mask of HSTU's M-FALCON, Zhai et al. ICML 2024): the history's states are then the same
for every candidate, which is what lets ``CachedCrossEncoder`` score all C candidates in one pass
with exactly these scores. ``history_attends_candidate=True`` is BST's full bidirectional
attention (the history's states depend on the candidate; not cacheable). Either way it costs one
transformer pass per candidate per request, so it is meant to re-rank the C candidates of a first
stage (``TwoStage``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..sampling import HardNegativeMiner, NegativeSampler
from .cost_model import cost_model
from .data import last_window
from .encoder import EncoderConfig, SequenceEncoder
from .history import SequentialRecommender

_PASS_ELEMENTS = 1 << 22  # [sequences x tokens x d] activations per encoder call (16 MB float32)


class CrossEncoder(nn.Module):
    """[history; candidate] -> Enc -> <h_candidate, e_candidate> + b_candidate."""

    def __init__(self, cfg: EncoderConfig, history_attends_candidate: bool = False):
        super().__init__()
        self.enc = SequenceEncoder(cfg)                               # cfg.n_extra = 1: the type
        self.bias = nn.Parameter(torch.zeros(cfg.n_items))            # [N] item bias
        self.history_attends_candidate = history_attends_candidate

    def _head(self, h: torch.Tensor, e: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Candidate states h [B, C, d], their item vectors e [B, C, d] -> scores [B, C]."""
        return (h * e).sum(-1) + self.bias[cand]

    def forward(self, tokens: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Naive: one pass per (history, candidate). tokens [B, L], cand [B, C] -> scores [B, C]."""
        B, C = cand.shape
        e = self.enc.item(cand + 1)                                   # [B, C, d]
        x = tokens.repeat_interleave(C, 0)                            # [B*C, L]
        extra = (e + self.enc.extra).reshape(B * C, 1, -1)            # [B*C, 1, d] type + item
        h = self.enc(x, extra, isolate_extra=not self.history_attends_candidate)[:, -1]  # [B*C, d]
        return self._head(h.view(B, C, -1), e, cand)

    def forward_shared(self, tokens: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """M-FALCON: the history encoded once, all C candidates as isolated extra tokens of one
        pass; equal to ``forward`` (prefix mask). tokens [B, L], cand [B, C] -> scores [B, C]."""
        return self.score_cached(*self.enc.encode_prefix(tokens), cand)

    def score_cached(self, kv: list, keep: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """Scores [B, C] of candidates cand [B, C] against cached history keys/values (``kv``,
        ``keep`` from ``enc.encode_prefix``)."""
        if self.history_attends_candidate:
            raise ValueError("history_attends_candidate=True: the history's states depend on the "
                             "candidate, so there is no candidate-independent cache to reuse")
        e = self.enc.item(cand + 1)                                   # [B, C, d]
        return self._head(self.enc.candidates(kv, keep, e + self.enc.extra), e, cand)


@dataclass(eq=False)
class CrossEncoderRanker(SequentialRecommender):
    """Cross-encoder: one transformer pass over [history; candidate] per candidate.

    Trained with softmax over the target and ``n_negatives`` negatives (half uniform, half by
    popularity^0.75; with ``mine_negatives_from(first_stage)``, ``hard_fraction`` of them from the
    first stage's top-100 for the same history, as re-rankers are trained on first-stage results).
    Its full-catalog ``score`` is exact but costs n_items passes per user; it is meant to re-rank
    C candidates (``TwoStage``). Early stopping on ``valid_users`` validation users: with a
    miner, the two-stage NDCG@10 of re-ranking the first stage's top-``top`` unseen items (0 when
    the validation item is not among them); without one, a labelled proxy, NDCG@10 of the
    validation item among it and 99 popularity-sampled negatives.
    """

    n_negatives: int = 15
    batch_size: int = 32
    valid_users: int = 500
    hard_fraction: float = 0.5
    history_attends_candidate: bool = False

    def mine_negatives_from(self, first_stage, top: int = 100) -> "CrossEncoderRanker":
        """Draw ``hard_fraction`` of the negatives from ``first_stage``'s top-``top`` items for
        the same history (the candidates this ranker will re-rank), the rest as before. The first
        stage is any fitted ``WindowScorer`` (TwoTower, late interaction, SASRec, EASE)."""
        self._miner = HardNegativeMiner(first_stage, top)
        return self

    def build_module(self):
        module = CrossEncoder(self.encoder_config(n_extra=1), bool(self.history_attends_candidate))
        return self._initialised(module, module.enc.item, module.bias)

    def prepare(self, train):
        super().prepare(train)
        self._uniform = NegativeSampler(self.seen_, "uniform")
        self._popular = NegativeSampler(self.seen_, "popularity")

    def _negatives(self, users, n, rng):
        if n <= 0:
            return np.zeros((len(users), 0), dtype=np.int64)
        half = n // 2
        parts = [self._popular.sample(users, rng, half)] if half else []
        parts.append(self._uniform.sample(users, rng, n - half))
        return np.concatenate(parts, 1)

    def make_batch(self, start, t, target, rng):
        users = np.searchsorted(self.seq_ptr_, start, side="right") - 1
        tokens = last_window(self.seq_items_, start, t, self.max_len)
        miner = self.__dict__.get("_miner")
        n_hard = int(round(self.hard_fraction * self.n_negatives)) if miner else 0
        neg = [self._negatives(users, self.n_negatives - n_hard, rng)]
        if n_hard:
            neg.append(miner.sample(tokens, target, n_hard, rng))
        cand = np.concatenate([target[:, None], *neg], 1)
        return self.to_tensors(tokens, cand)

    def compute_loss(self, module, batch):
        tokens, cand = batch                                          # [B, L], [B, 1 + n_neg]
        logits = module(tokens, cand)
        return F.cross_entropy(logits, torch.zeros(len(cand), dtype=torch.long, device=cand.device))

    def _score_candidates(self, users, cand):
        tok = torch.as_tensor(self._windows(users, last_window, self.max_len), device=self.device_)
        per_pass = max(1, _PASS_ELEMENTS // ((self.max_len + 1) * self.embedding_size))
        if cand.shape[1] > per_pass:                                  # huge C: chunk candidates
            return torch.cat([torch.cat([self.module_(tok[r:r + 1], c) for c in cand[r:r + 1].split(per_pass, 1)], 1)
                              for r in range(len(users))])
        step = max(1, per_pass // cand.shape[1])                      # ~per_pass sequences per pass
        return torch.cat([self.module_(tok[lo:lo + step], cand[lo:lo + step])
                          for lo in range(0, len(users), step)])

    def score_users(self, module, users):
        u = users.cpu().numpy()
        cand = torch.arange(self.n_items_, device=self.device_).expand(len(u), -1)
        with torch.inference_mode():
            return self._score_candidates(u, cand)

    def validation_score(self, valid):
        """Early stopping: two-stage NDCG@10 over the miner's top items, else the sampled proxy."""
        rng = np.random.default_rng(self.seed)
        users, pos = valid.user.astype(np.int64), valid.item.astype(np.int64)
        if len(users) > self.valid_users:
            keep = np.sort(rng.choice(len(users), self.valid_users, replace=False))
            users, pos = users[keep], pos[keep]
        miner = self.__dict__.get("_miner")
        if miner is not None:
            tokens = self._windows(users, last_window, self.max_len)
            cand = miner.top_items(tokens, exclude=self.seen_[users])[0]           # [n, top]
        else:
            cand = np.concatenate([pos[:, None], self._popular.sample(users, rng, 99)], 1)
        s = self.score_candidates(users, cand)
        hit = cand == pos[:, None]                                    # the validation item's slot
        s_pos = np.where(hit, s, -np.inf).max(1)                      # [n] (-inf: not a candidate)
        ahead = (s > s_pos[:, None]) | ((s == s_pos[:, None]) & (cand < pos[:, None]))  # ties.py rule
        rank = ahead.sum(1)                                           # 0-based rank of the item
        return float(np.where(hit.any(1) & (rank < 10), 1 / np.log2(rank + 2), 0.0).mean())

    def serving_flops(self, n_candidates: int, history: int | None = None) -> dict:
        return cost_model("cross", history or self.max_len, n_candidates, self.embedding_size,
                          self.n_layers)
