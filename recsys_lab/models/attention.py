"""User-to-item attention pooling, the source article's section 4.3 (the transparent teaching version).

For a user vector u and the vectors v_j of the items in the user's history H_u:

    e_j     = f_att(u, v_j) = u . v_j / tau                 (inner-product attention score)
    alpha_j = exp(e_j) / sum_{k in H_u} exp(e_k)            (softmax: weights sum to 1)
    u'      = sum_j alpha_j v_j                              (attention-pooled user representation)
    s(u, i) = u' . v_i

``AttentionPooling`` wraps any trained embedding model (``user_vectors``/``item_vectors``, e.g.
BPR-MF): it re-expresses each user as the attention-weighted mean of what they bought, so every
recommendation can be explained by the weights alpha. ``tau -> inf`` gives the plain mean of the
history vectors; small ``tau`` focuses on the history item closest to u.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Recommender
from .capabilities import EmbeddingModel


def attention_weights(u: np.ndarray, V: np.ndarray, tau: float = 1.0) -> np.ndarray:
    """alpha = softmax(V u / tau) for u [d] and V [n, d]: [n] weights summing to 1 (stable)."""
    e = V @ u / tau                                             # [n] scores e_j
    e = e - e.max()
    w = np.exp(e)
    return w / w.sum()


def attention_pool(u: np.ndarray, V: np.ndarray, tau: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(alpha [n], u' = alpha @ V [d]): the attention-pooled representation of u over V."""
    alpha = attention_weights(u, V, tau)
    return alpha, alpha @ V


@dataclass(eq=False)
class AttentionPooling(Recommender, EmbeddingModel):
    """Scores s(u, i) = u'.v_i with u' the attention pool of u over its history (``base`` vectors).

    ``base``: an EmbeddingModel (fitted on ``fit``'s data unless it is fitted already). A new event
    (``update``) re-pools that user over the grown history.
    """

    base: Recommender | None = None
    tau: float = 1.0

    components: ClassVar[tuple[str, ...]] = ("base",)
    wraps: ClassVar[str] = "base"

    def _check_config(self):
        if self.base is None or not self.base.supports(EmbeddingModel):
            raise TypeError("base must be an embedding model (EmbeddingModel: user_vectors/item_vectors), "
                            f"got {type(self.base).__name__}")
        if not self.tau > 0:
            raise ValueError(f"tau must be > 0, got {self.tau!r}")

    def fit(self, train, valid=None):
        if not self.base.is_fitted():
            self.base.fit(train, valid=valid)
        return super().fit(train, valid=valid)

    def _fit(self, train):
        V = self.base.item_vectors()                            # [n_items, d]
        U = self.base.user_vectors(np.arange(self.n_users_))    # [n_users, d]
        self.base_user_factors_ = U.astype(np.float32)              # the queries u, for explain()
        self.user_factors_ = U.astype(np.float32)                   # users without history keep u
        self.item_factors_ = V.astype(np.float32)
        self._update_users(np.arange(self.n_users_))

    def _update_users(self, users):
        """u' = the attention pool of u over its (grown) history."""
        for u in users:
            items = self.seen_set_.items(u)
            if len(items):
                self.user_factors_[u] = attention_pool(self.base_user_factors_[u], self.item_factors_[items],
                                                       self.tau)[1]

    def explain(self, user: int) -> tuple[np.ndarray, np.ndarray]:
        """(history items, their attention weights alpha) for one user, highest weight first."""
        u = int(self._check_users([user])[0])
        items = self.seen_set_.items(u)
        alpha = attention_weights(self.base_user_factors_[u], self.item_factors_[items], self.tau)
        order = np.argsort(-alpha, kind="stable")
        return items[order], alpha[order]

    def _score(self, users):
        return self.user_factors_[users] @ self.item_factors_.T     # [n, d] @ [d, n_items]

    def user_vectors(self, users=None):
        self._check_fitted()
        return self.user_factors_ if users is None else self.user_factors_[self._check_users(users)]

    def item_vectors(self):
        self._check_fitted()
        return self.item_factors_
