"""Three transformer recommenders of one block design, from cross- to late to no interaction.

With h = the user's time-ordered history (the last L = ``max_len`` items), e_i = item vectors
(the tied input embeddings, encoded offline), Enc = ``SequenceEncoder``:

    CrossEncoderRanker          s(u, i) = <Enc([h; i])_last, e_i> + b_i  one pass per candidate
    TwoTower                    s(u, i) = <v_u, e_i> + b_i,  v_u = Enc([h; q])_q + a_0
    MultiSegmentLateInteraction s(u, i) = max_k <v_k, e_i> + b_i                          ("maxsim")
                                        or sum_k softmax_k(beta <v_k, e_i>) <v_k, e_i> + b_i  ("attention")

where the late-interaction vectors v_k (k = 1..S*m) are the outputs of m learned query tokens
appended to each of the S segments, each encoded on its own (attention inside a segment only,
cost S (L/S)^2 instead of L^2), plus a learned segment-age vector. Finished segments are cached
per user; ``update(user, item)`` re-encodes only the open segment. With S = 1 and m = 1 the late
interaction is the two-tower formula. MaxSim is ColBERT's operator (Khattab & Zaharia, SIGIR
2020); the attention form is DIN-style target attention (Zhou et al., KDD 2018) over the vectors,
which tends to MaxSim as beta -> inf and to mean pooling (a two-tower) as beta -> 0.
TwoTower/late interaction train with softmax cross-entropy over the whole catalog; the
cross-encoder (BST-style, Chen et al. 2019) with ``n_negatives`` sampled negatives per target.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from ...data.interactions import Interactions
from ..sampling import NegativeSampler
from ..torch_base import TorchRecommender, minibatches
from .data import flat_histories, last_window, segment_windows
from .transformer import SequenceEncoder, layer_flops

_CHUNK = 1 << 22          # elements of one [users, vectors, items] logits block
_INTERACTIONS = ("maxsim", "attention")
_ITEM_INITS = (None, "text")


class HistoryEncoder(nn.Module):
    """SequenceEncoder with m query tokens per sequence and a segment-age table [A, m, d]."""

    def __init__(self, n_items, d, n_layers, n_heads, max_len, m, n_ages, dropout):
        super().__init__()
        self.enc = SequenceEncoder(n_items, d, n_layers, n_heads, max_len, m, dropout)
        self.age = nn.Parameter(torch.zeros(n_ages, m, d))   # [A, m, d], age 0 = open segment
        self.bias = nn.Parameter(torch.zeros(n_items))        # [N] item bias (popularity)
        self.log_beta = nn.Parameter(torch.zeros(()))         # attention interaction temperature
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


def slot_valid(tokens: torch.Tensor) -> torch.Tensor:
    """Segments that hold items [B, S]; the open slot (S-1) always counts (empty = the prior)."""
    valid = (tokens > 0).any(-1)
    valid[:, -1] = True
    return valid


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
    raise ValueError(f"interaction must be one of {_INTERACTIONS}, got {kind!r}")


@dataclass(eq=False)
class SequentialRecommender(TorchRecommender):
    """Shared base: histories, training examples (prefix -> next item), update/extend.

    An epoch draws ``samples_per_user`` cut points t per user (uniform over 1..len-1): the
    example is "the first t items predict item t". ``reg`` is AdamW weight decay.
    ``item_init``: None (item embeddings ~ N(0, 0.02^2)) or "text" (``text_item_init`` of the
    training data's ``item_info["title"]``; needs the ``text`` extra). A ``warm_start`` overrides it.
    """

    embedding_size: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    dropout: float = 0.1
    samples_per_user: int = 8
    batch_size: int = 128
    item_init: str | None = None

    def _check_config(self):
        super()._check_config()
        if self.item_init not in _ITEM_INITS:
            raise ValueError(f"item_init must be one of {_ITEM_INITS}, got {self.item_init!r}")

    # ---- seen items: the training CSR plus events appended since (merged lazily) -----------
    @property
    def seen_(self) -> sp.csr_matrix:
        pending = self.__dict__.get("_pending_seen")
        if pending:
            u, i = np.array(pending).T
            extra = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=self.seen_csr_.shape)
            merged = self.seen_csr_ + extra
            merged.data[:] = 1.0
            self.seen_csr_ = merged.tocsr()
            pending.clear()
        return self.seen_csr_

    @seen_.setter
    def seen_(self, value: sp.csr_matrix) -> None:
        self.seen_csr_ = sp.csr_matrix(value)
        self._pending_seen = []

    # ---- histories ------------------------------------------------------------------------
    def prepare(self, train: Interactions) -> None:
        self._hist = [h.astype(np.int64) for h in train.histories()]
        self._last_ts = np.full(self.n_users_, np.iinfo(np.int64).min)
        if train.timestamp is not None:
            np.maximum.at(self._last_ts, train.user, train.timestamp)
        self._sync_flat()
        self._item_init = self._text_init(train) if self.item_init == "text" else None

    def _text_init(self, train: Interactions) -> np.ndarray:
        """``text_item_init`` [n_items, d] of the titles (the global torch RNG left untouched)."""
        from .item_text import text_item_init
        info = train.item_info
        if info is None or "title" not in info.columns:
            raise ValueError(f"item_init='text' needs item_info with a 'title' column; "
                             f"{train.name!r} has {None if info is None else list(info.columns)}")
        with torch.random.fork_rng():
            return text_item_init(info["title"].tolist(), self.embedding_size, self.seed)

    def _sync_flat(self):
        self.seq_items_, self.seq_ptr_ = flat_histories(self._hist)

    def _ensure_hist(self):
        if getattr(self, "_hist", None) is None:
            self._hist = [self.seq_items_[a:b] for a, b in zip(self.seq_ptr_[:-1], self.seq_ptr_[1:])]
            self._last_ts = np.full(self.n_users_, np.iinfo(np.int64).min)

    def state_dict(self):
        self._ensure_hist()
        self._sync_flat()
        self.seen_                                             # merge pending updates
        return super().state_dict()

    def load_state_dict(self, state):
        self._hist = None
        super().load_state_dict(state)

    def history(self, user: int) -> np.ndarray:
        """User's item sequence in time order (training events plus updates)."""
        self._check_fitted()
        self._ensure_hist()
        return self._hist[int(self._check_users([user])[0])]

    def update(self, user: int, item: int, timestamp: int | None = None) -> "SequentialRecommender":
        """Append one event to ``user``'s history and refresh that user's serving state."""
        self._check_fitted()
        self._ensure_hist()
        u = int(self._check_users([user])[0])
        item = int(item)
        if not 0 <= item < self.n_items_:
            raise IndexError(f"unknown item index {item} (model knows {self.n_items_} items)")
        if timestamp is not None:
            if timestamp < self._last_ts[u]:
                raise ValueError(f"timestamp {timestamp} is before user {u}'s last event "
                                 f"({self._last_ts[u]}); events must arrive in time order")
            self._last_ts[u] = timestamp
        self._hist[u] = np.append(self._hist[u], item)
        self._pending_seen.append((u, item))                 # merged into seen_ when read
        self._update_state(u)
        return self

    def extend(self, events: Interactions) -> "SequentialRecommender":
        """Append many events (e.g. the validation split before testing), then refresh all."""
        self._check_fitted()
        self._ensure_hist()
        if (events.n_users, events.n_items) != (self.n_users_, self.n_items_):
            raise ValueError("events must share the model's id space")
        for u, h in enumerate(events.histories()):
            if len(h):
                self._hist[u] = np.concatenate([self._hist[u], h.astype(np.int64)])
        seen = self.seen_ + events.to_csr()
        seen.data[:] = 1.0
        self.seen_ = seen.tocsr()
        self._sync_flat()
        self.refresh()
        return self

    def _update_state(self, u: int) -> None:
        """Refresh the serving state of one user after an appended event (default: none)."""

    def warm_start(self, other: "SequentialRecommender") -> "SequentialRecommender":
        """Initialise the next ``fit`` from a fitted model of the same block design (e.g. all
        three architectures from one trained two-tower): tensors of equal shape are copied,
        query-token / age tables are tiled to this model's m and S."""
        other._check_fitted()
        self._warm = {k: v.detach().clone() for k, v in other.module_.state_dict().items()}
        return self

    def _init_items(self, module: nn.Module) -> nn.Module:
        """Item rows of ``module.enc.item`` (or ``module.item``) from ``item_init``, computed in
        ``prepare`` (so not when loading a saved model); row 0 (padding) stays zero."""
        init = self.__dict__.pop("_item_init", None)
        if init is not None:
            table = module.enc.item if hasattr(module, "enc") else module.item
            with torch.no_grad():
                table.weight[1:].copy_(torch.as_tensor(init))
        return module

    def _init_bias(self, module: nn.Module) -> nn.Module:
        """Bias at the centred log-popularity (faster, steadier training), ``_init_items``, then
        any warm start."""
        counts = np.asarray(self.seen_.sum(0)).ravel()
        logp = np.log1p(counts)
        self._init_items(module)
        with torch.no_grad():
            module.bias.copy_(torch.as_tensor(logp - logp.mean(), dtype=torch.float32))
            for k, t in module.state_dict().items():
                w = getattr(self, "_warm", {}).get(k)
                if w is None or w.dim() != t.dim():
                    continue
                if w.shape != t.shape:                        # e.g. extra [1, d] -> [m, d]
                    if any(a != b and a != 1 for a, b in zip(w.shape, t.shape)):
                        continue
                    w = w[tuple(slice(0, min(a, b)) for a, b in zip(w.shape, t.shape))].expand_as(t)
                t.copy_(w)
        return module

    # ---- training -------------------------------------------------------------------------
    def configure_optimizer(self, module):
        return torch.optim.AdamW(module.parameters(), lr=self.learning_rate, weight_decay=self.reg)

    def examples(self, rng: np.random.Generator):
        """One epoch of (start, t, target) arrays: ``samples_per_user`` cut points per user."""
        start, n = self.seq_ptr_[:-1], np.diff(self.seq_ptr_)
        users = np.repeat(np.flatnonzero(n >= 2), self.samples_per_user)
        t = 1 + (rng.random(len(users)) * (n[users] - 1)).astype(np.int64)  # [E] in 1..n-1
        return start[users], t, self.seq_items_[start[users] + t]

    def batches(self, train, rng):
        start, t, target = self.examples(rng)
        for b in minibatches(len(t), self.batch_size, rng):
            yield self.make_batch(start[b], t[b], target[b], rng)

    def make_batch(self, start, t, target, rng):
        raise NotImplementedError

    def _windows(self, users: np.ndarray, fn, *args) -> np.ndarray:
        """``fn(items, start, t, *args)`` windows of these users' whole current histories."""
        self._ensure_hist()
        items, ptr = flat_histories([self._hist[u] for u in users])
        return fn(items, ptr[:-1], np.diff(ptr), *args)

    def _serve(self):
        """Context for serving calls: eval mode, no autograd bookkeeping."""
        if self.module_.training:                              # .eval() walks every submodule
            self.module_.eval()
        return torch.inference_mode()

    def score_candidates(self, users, candidates) -> np.ndarray:
        """Scores float32 [n, C] of ``candidates`` (int [n, C]) for ``users`` (int [n])."""
        users = self._check_users(users)
        cand = np.array(candidates, dtype=np.int64).reshape(len(users), -1)        # a writable copy
        if cand.size and (cand.min() < 0 or cand.max() >= self.n_items_):
            raise IndexError(f"candidate item indices must be in 0..{self.n_items_ - 1}")
        with self._serve():
            return self._score_candidates(users, torch.as_tensor(cand, device=self.device_)
                                          ).float().cpu().numpy()


# ==== two-tower and multi-segment late interaction =========================================
@dataclass(eq=False)
class _VectorModel(SequentialRecommender):
    """History -> K vectors per user (cached); item vectors tied; full-catalog softmax loss."""

    def _n_vectors(self) -> tuple[int, int]:                   # (S, m)
        raise NotImplementedError

    def _tokens(self, items, start, t, S):                     # -> [B, S, T]
        raise NotImplementedError

    def _interaction(self) -> str:
        return "maxsim"

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
        arch = "two_tower" if isinstance(self, TwoTower) else "late"
        return cost_model(arch, history or self.max_len, n_candidates, self.embedding_size,
                          self.n_layers, S, m)


@dataclass(eq=False)
class TwoTower(_VectorModel):
    """History (last ``max_len`` items) + one query token -> one vector; score = dot product."""

    def build_module(self):
        return self._init_bias(HistoryEncoder(self.n_items_, self.embedding_size, self.n_layers,
                                              self.n_heads, self.max_len, 1, 1, self.dropout))

    def _n_vectors(self):
        return 1, 1

    def _tokens(self, items, start, t, S=1):
        return last_window(items, start, t, self.max_len)[:, None, :]   # [B, 1, L]

    def make_batch(self, start, t, target, rng):
        return self.to_tensors(self._tokens(self.seq_items_, start, t), target)

    def _update_state(self, u):
        h = self._hist[u]
        tok = last_window(h, np.zeros(1, np.int64), np.array([len(h)]), self.max_len)  # [1, L]
        with self._serve():
            self.cache_[u] = self.module_(torch.as_tensor(tok, device=self.device_))   # [1, 1, d]


@dataclass(eq=False)
class MultiSegmentLateInteraction(_VectorModel):
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

    def _check_config(self):
        super()._check_config()
        if self.interaction not in _INTERACTIONS:
            raise ValueError(f"interaction must be one of {_INTERACTIONS}, got {self.interaction!r}")
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
        return self._init_bias(HistoryEncoder(
            self.n_items_, self.embedding_size, self.n_layers, self.n_heads, self.max_len,
            self.vectors_per_segment, max(self._all_segments()), self.dropout))

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


# ==== cross-encoder ============================================================================
class CrossEncoder(nn.Module):
    """[history; candidate] -> Enc -> <h_candidate, e_candidate> + b_candidate."""

    def __init__(self, n_items, d, n_layers, n_heads, max_len, dropout):
        super().__init__()
        self.enc = SequenceEncoder(n_items, d, n_layers, n_heads, max_len, 1, dropout)
        self.bias = nn.Parameter(torch.zeros(n_items))                # [N] item bias

    def forward(self, tokens: torch.Tensor, cand: torch.Tensor) -> torch.Tensor:
        """tokens [B, L] (one history per row), cand [B, C] -> scores [B, C]."""
        B, C = cand.shape
        e = self.enc.item(cand + 1)                                   # [B, C, d]
        x = tokens.repeat_interleave(C, 0)                            # [B*C, L]
        extra = (e + self.enc.extra).reshape(B * C, 1, -1)            # [B*C, 1, d] type + item
        h = self.enc(x, extra)[:, -1]                                 # [B*C, d]
        return (h * e.reshape(B * C, -1)).sum(-1).view(B, C) + self.bias[cand]


@dataclass(eq=False)
class CrossEncoderRanker(SequentialRecommender):
    """Cross-encoder: one transformer pass over [history; candidate] per candidate.

    Trained with softmax over the target and ``n_negatives`` negatives (half uniform, half by
    popularity^0.75; with ``mine_negatives_from(retriever)``, ``hard_fraction`` of them from the
    retriever's top-100 for the same history, as re-rankers are trained on first-stage results). Its full-catalog ``score`` is exact but costs n_items passes per user; it
    is meant to re-rank C candidates (``TwoStage``). Early stopping uses a labelled proxy: NDCG@10
    of the validation item among it and 99 popularity-sampled negatives (``valid_users`` users).
    """

    n_negatives: int = 15
    batch_size: int = 32
    valid_users: int = 500
    hard_fraction: float = 0.5

    def mine_negatives_from(self, retriever, top: int = 100) -> "CrossEncoderRanker":
        """Draw ``hard_fraction`` of the negatives from ``retriever``'s top-``top`` items for the
        same history (the candidates this ranker will re-rank), the rest as before. The retriever
        is a fitted sequential vector model (TwoTower, late interaction) or an item-item model
        with a ``B_`` matrix (EASE), which scores a window as its multi-hot times B."""
        retriever._check_fitted()
        if not isinstance(retriever, _VectorModel) and getattr(retriever, "B_", None) is None:
            raise TypeError(f"cannot mine negatives from {type(retriever).__name__}: "
                            "need a sequential vector model or an item-item model with B_")
        self._miner, self._miner_top = retriever, top
        return self

    def _miner_scores(self, tok: torch.Tensor) -> torch.Tensor:
        """First-stage scores of the windows ``tok`` [B, L] (0 = pad) -> [B, N]."""
        miner = self._miner
        if isinstance(miner, _VectorModel):
            with miner._serve():
                cache = miner.module_(tok[:, None, :])                       # [B, 1, 1, d]
                return miner.user_scores(miner.module_, cache, torch.ones(len(tok), 1, dtype=torch.bool),
                                         miner.item_vectors_, miner.item_bias_)  # [B, N]
        x = torch.zeros(len(tok), miner.n_items_ + 1).scatter_(1, tok, 1.0)[:, 1:]   # [B, N] multi-hot
        return x @ torch.as_tensor(miner.B_)                                 # [B, N] EASE: x B

    def _hard(self, tokens: np.ndarray, target: np.ndarray, n: int, rng) -> np.ndarray:
        """n items per row from the miner's top-k for these windows, excluding target and history."""
        tok = torch.as_tensor(tokens)
        with torch.no_grad():
            s = self._miner_scores(tok)
            s = torch.cat([torch.full_like(s[:, :1], -torch.inf), s], 1)     # column 0 = pad token
            s.scatter_(1, tok, -torch.inf)                                   # history items out
            s[torch.arange(len(s)), torch.as_tensor(target) + 1] = -torch.inf
            top = torch.topk(s, min(self._miner_top, s.shape[1] - 1), dim=1).indices.numpy() - 1
        pick = rng.integers(0, top.shape[1], size=(len(top), n))
        return np.take_along_axis(top, pick, 1)

    def build_module(self):
        return self._init_bias(CrossEncoder(self.n_items_, self.embedding_size, self.n_layers,
                                            self.n_heads, self.max_len, self.dropout))

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
        n_hard = int(round(self.hard_fraction * self.n_negatives)) if getattr(self, "_miner", None) else 0
        neg = [self._negatives(users, self.n_negatives - n_hard, rng)]
        if n_hard:
            neg.append(self._hard(tokens, target, n_hard, rng))
        cand = np.concatenate([target[:, None], *neg], 1)
        return self.to_tensors(tokens, cand)

    def compute_loss(self, module, batch):
        tokens, cand = batch                                          # [B, L], [B, 1 + n_neg]
        logits = module(tokens, cand)
        return F.cross_entropy(logits, torch.zeros(len(cand), dtype=torch.long, device=cand.device))

    def _score_candidates(self, users, cand):
        tok = torch.as_tensor(self._windows(users, last_window, self.max_len), device=self.device_)
        if cand.shape[1] > 4096:                                      # huge C: chunk candidates
            return torch.cat([torch.cat([self.module_(tok[r:r + 1], c) for c in cand[r:r + 1].split(4096, 1)], 1)
                              for r in range(len(users))])
        step = max(1, 4096 // cand.shape[1])                          # ~4096 sequences per pass
        return torch.cat([self.module_(tok[lo:lo + step], cand[lo:lo + step])
                          for lo in range(0, len(users), step)])

    def score_users(self, module, users):
        u = users.cpu().numpy()
        cand = torch.arange(self.n_items_, device=self.device_).expand(len(u), -1)
        with torch.inference_mode():
            return self._score_candidates(u, cand)

    def validation_score(self, valid):
        """Sampled proxy (early stopping only): NDCG@10 of the valid item among 1 + 99 negatives."""
        rng = np.random.default_rng(self.seed)
        users, pos = valid.user.astype(np.int64), valid.item.astype(np.int64)
        if len(users) > self.valid_users:
            keep = np.sort(rng.choice(len(users), self.valid_users, replace=False))
            users, pos = users[keep], pos[keep]
        cand = np.concatenate([pos[:, None], self._popular.sample(users, rng, 99)], 1)
        s = self.score_candidates(users, cand)
        rank = (s[:, 1:] > s[:, :1]).sum(1)                           # 0-based rank of the positive
        return float(np.where(rank < 10, 1 / np.log2(rank + 2), 0.0).mean())

    def serving_flops(self, n_candidates: int, history: int | None = None) -> dict:
        return cost_model("cross", history or self.max_len, n_candidates, self.embedding_size,
                          self.n_layers)


# ==== cost model ===============================================================================
def cost_model(arch: str, L: int, C: int, d: int, n_layers: int, S: int = 1, m: int = 1) -> dict:
    """FLOPs of one request (2 per multiply-add; layer = 24 T d^2 + 4 T^2 d, see ``layer_flops``).

    cross:      C * n_layers * layer(L + 1)                     + 2 C d
    two_tower:  n_layers * layer(L + 1)                          + 2 C d
    late:       full  = S * n_layers * layer(ceil(L/S) + m)      + 2 C S m d
                incremental (one new click) = n_layers * layer(ceil(L/S) + m) + 2 C S m d
    Returns encode, interaction, total (a request right after a click: incremental for late) and
    full_encode_total (late re-encoding every segment).
    """
    if arch == "cross":
        enc = C * n_layers * layer_flops(L + 1, d)
        return {"encode": enc, "interaction": 2 * C * d, "total": enc + 2 * C * d,
                "full_encode_total": enc + 2 * C * d}
    if arch == "two_tower":
        enc = n_layers * layer_flops(L + 1, d)
        return {"encode": enc, "interaction": 2 * C * d, "total": enc + 2 * C * d,
                "full_encode_total": enc + 2 * C * d}
    if arch == "late":
        seg = n_layers * layer_flops(math.ceil(L / S) + m, d)
        inter = 2 * C * S * m * d
        return {"encode": seg, "interaction": inter, "total": seg + inter,
                "full_encode_total": S * seg + inter}
    raise ValueError(f"arch must be 'cross', 'two_tower' or 'late', got {arch!r}")
