"""Neighbourhood collaborative filtering: UserKNN and ItemKNN.

Similarities come from :func:`recsys_lab.similarity.similarity_matrix` (cosine, pearson,
adjusted_cosine, jaccard; shrinkage; each user / item keeps its ``k`` most similar neighbours,
those with positive similarity).

Top-N ranking (implicit feedback; Deshpande & Karypis, TOIS 2004), x_u the user's 0/1 row:
    ItemKNN  score(u, i) = sum_{j in I_u} s_ji          (s_j. keeps item j's k neighbours)
    UserKNN  score(u, i) = sum_{v in N_k(u)} s_uv x_vi

Rating prediction, the mean-centred weighted average (Resnick et al., CSCW 1994), via ``predict``:
    UserKNN  r(u, i) = m_u + sum_{v in N_k(u), v rated i} s_uv (r_vi - m_v) / sum |s_uv|
    ItemKNN  r(u, i) = m_i + sum_{j in N_k(i), u rated j} s_ij (r_uj - m_j) / sum |s_ij|
falling back to m_u (m_i) when no neighbour rated the target, to the global mean for a
user / item without ratings, and clipped to the training rating range.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from ..data.interactions import Interactions
from ..similarity import METRICS, similarity_matrix
from .base import Recommender


@dataclass(eq=False)
class NeighbourhoodCF(Recommender):
    """Shared code of UserKNN and ItemKNN (``by`` says which axis holds the neighbours).

    similarity: one of ``recsys_lab.similarity.METRICS``
    k:          neighbours kept per user (UserKNN) or item (ItemKNN)
    shrink:     shrinkage constant, sim * n_common / (n_common + shrink)
    use_ratings: compute similarities on rating values (None: when the training data has
                ratings); pearson and adjusted_cosine need them.
    """

    similarity: str = "cosine"
    k: int = 100
    shrink: float = 0.0
    use_ratings: bool | None = None
    by: ClassVar[str] = "item"

    def __post_init__(self):
        if self.similarity not in METRICS:
            raise ValueError(f"unknown similarity {self.similarity!r}; choose one of {METRICS}")
        if int(self.k) != self.k or self.k <= 0:
            raise ValueError(f"k (neighbours) must be a positive integer, got {self.k!r}")
        if self.shrink < 0:
            raise ValueError(f"shrink must be >= 0, got {self.shrink}")

    def _fit(self, train: Interactions) -> None:
        use_ratings = train.rating is not None if self.use_ratings is None else self.use_ratings
        if use_ratings and train.rating is None:
            raise ValueError(f"{self.name}(use_ratings=True) needs training data with ratings")
        if not use_ratings and self.similarity in ("pearson", "adjusted_cosine"):
            raise ValueError(f"similarity={self.similarity!r} is undefined on 0/1 data (every "
                             "centred value is 0); fit on ratings or use cosine / jaccard")
        R = _mean_ratings(train) if train.rating is not None else None
        M = R if use_ratings else self.seen_                           # users x items
        rows = M if self.by == "user" else M.T.tocsr()
        self.sim_ = similarity_matrix(rows, self.similarity, k=int(self.k), shrink=self.shrink)
        if R is not None:                                              # state for predict()
            self.global_mean_ = float(R.data.mean())
            self.rating_range_ = np.array([R.data.min(), R.data.max()])
            other = R.T.tocsr() if self.by == "user" else R            # rows: the other axis
            counts = np.bincount(other.indices, minlength=other.shape[1])
            means = np.asarray(other.sum(0)).ravel() / np.maximum(counts, 1)
            self.mean_ = np.where(counts > 0, means, self.global_mean_)  # m_u (user) / m_i (item)
            self.resid_ = other.copy()                                 # r - m, explicit 0s kept
            self.resid_.data = other.data - self.mean_[other.indices]

    def _score(self, users: np.ndarray) -> np.ndarray:
        if self.by == "user":
            return (self.sim_[users] @ self.seen_).toarray()
        return (self.seen_[users] @ self.sim_).toarray()

    def predict(self, users, items) -> np.ndarray:
        """Predicted ratings of the (users[j], items[j]) pairs: float32 [len(users)]."""
        users = self._check_users(users)
        items = np.atleast_1d(np.asarray(items))
        if items.shape != users.shape or not np.issubdtype(items.dtype, np.integer):
            raise ValueError(f"items must be integer indices shaped like users {users.shape}, got "
                             f"{items.dtype} {items.shape}")
        bad = items[(items < 0) | (items >= self.n_items_)]
        if len(bad):
            raise IndexError(f"unknown item index {bad[:5].tolist()} (model knows {self.n_items_} items)")
        if not hasattr(self, "resid_"):
            raise RuntimeError(f"{self.name} was fitted without ratings: predict needs rating data")
        target, other = (users, items) if self.by == "user" else (items, users)
        W = self.sim_[target]                                          # [n, n_target_axis]
        D = self.resid_[other]                                         # [n, n_target_axis]
        rated = D.copy()
        rated.data = np.ones_like(rated.data)
        num = np.asarray(W.multiply(D).sum(1)).ravel()
        den = np.asarray(abs(W).multiply(rated).sum(1)).ravel()
        dev = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.clip(self.mean_[target] + dev, *self.rating_range_).astype(np.float32)


@dataclass(eq=False)
class UserKNN(NeighbourhoodCF):
    """User-based CF: neighbours are the ``k`` users most similar to the target user."""

    by: ClassVar[str] = "user"


@dataclass(eq=False)
class ItemKNN(NeighbourhoodCF):
    """Item-based CF (Sarwar et al., WWW 2001): neighbours are the ``k`` items most similar to an item."""

    by: ClassVar[str] = "item"


def _mean_ratings(train: Interactions) -> sp.csr_matrix:
    """User x item rating matrix; repeated (user, item) events are averaged."""
    shape = (train.n_users, train.n_items)
    total = sp.csr_matrix((train.rating.astype(np.float64), (train.user, train.item)), shape=shape)
    count = sp.csr_matrix((np.ones(len(train)), (train.user, train.item)), shape=shape)
    for m in (total, count):
        m.sum_duplicates()
        m.sort_indices()
    total.data /= count.data
    return total
