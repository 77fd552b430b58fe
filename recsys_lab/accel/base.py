"""The shared base of every accelerator: a Recommender that wraps a trained Recommender.

    acc = SomeAccelerator(trained_model, knob=...)     # built at once when the model is fitted
    acc = SomeAccelerator(SomeModel(...)).fit(train)   # or: fit trains the wrapped model, then builds

A wrapper reuses the wrapped model's ``n_users_``, ``n_items_`` and ``seen_`` (one seen set per
chain, held by the innermost model), nests its config under ``model`` and saves the wrapped model's
state next to its own, so ``Recommender.load`` round-trips a whole chain such as
``Cached(ANNIndex(PureSVD()))``. ``update(user, item)`` records a new interaction: the innermost
model's seen set grows and every wrapper in the chain refreshes its per-user state.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from ..models.base import Recommender, _nbytes


def is_fitted(model: Recommender) -> bool:
    return model.is_fitted()


def has_vectors(model) -> bool:
    """True for embedding models (score = user_vectors(u) . item_vectors()^T)."""
    return callable(getattr(model, "user_vectors", None)) and callable(getattr(model, "item_vectors", None))


def embedding_bytes(model) -> int:
    """Bytes of a model's served embedding tables: the wrapper's encoded tables when it has
    ``embedding_bytes()``, else the fp32 user and item tables of an embedding model."""
    if callable(getattr(model, "embedding_bytes", None)):
        return int(model.embedding_bytes())
    if not has_vectors(model):
        raise TypeError(f"{type(model).__name__} has no embedding tables (user_vectors/item_vectors)")
    return int(model.user_vectors(np.arange(model.n_users_)).nbytes + model.item_vectors().nbytes)


def csr_insert(m: sp.csr_matrix, row: int, col: int, value: float = 1.0) -> sp.csr_matrix:
    """``m`` with entry (row, col) set to ``value`` (a new CSR; O(nnz) memmove, no format change)."""
    lo, hi = m.indptr[row], m.indptr[row + 1]
    cols = m.indices[lo:hi]
    hit = np.flatnonzero(cols == col)
    if len(hit):
        out = m.copy()
        out.data[lo + hit[0]] = value
        return out
    pos = lo + int(np.searchsorted(cols, col)) if m.has_sorted_indices else hi
    indices = np.insert(m.indices, pos, col)
    data = np.insert(m.data, pos, value)
    indptr = m.indptr.copy()
    indptr[row + 1:] += 1
    return sp.csr_matrix((data, indices, indptr), shape=m.shape)


@dataclass(eq=False)
class Wrapper(Recommender):
    """Base of the accelerators. Subclasses implement ``_build()`` (from the fitted ``model``)
    and ``_score``/``recommend``; optional hooks ``_update_users(users)`` (their histories grew)
    and ``_extra_state()``/``_restore(state)`` (state worth saving rather than rebuilding)."""

    model: Recommender | None = None

    def __post_init__(self):
        self._built = False
        self._check_config()
        if self.model is not None:
            if not isinstance(self.model, Recommender):
                raise TypeError(f"{type(self).__name__} wraps a Recommender, got {type(self.model).__name__}")
            if is_fitted(self.model):
                self.build()

    # ---- hooks ----------------------------------------------------------------------------
    def _check_config(self) -> None:
        """Validate the knobs (raise ValueError naming the bad one)."""

    def _build(self) -> None:
        raise NotImplementedError

    def _update_users(self, users: np.ndarray) -> None:
        """The histories of ``users`` changed; refresh per-user state (default: nothing)."""

    def _extra_state(self) -> dict[str, np.ndarray]:
        return {}

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        self._build()

    # ---- the wrapped model's state --------------------------------------------------------
    @property
    def n_users_(self) -> int:
        return self._inner().n_users_

    @property
    def n_items_(self) -> int:
        return self._inner().n_items_

    @property
    def seen_(self) -> sp.csr_matrix:
        return self._inner().seen_

    @seen_.setter
    def seen_(self, value):
        self._inner().seen_ = value

    def _inner(self) -> Recommender:
        if self.model is None:
            raise AttributeError("no wrapped model")
        return self.model

    @property
    def base_model(self) -> Recommender:
        """The innermost (non-wrapper) model of the chain."""
        m = self.model
        while isinstance(m, Wrapper):
            m = m.model
        return m

    # ---- the contract ---------------------------------------------------------------------
    def build(self) -> "Wrapper":
        """(Re)build the accelerator from the wrapped model's current state."""
        if self.model is None or not is_fitted(self.model):
            raise RuntimeError(f"{type(self).__name__}: the wrapped model is not fitted")
        self._built = False
        self._build()
        self._built = True
        return self

    def fit(self, train, valid=None) -> "Wrapper":
        """Fit the wrapped model on ``train`` (scikit-learn semantics: it is retrained), then build."""
        if self.model is None:
            raise RuntimeError(f"{type(self).__name__} has no model to fit")
        self.model.fit(train, valid=valid)
        return self.build()

    def _check_fitted(self):
        if self.model is None or not is_fitted(self.model) or not self._built:
            raise RuntimeError(f"{type(self).__name__} is not fitted: wrap a fitted model or call fit(train) first")

    def update(self, user: int, item: int) -> None:
        """Record that ``user`` interacted with ``item``: the seen set grows, per-user state refreshes."""
        self._check_fitted()
        user, item = int(user), int(item)
        if not 0 <= user < self.n_users_:
            raise IndexError(f"unknown user index {user} (model knows {self.n_users_} users)")
        if not 0 <= item < self.n_items_:
            raise IndexError(f"unknown item index {item} (model knows {self.n_items_} items)")
        users = np.array([user])
        if isinstance(self.model, Wrapper):
            self.model.update(user, item)
        else:
            self.model.seen_ = csr_insert(self.model.seen_.tocsr(), user, item)
            if callable(getattr(self.model, "update_users", None)):
                self.model.update_users(users)
        self._update_users(users)

    def serving_bytes(self) -> int:
        """Own serving state plus the wrapped model's."""
        own = sum(_nbytes(v) for k, v in vars(self).items() if k.endswith("_"))
        return own + self.model.serving_bytes()

    # ---- persistence: the wrapped model's state under "model." ----------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        self._check_fitted()
        meta = json.dumps({"class": type(self.model).__name__, "config": self.model.get_config()})
        state = {"model.__meta__": np.array(meta)}
        state.update({f"model.{k}": v for k, v in self.model.state_dict().items()})
        state.update(self._extra_state())
        return state

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        meta = json.loads(str(state["model.__meta__"]))
        klass = Recommender.registry.get(meta["class"])
        if klass is None:
            raise ValueError(f"unknown wrapped model class {meta['class']!r}")
        inner = klass(**{k: v for k, v in meta["config"].items() if not isinstance(v, dict)})
        inner.load_state_dict({k[len("model."):]: v for k, v in state.items()
                               if k.startswith("model.") and k != "model.__meta__"})
        self.model = inner
        self._restore({k: v for k, v in state.items() if not k.startswith("model.")})
        self._built = True


