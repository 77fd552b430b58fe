"""What a model can do, declared by the classes it inherits (cornac's ``ANNMixin`` style), never guessed.

    EmbeddingModel     s(u, i) = sim(p_u, q_i), 2-D user vectors [n, d] and item vectors [N, d]
    MultiVectorModel   s(u, i) = op_k <v_uk, q_i>: V vectors per user [n, V, d] (a validity mask
                       [n, V]), one per item [N, d], combined by a late-interaction operator
                       (ColBERT's MaxSim, Khattab & Zaharia, SIGIR 2020)
    TorchModel         a torch ``nn.Module`` in ``module_`` and its scoring path
                       ``score_users(module, users)``

Ask with ``model.supports(EmbeddingModel)``: a model answers for its class, a wrapper also for the
capabilities it passes through from the model it wraps (``Wrapper.forwards``), so
``Cached(PureSVD())`` supports EmbeddingModel and ``Cached(EASE())`` does not.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

MEASURES = ("dot", "cosine")


class EmbeddingModel(ABC):
    """Scores are a similarity of a user vector and an item vector (``vector_measure``: "dot" for
    s = <p_u, q_i>, "cosine" for <p_u, q_i> / (|p_u| |q_i|))."""

    def vector_measure(self) -> str:
        return "dot"

    @abstractmethod
    def user_vectors(self, users=None) -> np.ndarray:
        """User vectors, float32 [len(users), d] (all users when ``users`` is None)."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """Item vectors, float32 [n_items, d]."""

    def embedding_bytes(self) -> int:
        """Bytes of the served user and item tables."""
        return int(np.asarray(self.user_vectors()).nbytes + np.asarray(self.item_vectors()).nbytes)


class MultiVectorModel(ABC):
    """V vectors per user, one vector per item, and the operator that combines their inner products.

    ``late_interaction(user_vectors(u), user_vector_mask(u), item_vectors()[items])`` equals
    ``score(u, items)``: the model's own scores, recomputed from its vectors.
    """

    @abstractmethod
    def user_vectors(self, users=None) -> np.ndarray:
        """float32 [len(users), V, d] (all users when ``users`` is None)."""

    @abstractmethod
    def user_vector_mask(self, users=None) -> np.ndarray:
        """bool [len(users), V]: which of the V vectors take part (e.g. segments that hold items)."""

    @abstractmethod
    def item_vectors(self) -> np.ndarray:
        """float32 [n_items, d]."""

    @abstractmethod
    def late_interaction(self, vectors: np.ndarray, mask: np.ndarray, items: np.ndarray) -> np.ndarray:
        """The operator: vectors [n, V, d], mask [n, V], item vectors [N, d] (shared) or [n, C, d]
        -> scores float32 [n, N] / [n, C]."""


class TorchModel(ABC):
    """A torch model: ``module_`` (the fitted ``nn.Module``) and its scoring path."""

    @abstractmethod
    def score_users(self, module, users):
        """Scores Tensor [len(users), n_items] of ``users`` (LongTensor [n]) with ``module``."""
