"""Multi-segment late interaction: the operator, the cached-vector model family, and the model.

With h = the user's time-ordered history, e_i = item vectors (the tied input embeddings, encoded
offline), Enc = ``SequenceEncoder``:

    MultiSegmentLateInteraction s(u, i) = max_k <v_k, e_i> + b_i                          ("maxsim")
                                        or sum_k softmax_k(beta <v_k, e_i>) <v_k, e_i> + b_i  ("attention")

where the late-interaction vectors v_k (k = 1..S*m) are the outputs of m learned query tokens
appended to each of the S segments, each encoded on its own (attention inside a segment only,
cost S (L/S)^2 instead of L^2), plus a learned segment-age vector. Finished segments are cached
per user; ``update(user, item)`` re-encodes only the open segment. With S = 1 and m = 1 the late
interaction is the two-tower formula (``TwoTower`` is that special case of ``CachedVectorModel``).
MaxSim is ColBERT's operator (Khattab & Zaharia, SIGIR 2020); the attention form is DIN-style
target attention (Zhou et al., KDD 2018) over the vectors, which tends to MaxSim as beta -> inf
and to mean pooling (a two-tower) as beta -> 0. Trained with softmax cross-entropy over the
whole catalog.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capabilities import MultiVectorModel
from ..sampling import WindowScorer
from ..torch_base import minibatches
from .cost_model import cost_model
from .data import segment_windows, window_histories
from .encoder import EncoderConfig, SequenceEncoder
from .history import SequentialRecommender

INTERACTIONS = ("maxsim", "attention")
_CHUNK = 1 << 22          # elements of one [users, vectors, items] logits block


def late_interaction(v: torch.Tensor, valid: torch.Tensor, e: torch.Tensor, kind: str,
                     beta: torch.Tensor | float = 1.0) -> torch.Tensor:
    """Scores of items e against each user's vectors v.

    v [B, K, d]; valid bool [B, K]; e [N, d] (the same items for every user) or [B, N, d].
    Returns [B, N]: max_k <v_k, e> ("maxsim") or sum_k softmax_k(beta <v_k, e>) <v_k, e>.
    """
    logits = v @ e.transpose(-1, -2)                           # [B, K, N]
    off = ~valid[:, :, None]                                   # [B, K, 1]
    if kind == "maxsim":
        return logits.masked_fill(off, -torch.inf).amax(1)
    if kind == "attention":
        w = torch.softmax((beta * logits).masked_fill(off, -torch.inf), dim=1)
        return (w * logits.masked_fill(off, 0.0)).sum(1)
    raise ValueError(f"interaction must be one of {INTERACTIONS}, got {kind!r}")


def slot_valid(tokens: torch.Tensor) -> torch.Tensor:
    """Segments that hold items [B, S]; the open slot (S-1) always counts (empty = the prior)."""
    valid = (tokens > 0).any(-1)
    valid[:, -1] = True
    return valid


class HistoryEncoder(nn.Module):
    """SequenceEncoder with m = ``cfg.n_extra`` query tokens per sequence and a segment-age table."""

    def __init__(self, cfg: EncoderConfig, n_ages: int):
        super().__init__()
        m, d = cfg.n_extra, cfg.d
        self.enc = SequenceEncoder(cfg)
        self.age = nn.Parameter(torch.zeros(n_ages, m, d))     # [A, m, d], age 0 = open segment
        self.bias = nn.Parameter(torch.zeros(cfg.n_items))      # [N] item bias (popularity)
        self.log_beta = nn.Parameter(torch.zeros(()))           # attention interaction temperature
        self.m = m

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens [..., T] -> the m query-token outputs [..., m, d] (one sequence per row)."""
        lead, T = tokens.shape[:-1], tokens.shape[-1]
        out = self.enc(tokens.reshape(-1, T))[:, T:]           # [prod(lead), m, d]
        return out.reshape(*lead, self.m, out.shape[-1])

    def vectors(self, cache: torch.Tensor) -> torch.Tensor:
        """Cached segment outputs [B, S, m, d] (slot S-1 = open) + age -> [B, S*m, d]."""
        S = cache.shape[1]
        v = cache + self.age[:S].flip(0)                       # slot s has age S-1-s
        return v.flatten(1, 2)


