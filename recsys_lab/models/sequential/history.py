"""``SequentialRecommender``: what every sequential model shares, whatever its architecture.

- the user's time-ordered history (training events, then ``update``/``extend``), stored flat
  (``seq_items_``, ``seq_ptr_``, see ``data.py``); the seen set is the base class's ``SeenSet``
  (appends merged lazily);
- training examples "the first t items predict item t" (``samples_per_user`` cut points per user);
- module initialisation: item rows from titles (``item_init="text"``), an item bias at the centred
  log-popularity, and ``warm_start`` from another fitted model of the same block design;
- ``score(users, items=[n, C])`` for re-ranking, under eval mode and inference mode
  (``score_candidates`` is its older name).

An architecture subclasses it and implements ``build_module``, ``make_batch``, ``compute_loss``,
``score_users`` and ``_score_candidates`` (and ``_update_state`` when it caches user state).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from ...data.interactions import Interactions
from ..torch_base import TorchRecommender, minibatches
from .data import flat_histories
from .encoder import EncoderConfig
from .schedule import SCHEDULES, attach_schedule

ITEM_INITS = (None, "text")


def decay_groups(module: nn.Module, weight_decay: float) -> list[dict]:
    """AdamW parameter groups by nanoGPT's rule: decay every parameter with dim >= 2 (matmul
    weights, embeddings, query-token and age tables), not the 1-D or scalar ones (biases,
    LayerNorm gains, the item bias, ``log_beta``), whose decay only pulls them to 0."""
    params = [p for p in module.parameters() if p.requires_grad]
    return [{"params": [p for p in params if p.dim() >= 2], "weight_decay": weight_decay},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]


@dataclass(eq=False)
class SequentialRecommender(TorchRecommender):
    """Shared base: histories, training examples (prefix -> next item), update/extend.

    An epoch draws ``samples_per_user`` cut points t per user (uniform over 1..len-1): the
    example is "the first t items predict item t". ``reg`` is AdamW weight decay (on parameters
    with dim >= 2 only: ``decay_groups``).
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
    lr_schedule: str = "constant"          # or "cosine": warm-up then cosine decay (schedule.py)
    warmup: float = 0.05                   # fraction of all steps warming up (cosine)

    def _check_config(self):
        super()._check_config()
        self.encoder_config(n_items=1)                          # width, depth, heads, dropout
        if int(self.samples_per_user) < 1:
            raise ValueError(f"samples_per_user must be >= 1, got {self.samples_per_user!r}")
        if self.item_init not in ITEM_INITS:
            raise ValueError(f"item_init must be one of {ITEM_INITS}, got {self.item_init!r}")
        if self.lr_schedule not in SCHEDULES:
            raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {self.lr_schedule!r}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup must be a fraction in [0, 1), got {self.warmup!r}")

    def encoder_config(self, n_extra: int = 0, n_items: int | None = None) -> EncoderConfig:
        """The ``EncoderConfig`` of this model's encoder (``n_items``: default the fitted catalog)."""
        return EncoderConfig(n_items=self.n_items_ if n_items is None else n_items,
                             d=self.embedding_size, n_layers=self.n_layers, n_heads=self.n_heads,
                             max_len=self.max_len, n_extra=n_extra, dropout=self.dropout)

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
        if self.__dict__.get("_hist") is None:
            self._hist = [self.seq_items_[a:b] for a, b in zip(self.seq_ptr_[:-1], self.seq_ptr_[1:])]
            self._last_ts = np.full(self.n_users_, np.iinfo(np.int64).min)

    def _own_state(self):
        self._ensure_hist()
        self._sync_flat()
        return super()._own_state()

    def _load_own_state(self, state):
        self._hist = None
        super()._load_own_state(state)

    def history(self, user: int) -> np.ndarray:
        """User's item sequence in time order (training events plus updates)."""
        self._check_fitted()
        self._ensure_hist()
        return self._hist[int(self._check_users([user])[0])]

    def _update(self, u: int, item: int, timestamp: int | None) -> None:
        """``update``: append one event to the user's history and refresh its serving state."""
        self._ensure_hist()
        if timestamp is not None:
            if timestamp < self._last_ts[u]:
                raise ValueError(f"timestamp {timestamp} is before user {u}'s last event "
                                 f"({self._last_ts[u]}); events must arrive in time order")
            self._last_ts[u] = timestamp
        self._hist[u] = np.append(self._hist[u], item)
        self.seen_set_.add(u, item)                            # merged into the CSR when read
        self._update_state(u)

    def _extend(self, events: Interactions) -> None:
        """``extend``: append many events (e.g. the validation split before testing), refresh all."""
        self._ensure_hist()
        for u, h in enumerate(events.histories()):
            if len(h):
                self._hist[u] = np.concatenate([self._hist[u], h.astype(np.int64)])
        self.seen_set_.extend(events.to_csr())
        self._sync_flat()
        self.refresh()

    def _update_state(self, u: int) -> None:
        """Refresh the serving state of one user after an appended event (default: none)."""

    def user_cache_bytes(self) -> int:
        """Bytes of the per-user serving cache (encoded histories); 0 for a model without one."""
        return 0

    # ---- module initialisation ------------------------------------------------------------
    def warm_start(self, other: "SequentialRecommender") -> "SequentialRecommender":
        """Initialise the next ``fit`` from a fitted model of the same block design (e.g. all
        three architectures from one trained two-tower): tensors of equal shape are copied,
        query-token / age tables are tiled to this model's m and S."""
        other._check_fitted()
        self._warm = {k: v.detach().clone() for k, v in other.module_.state_dict().items()}
        return self

    def _initialised(self, module: nn.Module, items: nn.Embedding,
                     bias: nn.Parameter | None = None) -> nn.Module:
        """``module`` with its item rows ``items.weight[1:]`` from ``item_init`` (computed in
        ``prepare``, so not when loading a saved model; row 0, padding, stays zero), ``bias`` (if
        any) at the centred log-popularity (faster, steadier training), then any warm start."""
        init = self.__dict__.pop("_item_init", None)
        with torch.no_grad():
            if init is not None:
                items.weight[1:].copy_(torch.as_tensor(init))
            if bias is not None:
                logp = np.log1p(np.asarray(self.seen_.sum(0)).ravel())
                bias.copy_(torch.as_tensor(logp - logp.mean(), dtype=torch.float32))
            warm = self.__dict__.get("_warm", {})
            for k, t in module.state_dict().items():
                w = warm.get(k)
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
        """AdamW (Loshchilov & Hutter 2019) with decoupled weight decay ``reg`` on the weight
        matrices only (``decay_groups``), under ``lr_schedule`` over ``epochs`` epochs."""
        opt = torch.optim.AdamW(decay_groups(module, self.reg), lr=self.learning_rate)
        per_epoch = -(-len(self.examples(np.random.default_rng(0))[0]) // self.batch_size)
        return attach_schedule(opt, self.lr_schedule, max(1, per_epoch * self.epochs), self.warmup)

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
        """Tensors of one batch of examples (start, t, target: int [B])."""
        raise NotImplementedError

    # ---- serving --------------------------------------------------------------------------
    def _windows(self, users: np.ndarray, fn, *args) -> np.ndarray:
        """``fn(items, start, t, *args)`` windows of these users' whole current histories."""
        self._ensure_hist()
        items, ptr = flat_histories([self._hist[u] for u in users])
        if not len(items):                                     # only users without history:
            items = np.zeros(1, np.int64)                      # all padding, nothing to index
        return fn(items, ptr[:-1], np.diff(ptr), *args)

    def _serve(self):
        """Context for serving calls: eval mode, no autograd bookkeeping."""
        if self.module_.training:                              # .eval() walks every submodule
            self.module_.eval()
        return torch.inference_mode()

    def _score_candidates(self, users: np.ndarray, cand: torch.Tensor) -> torch.Tensor:
        """Scores [n, C] of candidates ``cand`` (long [n, C], on the device); runs under ``_serve``."""
        raise NotImplementedError

    def _score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        with self._serve():
            return self._score_candidates(users, torch.as_tensor(np.array(items), device=self.device_)
                                          ).float().cpu().numpy()

    def score_candidates(self, users, candidates) -> np.ndarray:
        """Scores float32 [n, C] of ``candidates`` (int [n, C]): ``score(users, items=candidates)``."""
        return self.score(users, items=candidates)
