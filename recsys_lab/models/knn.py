"""Neighbourhood collaborative filtering: UserKNN and ItemKNN.

Similarities come from :func:`recsys_lab.similarity.similarity_matrix` (cosine, pearson,
adjusted_cosine, jaccard; shrinkage in Koren's or RecBole's form); N_k(t) is the set of the ``k``
objects most similar to t with positive similarity (ties to the lower index, recsys_lab.ties).

Top-N ranking (implicit feedback), x_u the user's 0/1 row, I_u its items. ``neighbourhood``
says whose k neighbours are kept:

    "target" (default; the first source article's step 3, Sarwar et al., WWW 2001, Deshpande &
    Karypis, TOIS 2004, RecBole's ItemKNN): the neighbours of the object being scored,
        ItemKNN  score(u, i) = sum_{j in I_u, j in N_k(i)} s_ij
        UserKNN  score(u, i) = sum_{v in N_k(u)} s_uv x_vi
    "source" (implicit's ItemItemRecommender): each history object votes for its own k neighbours,
        ItemKNN  score(u, i) = sum_{j in I_u, i in N_k(j)} s_ji
        UserKNN  score(u, i) = sum_{v : u in N_k(v)} s_vu x_vi  (user v passes its items to the k
                 users most similar to v: the reverse k-NN graph; no library's default)

The two differ whenever similarity neighbourhoods are not mutual: a popular item is in many
items' N_k, so under "source" it collects votes from every history item that lists it, while
under "target" each candidate is judged on its own k nearest items only.

Rating prediction, the mean-centred weighted average (Resnick et al., CSCW 1994), via ``predict``,
over the same neighbourhood (shown for "target"):
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
from ..similarity import check_shrink_form, similarity_matrix
from .base import Recommender


NEIGHBOURHOODS = ("target", "source")


@dataclass(eq=False)
class NeighbourhoodCF(Recommender):
    """Shared code of UserKNN and ItemKNN (``by`` says which axis holds the neighbours).

    similarity: one of ``recsys_lab.similarity.METRICS``
    k:          neighbours kept per user (UserKNN) or item (ItemKNN)
    shrink:     shrinkage constant (0 = none)
    shrink_form: "koren", sim n_common / (n_common + shrink), or "recbole" (cosine only),
                a.b / (||a|| ||b|| + shrink)
    use_ratings: compute similarities on rating values (None: when the training data has
                ratings); pearson and adjusted_cosine need them.
    neighbourhood: "target" (the k neighbours of the scored item / user) or "source" (each
                history item / other user keeps its own k); see the module docstring.

    Fitted ``sim_`` holds the weights in the orientation the scores use: ItemKNN scores
    ``x_u @ sim_`` (sim_[j, i] = weight of history item j for candidate i; with "target", column
    i holds N_k(i), RecBole's W), UserKNN scores ``sim_[u] @ X`` (row u holds the weights of the
    users that vote for u; with "target", N_k(u)).
    """

    similarity: str = "cosine"
    k: int = 100
    shrink: float = 0.0
    use_ratings: bool | None = None
    neighbourhood: str = "target"
    shrink_form: str = "koren"
    by: ClassVar[str] = "item"

    def _check_config(self):
        check_shrink_form(self.similarity, self.shrink_form)
        if self.neighbourhood not in NEIGHBOURHOODS:
            raise ValueError(f"unknown neighbourhood {self.neighbourhood!r}; choose one of {NEIGHBOURHOODS}")
        if self.k <= 0:
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
        S = similarity_matrix(rows, self.similarity, k=int(self.k), shrink=self.shrink,
                              shrink_form=self.shrink_form)            # row t: t's k neighbours
        # ItemKNN scores X @ W (W[j, i]: history item j -> candidate i), UserKNN W @ X (W[u, v]:
        # user v -> target user u); "target" wants N_k(candidate) / N_k(u) on the target axis
        if (self.by == "item") == (self.neighbourhood == "target"):
            S = S.T.tocsr()
            S.sort_indices()                                           # one summation order
        self.sim_ = S
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
        by_target = self.sim_ if self.by == "user" else self.sim_.T.tocsr()  # row t: t's voters
        W = by_target[target]                                          # [n, n_target_axis]
        D = self.resid_[other]                                         # [n, n_target_axis]
        rated = D.copy()
        rated.data = np.ones_like(rated.data)
        num = np.asarray(W.multiply(D).sum(1)).ravel()
        den = np.asarray(abs(W).multiply(rated).sum(1)).ravel()
        dev = np.divide(num, den, out=np.zeros_like(num), where=den > 0)
        return np.clip(self.mean_[target] + dev, *self.rating_range_).astype(np.float32)

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """similarity_matrix over the n rows (items for ItemKNN): dense blocks of every row pair
        (n^2 cells), the co-occurrence multiply-adds of the sparse products, five float64 copies
        of the matrix (60 bytes per event) and the pruned neighbours (about 60 bytes each)."""
        from .cost import (CELL_SECONDS, SPARSE_MACS, CostEstimate, cooccurrence_pairs,
                           power_of_ten, train_csr_bytes)
        n, other = (n_items, n_users) if self.by == "item" else (n_users, n_items)
        kept = float(n) * min(int(self.k), max(n - 1, 1))
        pairs = cooccurrence_pairs(other, n, n_events)
        blocks = 2 * 5 * 8 * min(2**21, float(n) * n)   # two threads x five float64 [chunk, n] arrays
        return CostEstimate(train_csr_bytes(n_users, n_events) + 72.0 * n_events + 60.0 * kept + blocks,
                            float(n) ** 2 * CELL_SECONDS + pairs / SPARSE_MACS,
                            f"the {power_of_ten(n)} x k neighbour lists and float64 copies of the data",
                            f"dense similarity blocks of all ({power_of_ten(n)})^2 {self.by} pairs")


@dataclass(eq=False)
class UserKNN(NeighbourhoodCF):
    """User-based CF (Resnick et al., 1994; the article's step 3 for users): with the default
    ``neighbourhood="target"`` the ``k`` users most similar to the target user vote; "source" is
    the reverse k-NN graph (the users that count the target among their own k)."""

    by: ClassVar[str] = "user"


@dataclass(eq=False)
class ItemKNN(NeighbourhoodCF):
    """Item-based CF (Sarwar et al., WWW 2001): with the default ``neighbourhood="target"`` a
    candidate item is scored from the user's items among its ``k`` most similar (RecBole's
    ItemKNN); "source" lets each history item vote for its own ``k`` (implicit's)."""

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