@dataclass(eq=False)
class CachedVectorModel(SequentialRecommender, WindowScorer, MultiVectorModel):
    """History -> S segments x m vectors per user (cached in ``cache_`` [n_users, S, m, d]);
    item vectors tied; full-catalog softmax loss; late-interaction scores. A MultiVectorModel:
    V = S*m vectors per user (ANNIndex searches each and re-scores with ``late_interaction``)."""

    arch: ClassVar[str] = "late"                               # the cost model's architecture

    def _n_vectors(self) -> tuple[int, int]:                   # (S, m)
        raise NotImplementedError

    def _tokens(self, items, start, t, S):                     # -> [B, S, T]
        raise NotImplementedError

    def _interaction(self) -> str:
        return "maxsim"

    def _history_encoder(self, m: int, n_ages: int) -> HistoryEncoder:
        module = HistoryEncoder(self.encoder_config(n_extra=m), n_ages)
        return self._initialised(module, module.enc.item, module.bias)

    def user_scores(self, module, cache, valid, e, b):
        """cache [B, S, m, d], valid [B, S], items e [N, d] or [B, N, d], bias b [N] / [B, N]."""
        v = module.vectors(cache)                              # [B, K, d]
        m = cache.shape[2]
        return late_interaction(v, valid.repeat_interleave(m, 1), e, self._interaction(),
                                module.log_beta.exp()) + b

    def compute_loss(self, module, batch):
        tokens, target = batch                                 # [B, S, T], [B]
        cache = module(tokens)                                 # [B, S, m, d]
        valid = slot_valid(tokens)                             # [B, S]
        logits = self.user_scores(module, cache, valid, module.enc.item_vectors(), module.bias)
        return F.cross_entropy(logits, target)

    def refresh(self):
        """Encode every user's current window into the serving cache."""
        self._ensure_hist()
        self._sync_flat()
        S, _ = self._n_vectors()
        n = np.diff(self.seq_ptr_)
        users = np.concatenate([np.flatnonzero(n)[:, None], [[np.argmin(n)]]]).ravel()  # + one empty
        with self._serve():
            caches, valids = [], []
            for b in minibatches(len(users), 512):
                tok = torch.as_tensor(self._tokens(self.seq_items_, self.seq_ptr_[users[b]], n[users[b]], S),
                                      device=self.device_)
                caches.append(self.module_(tok))
                valids.append(slot_valid(tok))
            cache, valid = torch.cat(caches), torch.cat(valids)
            # users without history share the last row (an empty window: the learned prior)
            self.cache_ = cache[-1:].repeat(self.n_users_, 1, 1, 1)      # [n_users, S, m, d]
            self.cache_valid_ = valid[-1:].repeat(self.n_users_, 1)        # [n_users, S]
            self.cache_[users] = cache
            self.cache_valid_[users] = valid
        self.item_vectors_ = self.module_.enc.item_vectors().detach().clone()  # [N, d]
        self.item_bias_ = self.module_.bias.detach().clone()                   # [N]

    def user_cache_bytes(self) -> int:
        """Bytes of the cached segment vectors ``cache_`` [n_users, S, m, d]."""
        return self.cache_.numel() * self.cache_.element_size()

    def score_users(self, module, users):
        out = []
        S, m = self._n_vectors()
        step = max(1, _CHUNK // (S * m * self.n_items_))
        for lo in range(0, len(users), step):
            u = users[lo:lo + step]
            out.append(self.user_scores(module, self.cache_[u], self.cache_valid_[u],
                                        self.item_vectors_, self.item_bias_))
        return torch.cat(out)

    def _score_candidates(self, users, cand):
        u = torch.as_tensor(users, device=self.device_)
        return self.user_scores(self.module_, self.cache_[u], self.cache_valid_[u],
                                self.item_vectors_[cand], self.item_bias_[cand])  # [n, C]

    def score_windows(self, tokens: np.ndarray) -> np.ndarray:
        """Scores float32 [B, n_items] of windows (item + 1, right-aligned, 0 = pad) [B, L], each
        window's items taken as a whole history and encoded as this model serves one."""
        self._check_fitted()
        items, ptr = window_histories(tokens)
        S, _ = self._n_vectors()
        tok = torch.as_tensor(self._tokens(items, ptr[:-1], np.diff(ptr), S), device=self.device_)
        with self._serve():
            return self.user_scores(self.module_, self.module_(tok), slot_valid(tok),
                                    self.item_vectors_, self.item_bias_).float().cpu().numpy()

    def encode(self, users) -> torch.Tensor:
        """Full re-encode of users' current windows: [n, S, m, d] (what the cache must equal)."""
        S, _ = self._n_vectors()
        users = self._check_users(users)
        tok = torch.as_tensor(self._windows(users, self._tokens, S), device=self.device_)
        with self._serve():
            return self.module_(tok)

    def user_vectors(self, users=None) -> np.ndarray:
        """Late-interaction vectors [v_k, 1] (cache + age), float32 [n, S*m, d + 1]."""
        u = np.arange(self.n_users_) if users is None else self._check_users(users)
        with self._serve():
            v = self.module_.vectors(self.cache_[torch.as_tensor(u)]).float().cpu().numpy()
        return np.concatenate([v, np.ones((*v.shape[:2], 1), np.float32)], -1)

    def user_vector_mask(self, users=None) -> np.ndarray:
        """Which of the S*m vectors take part: bool [n, S*m] (segments that hold items, and the open one)."""
        u = np.arange(self.n_users_) if users is None else self._check_users(users)
        m = self._n_vectors()[1]
        return self.cache_valid_[torch.as_tensor(u)].repeat_interleave(m, 1).cpu().numpy()

    def late_interaction(self, vectors, mask, items) -> np.ndarray:
        """The model's operator on [v, 1] vectors [n, V, d + 1], mask [n, V] and [e, b] item vectors
        [N, d + 1] or [n, C, d + 1]: float32 [n, N] / [n, C] (the bias rides in the last
        coordinate; MaxSim and the attention weights are unchanged by a per-item constant)."""
        beta = self.module_.log_beta.detach().exp().cpu()
        v, valid, e = (torch.as_tensor(np.asarray(x)) for x in (vectors, mask, items))
        step = max(1, _CHUNK // max(1, v.shape[1] * e.shape[-2]))
        with torch.inference_mode():
            return torch.cat([late_interaction(v[lo:lo + step], valid[lo:lo + step].bool(),
                                               e if e.dim() == 2 else e[lo:lo + step],
                                               self._interaction(), beta)
                              for lo in range(0, max(len(v), 1), step)]).float().numpy()

    def item_vectors(self) -> np.ndarray:
        """Item vectors [e_i, b_i] (encoded offline; bias last), float32 [n_items, d + 1].

        The item bias rides along as an extra coordinate, so s = <[v, 1], [e_i, b_i]> stays a
        dot product (MaxSim and the attention weights are unchanged by a per-item constant).
        """
        self._check_fitted()
        return torch.cat([self.item_vectors_, self.item_bias_[:, None]], 1).float().cpu().numpy()

    def serving_flops(self, n_candidates: int, history: int | None = None) -> dict:
        """Cost model (FLOPs) of one request: see ``cost_model``."""
        S, m = self._n_vectors()
        return cost_model(self.arch, history or self.max_len, n_candidates, self.embedding_size,
                          self.n_layers, S, m)


@dataclass(eq=False)
class MultiSegmentLateInteraction(CachedVectorModel):
    """S segments of ceil(L/S) items, m vectors each, MaxSim or attention late interaction.

    ``train_segments``: the S values drawn per training batch (default: ``segments`` only); one
    model trained on several S can serve any of them (``with_segments``).
    """

    segments: int = 4
    vectors_per_segment: int = 2
    interaction: str = "maxsim"
    train_segments: tuple | None = None

    def __post_init__(self):
        if self.train_segments is not None:
            self.train_segments = tuple(int(s) for s in self.train_segments)
        super().__post_init__()

    def _check_config(self):
        super()._check_config()
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {INTERACTIONS}, got {self.interaction!r}")
        for s in self._all_segments():
            if not (isinstance(s, (int, np.integer)) and 1 <= s <= self.max_len):
                raise ValueError(f"segments must be integers in 1..max_len={self.max_len}, got {s!r}")
        if self.vectors_per_segment < 1:
            raise ValueError(f"vectors_per_segment must be >= 1, got {self.vectors_per_segment}")

    def _all_segments(self):
        return sorted({self.segments, *(self.train_segments or ())})

    @property
    def seg_len(self) -> int:
        return math.ceil(self.max_len / self.segments)

    def build_module(self):
        return self._history_encoder(self.vectors_per_segment, max(self._all_segments()))

    def _n_vectors(self):
        return self.segments, self.vectors_per_segment

    def _interaction(self):
        return self.interaction

    def _tokens(self, items, start, t, S):
        return segment_windows(items, start, t, S, math.ceil(self.max_len / S))

    def make_batch(self, start, t, target, rng):
        S = self.segments if not self.train_segments else int(rng.choice(self._all_segments()))
        return self.to_tensors(self._tokens(self.seq_items_, start, t, S), target)

    def _update_state(self, u):
        """Re-encode only the open segment; shift the cache when a new segment opens."""
        h, l = self._hist[u], self.seg_len
        n = len(h)
        tok = segment_windows(h, np.zeros(1, np.int64), np.array([n]), 1, l)  # [1, 1, l]
        with self._serve():
            if n > 1 and (n - 1) // l != (n - 2) // l:         # the open segment just closed
                self.cache_[u, :-1] = self.cache_[u, 1:].clone()
                self.cache_valid_[u, :-1] = self.cache_valid_[u, 1:].clone()
            self.cache_[u, -1] = self.module_(torch.as_tensor(tok[0], device=self.device_))[0]

    def with_segments(self, segments: int) -> "MultiSegmentLateInteraction":
        """The same trained weights served with another S (must be one the model was trained on)."""
        self._check_fitted()
        if segments not in self._all_segments():
            raise ValueError(f"segments={segments} was not trained; trained: {self._all_segments()}")
        other = replace(self, segments=segments)
        for k, v in vars(self).items():
            if k.endswith("_") and not k.startswith("__") and k not in ("cache_", "cache_valid_"):
                setattr(other, k, v)
        other.seen_ = self.seen_.copy()
        other._hist = list(self._hist)
        other._last_ts = self._last_ts.copy()
        other.refresh()
        return other