def module_bytes(module) -> int:
    """Serialised size of a torch module's state (counts packed int8 weights that
    ``parameters()`` does not show)."""
    import io

    import torch
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes


def torch_module(model):
    """The wrapped model's ``nn.Module`` (``module_``) when it is a torch model, else None."""
    try:
        from torch import nn
    except ImportError:  # pragma: no cover - torch is a dependency
        return None
    mod = getattr(model, "module_", None)
    return mod if isinstance(mod, nn.Module) and callable(getattr(model, "score_users", None)) else None


@dataclass(eq=False)
class TableWrapper(Wrapper):
    """Base of the compression wrappers (Quantized, Pruned, LowRank).

    Embedding models: the user table (``user_vectors`` of every user) and the item table are
    re-encoded at build time and served from the encoding; ``update`` re-encodes the rows of users
    whose history changed (PureSVD folds the new item in). Torch models without vectors: a copy of
    the module is transformed (``transform_module``) and scored with the model's ``score_users``.
    Subclasses implement ``encode``/``decode`` (and may override ``fit_codec``, ``score_tables``).
    """

    # ---- to implement ---------------------------------------------------------------------
    def fit_codec(self, items: np.ndarray) -> None:
        """Learn codec parameters from the fp32 item table (default: none)."""

    def encode(self, x: np.ndarray, table: str):
        raise NotImplementedError

    def decode(self, enc, rows=None) -> np.ndarray:
        raise NotImplementedError

    def transform_module(self, module):
        raise TypeError(f"{type(self).__name__} supports only embedding models "
                        f"(user_vectors/item_vectors), not {type(self.model).__name__}")

    def set_rows(self, enc, rows: np.ndarray, new):
        """``enc`` with ``rows`` replaced by the encoded ``new`` rows (dicts of per-row arrays)."""
        for name, arr in enc.items():
            arr[rows] = new[name]
        return enc

    # ---- shared ---------------------------------------------------------------------------
    def _build(self):
        if has_vectors(self.model):
            items = np.asarray(self.model.item_vectors(), dtype=np.float32)
            self.fit_codec(items)
            self.items_ = self.encode(items, "item")
            self.users_ = self.encode(self.model.user_vectors(np.arange(self.n_users_)), "user")
            self.module_ = None
            return
        module = torch_module(self.model)
        if module is None:
            raise TypeError(f"{type(self).__name__} needs an embedding model (user_vectors/item_vectors) "
                            f"or a torch model (module_ + score_users); got {type(self.model).__name__}")
        import copy
        self.items_ = self.users_ = None
        self.module_ = self.transform_module(copy.deepcopy(module).eval())

    def _update_users(self, users):
        if self.users_ is not None:
            self.users_ = self.set_rows(self.users_, users, self.encode(self.model.user_vectors(users), "user"))

    def user_vectors(self, users=None) -> np.ndarray:
        """Decoded user vectors, float32 [len(users), d']."""
        self._require_tables()
        users = np.arange(self.n_users_) if users is None else self._check_users(users)
        return self.decode(self.users_, users)

    def item_vectors(self) -> np.ndarray:
        """Decoded item vectors, float32 [n_items, d']."""
        self._require_tables()
        return self.decode(self.items_)

    def _require_tables(self):
        self._check_fitted()
        if self.items_ is None:
            raise TypeError(f"{type(self).__name__} over {type(self.model).__name__} serves a torch "
                            "module, not embedding tables")

    def score_tables(self, users: np.ndarray) -> np.ndarray:
        return self.decode(self.users_, users) @ self.decode(self.items_).T

    def _score(self, users):
        if self.module_ is None:
            return self.score_tables(users)
        import torch
        with torch.no_grad():
            dev = next(iter(self.module_.parameters()), torch.empty(0)).device
            s = self.model.score_users(self.module_, torch.as_tensor(users, dtype=torch.long, device=dev))
        return s.float().cpu().numpy()

    def embedding_bytes(self) -> int:
        """Bytes of the encoded tables (or of the transformed module's state)."""
        self._check_fitted()
        if self.module_ is not None:
            return module_bytes(self.module_)
        return _tree_bytes(self.users_) + _tree_bytes(self.items_)

    def serving_bytes(self) -> int:
        """Encoded tables (or module) plus the seen set; the fp32 model is needed only by ``update``."""
        return self.embedding_bytes() + _nbytes(self.seen_)


def _tree_bytes(x) -> int:
    if isinstance(x, dict):
        return sum(_tree_bytes(v) for v in x.values())
    return _nbytes(x)
