"""The Recommender contract shared by every model and accelerator.

    model = SomeModel(seed=0).fit(train, valid=None)   # train: Interactions -> self
    s = model.score(users)                             # float32 [len(users), n_items], higher is better
    s = model.score(users, items=cand)                 # float32 [len(users), C]: candidates only
    items, scores = model.recommend(users, k=10)       # int64 / float32 [len(users), k]
    model.update(user, item, timestamp=None)           # one new event; extend(events) for many

Subclasses are dataclasses (their fields are the config, checked when the model is built) and
implement ``_fit`` and ``_score``; optional hooks ``_check_config`` (value checks),
``_score_items`` (a cheaper path for candidate scores), ``_update_users`` (refresh per-user state
after new events). Fitted state lives in attributes ending in ``_`` (scikit-learn's convention).
What a model can do beyond the contract is declared by its classes (``capabilities.py``) and asked
with ``supports``; models built from other models name them in ``components`` (config, save/load)
and, for an accelerator, the one it serves through in ``wraps``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from . import persistence
from .arguments import (as_candidates, as_indices, as_mask, check_flag, check_k, check_names, check_params,
                        check_timestamp)
from .ranking import mask_candidates, mask_rows, pad_short_lists, topk
from .seen import SeenSet

__all__ = ["Recommender", "Popularity", "Random", "topk", "mask_rows"]

_CHUNK_CELLS = 1 << 18  # users x items scored at once (1 MB of float32: stays in cache)


class Recommender(ABC):
    """Base class: argument checks, seen-item masking, batched top-k, updates, config, save/load."""

    registry: ClassVar[dict[str, type]] = {}
    components: ClassVar[tuple[str, ...]] = ()   # fields holding the Recommenders it is built from
    wraps: ClassVar[str | None] = None           # an accelerator's field for the model it wraps

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Recommender.registry[cls.__name__] = cls

    def __new__(cls, *args, **kwargs):
        if is_dataclass(cls):
            check_names(cls, kwargs)             # unknown names answered with the valid ones
        return super().__new__(cls)

    def __post_init__(self):
        check_params(self)                       # types, from the field annotations
        self._check_config()                     # values

    # ---- to implement ---------------------------------------------------------------------
    def _check_config(self) -> None:
        """Check the hyper-parameters' values (ValueError naming the bad one); runs at construction."""

    @abstractmethod
    def _fit(self, train: Interactions) -> None:
        """Learn from ``train`` (``n_users_``, ``n_items_`` and the seen set are already set)."""

    @abstractmethod
    def _score(self, users: np.ndarray) -> np.ndarray:
        """Scores [len(users), n_items] of validated user indices."""

    def _score_items(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Scores [n, C] of candidate items [n, C] (default: the full scores at those items)."""
        return np.take_along_axis(np.asarray(self._score(users), dtype=np.float32), items, 1)

    def _update_users(self, users: np.ndarray) -> None:
        """The seen sets of ``users`` grew: refresh per-user state (default: none)."""

    # ---- the contract ---------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "Recommender":
        """Fit on ``train``; ``valid`` (held-out events, same id space) is used by learned models
        for early stopping and ignored by closed-form ones, so every model takes the same call."""
        check_fit_data(train, valid)
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.seen_ = train.to_csr()
        self._fit(train)
        return self

    def score(self, users, items=None) -> np.ndarray:
        """float32 [len(users), n_items], or [len(users), C] for candidate ``items`` ([n, C] or [C])."""
        users = self._check_users(users)
        cand = None if items is None else as_candidates(items, len(users), self.n_items_)
        if len(users) == 0:
            return np.zeros((0, self.n_items_ if cand is None else cand.shape[1]), np.float32)
        if cand is None:
            return np.asarray(self._score(users), dtype=np.float32)
        return np.asarray(self._score_items(users, cand), dtype=np.float32)

    def recommend(self, users, k: int = 10, filter_seen: bool = True, exclude: sp.spmatrix | None = None,
                  items=None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items per user, best first: (int64 [n, k], float32 [n, k]).

        filter_seen: mask the user's seen items; exclude: more items to mask (sparse [n_users,
        n_items], e.g. the validation split); items: rank only these candidates ([n, C] or [C]).
        Short lists are padded explicitly: item -1 with score -inf (``ranking.pad_short_lists``).
        """
        users = self._check_users(users)
        k = check_k(k, self.n_items_)
        filter_seen = check_flag("filter_seen", filter_seen)
        exclude = as_mask(exclude, (self.n_users_, self.n_items_))
        cand = None
        if items is not None:                  # sorted by item: ties go to the lower item index
            cand = np.sort(as_candidates(items, len(users), self.n_items_), axis=1)
            k = check_k(k, cand.shape[1], "the candidate list")
            if (np.diff(cand, axis=1) == 0).any():
                raise ValueError("items: a candidate list repeats an item")
        if len(users) == 0:
            return np.zeros((0, k), np.int64), np.zeros((0, k), np.float32)
        return pad_short_lists(*self._recommend(users, k, filter_seen, exclude, cand))

    def update(self, user, item, timestamp=None) -> "Recommender":
        """Record that ``user`` interacted with ``item`` (at ``timestamp``): the seen set grows and
        per-user state refreshes (a sequential model appends to the history)."""
        self._check_fitted()
        for name, v in (("user", user), ("item", item)):
            if np.ndim(v) != 0:
                raise TypeError(f"update takes one {name} index, got {v!r}")
        u = int(as_indices(user, self.n_users_, "user")[0])
        i = int(as_indices(item, self.n_items_, "item")[0])
        self._update(u, i, check_timestamp(timestamp))
        return self

    def extend(self, events: Interactions) -> "Recommender":
        """Record many events at once (e.g. the validation split before testing)."""
        self._check_fitted()
        if not isinstance(events, Interactions):
            raise TypeError(f"extend expects Interactions, got {type(events).__name__}")
        if (events.n_users, events.n_items) != (self.n_users_, self.n_items_):
            raise ValueError(f"events must share the model's id space ({events.n_users}x{events.n_items} "
                             f"vs {self.n_users_}x{self.n_items_})")
        self._extend(events)
        return self

    # ---- the default implementations ------------------------------------------------------
    def _recommend(self, users, k, filter_seen, exclude, items):
        """Validated arguments -> (items [n, k], scores [n, k]); wrappers serve it their way."""
        width = self.n_items_ if items is None else items.shape[1]
        chunk = max(1, _CHUNK_CELLS // width)
        out_items = np.empty((len(users), k), dtype=np.int64)
        out_scores = np.empty((len(users), k), dtype=np.float32)
        for lo in range(0, len(users), chunk):
            batch = users[lo:lo + chunk]
            cand = None if items is None else items[lo:lo + chunk]
            s = np.array(self._score(batch) if cand is None else self._score_items(batch, cand),
                         dtype=np.float32)
            for mask in (self.seen_ if filter_seen else None, exclude):
                if mask is None:
                    continue
                if cand is None:
                    mask_rows(s, mask, batch)
                else:
                    mask_candidates(s, mask, batch, cand)
            top, out_scores[lo:lo + chunk] = topk(s, k)
            out_items[lo:lo + chunk] = top if cand is None else np.take_along_axis(cand, top, 1)
        return out_items, out_scores

    def _update(self, user: int, item: int, timestamp: int | None) -> None:
        if self.seen_set_.add(user, item):
            self._update_users(np.array([user]))

    def _extend(self, events: Interactions) -> None:
        csr = events.to_csr()
        self.seen_set_.extend(csr)
        self._update_users(np.flatnonzero(np.diff(csr.indptr)))

    # ---- the seen set (one object, owned by the innermost model) --------------------------
    @property
    def seen_(self) -> sp.csr_matrix:
        """The seen items as CSR [n_users, n_items] (training events plus updates)."""
        return self.seen_set_.csr

    @seen_.setter
    def seen_(self, matrix: sp.spmatrix) -> None:
        self.seen_set_ = SeenSet(matrix)

    # ---- helpers --------------------------------------------------------------------------
    def supports(self, capability: type) -> bool:
        """Whether this model has a declared capability (``capabilities.EmbeddingModel``, ...)."""
        return isinstance(self, capability)

    def parts(self) -> dict[str, "Recommender"]:
        """The models it is built from, by field (``components``), those that are set."""
        return {n: getattr(self, n) for n in self.components if getattr(self, n) is not None}

    def is_fitted(self) -> bool:
        """True once ``fit`` (or ``load``) has given the model its state."""
        return "n_items_" in self.__dict__

    def _check_fitted(self):
        if not self.is_fitted():
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) first")

    def _check_users(self, users) -> np.ndarray:
        self._check_fitted()
        return as_indices(users, self.n_users_, "user")

    def serving_device(self) -> str:
        """Where ``recommend`` computes its scores ("cpu"; a torch model: its device)."""
        return "cpu"

    def stats(self) -> dict:
        """Serving counters (cache hits, ...); a chain reports those of all its layers."""
        return {}

    def get_config(self) -> dict:
        """Constructor parameters (a dataclass's fields); components nest as {"class": ..., ...}."""
        cfg = {}
        if is_dataclass(self):
            for f in fields(self):
                v = getattr(self, f.name)
                nested = f.name in self.components and v is not None
                cfg[f.name] = {"class": type(v).__name__, **v.get_config()} if nested else v
        return cfg

    @classmethod
    def from_config(cls, config: dict) -> "Recommender":
        """An unfitted model from ``{"class": name, **get_config()}`` (``"class"`` defaults to
        ``cls``), every nested component rebuilt too."""
        config = dict(config)
        config.setdefault("class", cls.__name__)
        return persistence.from_config(Recommender.registry, config, cls)

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @property
    def name(self) -> str:
        return type(self).__name__

    def serving_bytes(self) -> int:
        """Bytes of the fitted state needed to serve (arrays, sparse matrices, tensors, seen set)."""
        return sum(_nbytes(v) for k, v in vars(self).items() if k.endswith("_"))

    # ---- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted arrays by name; each component's under ``"<field>."``."""
        self._check_fitted()
        state = self._own_state()
        for name, part in self.parts().items():
            if part.is_fitted():
                state.update({f"{name}.{k}": v for k, v in part.state_dict().items()})
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        own, nested = persistence.split_components(state, self.components)
        for name, part in self.parts().items():
            if nested[name]:
                part.load_state_dict(nested[name])
        self._load_own_state(own)

    def _own_state(self) -> dict[str, np.ndarray]:
        return persistence.own_arrays(self)

    def _load_own_state(self, state: dict[str, np.ndarray]) -> None:
        persistence.restore_arrays(self, state)

    def save(self, path) -> Path:
        """Write config (JSON) and fitted arrays (npz, no pickle) to ``path`` (a .npz file)."""
        return persistence.save(self, path)

    @classmethod
    def load(cls, path) -> "Recommender":
        """Load a model saved with ``save``; only registered Recommender classes are built."""
        return persistence.load(Recommender.registry, path, cls)

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """Predicted peak memory and seconds of ``fit`` on ``n_events`` training events, before
        fitting (a :class:`~recsys_lab.models.cost.CostEstimate`). This default is the training
        CSR (24 bytes per event while built) and one pass over the events, right for Popularity;
        models with larger state override it with their own formula."""
        from .cost import EVENTS_PER_SECOND, CostEstimate, train_csr_bytes
        return CostEstimate(train_csr_bytes(n_users, n_events) + 4.0 * n_items,
                            n_events / EVENTS_PER_SECOND)


def check_fit_data(train, valid=None) -> None:
    """``train``: non-empty Interactions; ``valid``: None or Interactions in the same id space."""
    if not isinstance(train, Interactions):
        raise TypeError(f"fit expects Interactions, got {type(train).__name__}")
    if len(train) == 0:
        raise ValueError("cannot fit on an empty training set")
    if valid is None:
        return
    if not isinstance(valid, Interactions):
        raise TypeError(f"valid must be Interactions, got {type(valid).__name__}")
    if (valid.n_users, valid.n_items) != (train.n_users, train.n_items):
        raise ValueError("valid and train must share one id space "
                         f"({valid.n_users}x{valid.n_items} vs {train.n_users}x{train.n_items})")


def _nbytes(v) -> int:
    if isinstance(v, np.ndarray):
        return v.nbytes
    if isinstance(v, SeenSet):
        return v.nbytes
    if sp.issparse(v):
        v = v.tocsr()
        return v.data.nbytes + v.indices.nbytes + v.indptr.nbytes
    torch = _torch()
    if torch is not None and isinstance(v, torch.Tensor):
        return v.element_size() * v.nelement()
    if torch is not None and isinstance(v, torch.nn.Module):
        return sum(_nbytes(t) for t in list(v.parameters()) + list(v.buffers()))
    return 0


def _torch():
    """torch if it is imported (no tensor can exist otherwise), else None."""
    import sys
    return sys.modules.get("torch")


@dataclass(eq=False)
class Popularity(Recommender):
    """Most-popular baseline: score(u, i) = number of training users who interacted with i."""

    def _fit(self, train):
        self.counts_ = np.asarray(self.seen_.sum(0)).ravel().astype(np.float32)

    def _score(self, users):
        return np.broadcast_to(self.counts_, (len(users), self.n_items_))


@dataclass(eq=False)
class Random(Recommender):
    """Uniform random baseline; scores are a seeded function of (user, item), so repeatable."""

    seed: int = 0

    def _fit(self, train):
        pass

    def _score(self, users):
        # one seeded random permutation per user, reproducible and independent of batching
        out = np.empty((len(users), self.n_items_), dtype=np.float32)
        for r, u in enumerate(users):
            out[r] = np.random.default_rng([self.seed, int(u)]).random(self.n_items_, dtype=np.float32)
        return out
