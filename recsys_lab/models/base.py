"""The Recommender contract shared by every model and accelerator.

    model = SomeModel(seed=0).fit(train)          # train: Interactions -> self
    s = model.score(users)                        # float32 [len(users), n_items], higher is better
    items, scores = model.recommend(users, k=10)  # int64 / float32 [len(users), k]

Subclasses are dataclasses (their fields are the config) and implement ``_fit`` and ``_score``;
fitted state lives in attributes ending in ``_`` (scikit-learn's convention) and is what
``save``/``load`` round-trip, as a numpy ``.npz`` read with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..fileio import atomic_path

_CHUNK_CELLS = 1 << 18  # users x items scored at once (1 MB of float32: stays in cache)


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row: a partition finds the k-th value, then only k are sorted; ties go to the lower index.

    scores: [n, n_items] (NaN counts as -inf). Returns (items int64 [n, k], values float32 [n, k]).
    Ties (equal float32 values) go to the lower item index, the package's one rule
    (:mod:`recsys_lab.ties`), so a row's result never depends on its batch or on the CPU.
    """
    scores = np.asarray(scores)
    n, m = scores.shape
    if not 0 < k <= m:
        raise ValueError(f"k must be in 1..{m} (the number of items), got k={k}")
    s = scores.astype(np.float32, copy=False)
    if np.isnan(s).any():
        s = np.where(np.isnan(s), np.float32(-np.inf), s)
    if k == m:
        items = np.argsort(-s, axis=1, kind="stable")
        return items.astype(np.int64), np.take_along_axis(s, items, 1)
    kth = np.partition(s, m - k, axis=1)[:, m - k:m - k + 1]             # [n, 1] the k-th best value
    take = s >= kth                                                       # top k, plus extra ties
    excess = np.flatnonzero(take.sum(1) > k)
    if len(excess):                                                       # keep the lowest-index ties
        sub, th = s[excess], kth[excess]
        tied = sub == th
        need = k - (sub > th).sum(1, keepdims=True)
        take[excess] = (sub > th) | (tied & (np.cumsum(tied, axis=1) <= need))
    items = np.nonzero(take)[1].reshape(n, k)                            # [n, k] in index order
    vals = np.take_along_axis(s, items, 1)
    order = np.argsort(-vals, axis=1, kind="stable")                      # stable: ties keep index order
    return np.take_along_axis(items, order, 1).astype(np.int64), np.take_along_axis(vals, order, 1)


