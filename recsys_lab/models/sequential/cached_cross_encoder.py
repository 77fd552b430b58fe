"""Cached cross-encoder: HSTU's M-FALCON (Zhai et al., "Actions Speak Louder than Words", ICML 2024).

The cross-encoder's score with the prefix mask (``CrossEncoderRanker``, history_attends_candidate
False) is

    s(u, i) = <Enc([h; i])_last, e_i> + b_i,   the history h never attending to the candidate i,

so the history's keys and values are the same for every candidate. They are computed once per
request (``SequenceEncoder.encode_prefix``) and all C candidates join one pass as extra tokens,
each attending to the cached history and to itself, never to another candidate
(``SequenceEncoder.candidates``). Every candidate gets exactly its own per-candidate pass's score;
the cost per request falls from C n (24 (L+1) d^2 + 4 (L+1)^2 d) to
n (24 L d^2 + 4 L^2 d) + C n (24 d^2 + 4 (L+1) d), i.e. n (L^2 + C L) token pairs in attention
instead of C n L^2 (``cost_model("cached_cross", ...)``).

Training uses the same one-pass form: each history with its target and ``n_negatives`` (default
127) negatives, ``hard_fraction`` of them mined from the first stage (``mine_negatives_from``), as
extra tokens of a single pass, a softmax over the 1 + n_negatives scores. The per-candidate
cross-encoder would pay 1 + n_negatives full passes per example for the same loss.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .cost_model import cost_model
from .cross_encoder import _PASS_ELEMENTS, CrossEncoderRanker
from .data import last_window


@dataclass(eq=False)
class CachedCrossEncoder(CrossEncoderRanker):
    """The cross-encoder served and trained by M-FALCON: scores equal ``CrossEncoderRanker``'s
    with the same weights, at n (L^2 + C L) attention cost per request.

    >>> CachedCrossEncoder(n_negatives=127).mine_negatives_from(ease).fit(train, valid)
    """

    n_negatives: int = 127

    def _check_config(self):
        super()._check_config()
        if self.history_attends_candidate:
            raise ValueError("CachedCrossEncoder needs history_attends_candidate=False: with it True "
                             "the history's states depend on each candidate and cannot be cached")
        if int(self.n_negatives) < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives!r}")

    def compute_loss(self, module, batch):
        tokens, cand = batch                                          # [B, L], [B, 1 + n_neg]
        logits = module.forward_shared(tokens, cand)                  # one pass per history
        return F.cross_entropy(logits, torch.zeros(len(cand), dtype=torch.long, device=cand.device))

    def _score_candidates(self, users, cand):
        tok = torch.as_tensor(self._windows(users, last_window, self.max_len), device=self.device_)
        per_pass = max(1, _PASS_ELEMENTS // self.embedding_size)      # candidate tokens per pass
        step = max(1, per_pass // cand.shape[1])                      # histories per pass
        out = []
        for lo in range(0, len(users), step):
            kv, keep = self.module_.enc.encode_prefix(tok[lo:lo + step])   # the history, once
            out.append(torch.cat([self.module_.score_cached(kv, keep, c)   # [step, C] by chunks
                                  for c in cand[lo:lo + step].split(per_pass, 1)], 1))
        return torch.cat(out)

    def score_users(self, module, users):
        u = users.cpu().numpy()
        return self._score_candidates(u, torch.arange(self.n_items_, device=self.device_).expand(len(u), -1))

    def serving_flops(self, n_candidates: int, history: int | None = None) -> dict:
        return cost_model("cached_cross", history or self.max_len, n_candidates,
                          self.embedding_size, self.n_layers)


def served_by_cache(model: CrossEncoderRanker) -> CachedCrossEncoder:
    """A ``CachedCrossEncoder`` sharing ``model``'s weights and user state (histories, seen
    items): the same scores as the naive per-candidate passes, from one pass per history."""
    model._check_fitted()
    if model.history_attends_candidate:
        raise ValueError("history_attends_candidate=True: the naive scores have no cached form")
    twin = CachedCrossEncoder(**{k: v for k, v in model.get_config().items()})
    twin.__dict__.update({k: v for k, v in vars(model).items() if k not in vars(twin)
                          or k.endswith("_") or k.startswith("_")})
    return twin
