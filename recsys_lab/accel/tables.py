"""Re-encoded serving tables: the base of Quantized, Pruned and LowRank, and table sizes.

An EmbeddingModel's user table (``user_vectors`` of every user) and item table are re-encoded at
build time and served from the encoding; ``update`` re-encodes the rows of users whose history
changed (PureSVD folds the new item in). A TorchModel without vectors: a copy of its module is
transformed (``transform_module``) and scored with the model's ``score_users``.
"""
from __future__ import annotations

import copy
import io
from dataclasses import dataclass

import numpy as np

from ..models.base import _nbytes
from ..models.capabilities import EmbeddingModel, TorchModel
from .base import Wrapper


def embedding_bytes(model) -> int:
    """Bytes of a model's served embedding tables: the encoded tables of a re-encoding wrapper,
    else the fp32 user and item tables of an EmbeddingModel (TypeError for any other model)."""
    if not model.supports(EmbeddingModel):
        raise TypeError(f"{type(model).__name__} has no embedding tables (it is not an EmbeddingModel)")
    return int(model.embedding_bytes())


def module_bytes(module) -> int:
    """Serialised size of a torch module's state (counts packed int8 weights that
    ``parameters()`` does not show)."""
    import torch
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    return buf.getbuffer().nbytes


def _tree_bytes(x) -> int:
    if isinstance(x, dict):
        return sum(_tree_bytes(v) for v in x.values())
    return _nbytes(x)


@dataclass(eq=False)
class TableWrapper(Wrapper):
    """Base of the compression wrappers (see the module docstring). Subclasses implement
    ``encode``/``decode`` (and may override ``fit_codec``, ``score_tables``, ``transform_module``)."""

    # ---- to implement ---------------------------------------------------------------------
    def fit_codec(self, items: np.ndarray) -> None:
        """Learn codec parameters from the fp32 item table (default: none)."""

    def encode(self, x: np.ndarray, table: str):
        raise NotImplementedError

    def decode(self, enc, rows=None) -> np.ndarray:
        raise NotImplementedError

    def transform_module(self, module):
        raise TypeError(f"{type(self).__name__} supports only embedding models, not {type(self.model).__name__}")

    def set_rows(self, enc, rows: np.ndarray, new):
        """``enc`` with ``rows`` replaced by the encoded ``new`` rows (dicts of per-row arrays)."""
        for name, arr in enc.items():
            arr[rows] = new[name]
        return enc

    # ---- shared ---------------------------------------------------------------------------
    def _check_model(self, model):
        if not (model.supports(EmbeddingModel) or model.supports(TorchModel)):
            raise TypeError(f"{type(self).__name__} needs an embedding model (EmbeddingModel) or a torch "
                            f"model (TorchModel); {type(model).__name__} is neither")

    def _tables(self) -> bool:
        return self.model.supports(EmbeddingModel)

    def _build(self):
        if self._tables():
            items = np.asarray(self.model.item_vectors(), dtype=np.float32)
            self.fit_codec(items)
            self.items_ = self.encode(items, "item")
            self.users_ = self.encode(self.model.user_vectors(np.arange(self.n_users_)), "user")
            self.module_ = None
            return
        self.items_ = self.users_ = None
        self.module_ = self.transform_module(copy.deepcopy(self.model.module_).eval())

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
        if self.module_ is not None:
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
        return self.embedding_bytes() + self.seen_set_.nbytes