class Recommender:
    """Base class: validation, seen-item masking, batched top-k, config, save/load."""

    registry: ClassVar[dict[str, type]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        Recommender.registry[cls.__name__] = cls

    # ---- to implement ---------------------------------------------------------------------
    def _fit(self, train: Interactions) -> None:
        raise NotImplementedError

    def _score(self, users: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    # ---- the contract ---------------------------------------------------------------------
    def fit(self, train: Interactions, valid: Interactions | None = None) -> "Recommender":
        """Fit on ``train``; ``valid`` (held-out events) is used by learned models for early
        stopping and ignored by closed-form ones, so every model takes the same call."""
        if not isinstance(train, Interactions):
            raise TypeError(f"fit expects Interactions, got {type(train).__name__}")
        if len(train) == 0:
            raise ValueError("cannot fit on an empty training set")
        self.n_users_, self.n_items_ = train.n_users, train.n_items
        self.seen_ = train.to_csr()
        self._fit(train)
        return self

    def score(self, users) -> np.ndarray:
        users = self._check_users(users)
        return np.asarray(self._score(users), dtype=np.float32)

    def recommend(self, users, k: int = 10, filter_seen: bool = True, exclude: sp.spmatrix | None = None):
        """Top-k items per user, best first. ``exclude`` masks more items (e.g. validation)."""
        users = self._check_users(users)
        k = int(k)
        if k <= 0:
            raise ValueError(f"k must be a positive integer, got {k}")
        if k > self.n_items_:
            raise ValueError(f"k={k} is larger than the catalog ({self.n_items_} items)")
        chunk = max(1, _CHUNK_CELLS // self.n_items_)
        out_items = np.empty((len(users), k), dtype=np.int64)
        out_scores = np.empty((len(users), k), dtype=np.float32)
        for lo in range(0, len(users), chunk):
            batch = users[lo:lo + chunk]
            s = np.array(self._score(batch), dtype=np.float32)
            if filter_seen:
                mask_rows(s, self.seen_, batch)
            if exclude is not None:
                mask_rows(s, exclude, batch)
            out_items[lo:lo + chunk], out_scores[lo:lo + chunk] = topk(s, k)
        return out_items, out_scores

    # ---- helpers --------------------------------------------------------------------------
    def is_fitted(self) -> bool:
        """True once ``fit`` (or ``load``) has given the model its state."""
        try:
            self._check_fitted()
        except RuntimeError:
            return False
        return True

    def _check_fitted(self):
        if not hasattr(self, "n_items_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted: call fit(train) first")

    def _check_users(self, users) -> np.ndarray:
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users))
        if users.ndim != 1 or not np.issubdtype(users.dtype, np.integer):
            raise TypeError("users must be a 1-d array of integer user indices")
        bad = users[(users < 0) | (users >= self.n_users_)]
        if len(bad):
            raise IndexError(f"unknown user index {bad[:5].tolist()} (model knows {self.n_users_} users)")
        return users.astype(np.int64)

    def get_config(self) -> dict:
        """Constructor parameters (a dataclass's fields); wrapped models nest."""
        cfg = {}
        if is_dataclass(self):
            for f in fields(self):
                v = getattr(self, f.name)
                cfg[f.name] = {"class": type(v).__name__, **v.get_config()} if isinstance(v, Recommender) else v
        return cfg

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    @property
    def name(self) -> str:
        return type(self).__name__

    def serving_bytes(self) -> int:
        """Bytes of the fitted state needed to serve (arrays, sparse matrices, tensors)."""
        return sum(_nbytes(v) for k, v in vars(self).items() if k.endswith("_"))

    # ---- persistence ----------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Fitted arrays by name; sparse matrices are stored as their CSR parts."""
        self._check_fitted()
        state = {}
        for k, v in vars(self).items():
            if not k.endswith("_"):
                continue
            if sp.issparse(v):
                v = v.tocsr()
                for part in ("data", "indices", "indptr"):
                    state[f"{k}__csr_{part}"] = getattr(v, part)
                state[f"{k}__csr_shape"] = np.array(v.shape)
            elif isinstance(v, (np.ndarray, int, float, np.integer, np.floating)):
                state[k] = np.asarray(v)
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        for k in [k for k in state if k.endswith("__csr_shape")]:
            base = k[: -len("__csr_shape")]
            setattr(self, base, sp.csr_matrix(
                (state[f"{base}__csr_data"], state[f"{base}__csr_indices"], state[f"{base}__csr_indptr"]),
                shape=tuple(state[k])))
        for k, v in state.items():
            if "__csr_" not in k:
                setattr(self, k, v.item() if v.ndim == 0 else v)

    def save(self, path) -> Path:
        """Write config (JSON) and fitted arrays (npz, no pickle) to ``path`` (a .npz file)."""
        path = Path(path)
        meta = json.dumps({"class": type(self).__name__, "config": self.get_config()})
        state = self.state_dict()
        with atomic_path(path, suffix=".npz") as tmp:
            np.savez(tmp, __meta__=np.array(meta), **state)
        return path

    @classmethod
    def load(cls, path) -> "Recommender":
        """Load a model saved with ``save``; only registered Recommender classes are built."""
        with np.load(Path(path), allow_pickle=False) as f:
            meta = json.loads(str(f["__meta__"]))
            state = {k: f[k] for k in f.files if k != "__meta__"}
        klass = Recommender.registry.get(meta["class"])
        if klass is None:
            raise ValueError(f"unknown model class {meta['class']!r} in {path}")
        model = klass(**{k: v for k, v in meta["config"].items() if not isinstance(v, dict)})
        model.load_state_dict(state)
        return model

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """Predicted peak memory and seconds of ``fit`` on ``n_events`` training events, before
        fitting (a :class:`~recsys_lab.models.cost.CostEstimate`). This default is the training
        CSR (24 bytes per event while built) and one pass over the events, right for Popularity;
        models with larger state override it with their own formula."""
        from .cost import EVENTS_PER_SECOND, CostEstimate, train_csr_bytes
        return CostEstimate(train_csr_bytes(n_users, n_events) + 4.0 * n_items,
                            n_events / EVENTS_PER_SECOND)


def mask_rows(scores: np.ndarray, csr: sp.csr_matrix, users: np.ndarray) -> None:
    """Set ``scores[r, j] = -inf`` wherever ``csr[users[r], j]`` is stored (in place)."""
    sub = csr[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf


def _nbytes(v) -> int:
    if isinstance(v, np.ndarray):
        return v.nbytes
    if sp.issparse(v):
        v = v.tocsr()
        return v.data.nbytes + v.indices.nbytes + v.indptr.nbytes
    if hasattr(v, "element_size") and hasattr(v, "nelement"):  # torch.Tensor
        return v.element_size() * v.nelement()
    if hasattr(v, "parameters") and hasattr(v, "buffers"):  # torch.nn.Module
        return sum(_nbytes(t) for t in list(v.parameters()) + list(v.buffers()))
    return 0


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

