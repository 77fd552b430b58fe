"""EASE: Embarrassingly Shallow Autoencoder (Steck, WWW 2019), the closed-form linear item-item model.

    min_B ||X - X B||_F^2 + reg ||B||_F^2   s.t.  diag(B) = 0
    P = (X^T X + reg I)^{-1},   B = I - P diagMat(1 / diag(P)),   i.e. B_ij = -P_ij / P_jj (i != j)
    score(u, .) = x_u B

Fitting inverts an n_items x n_items matrix (O(n_items^3) time, 8 n_items^2 bytes), so it suits
catalogs up to a few tens of thousands of items.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.sparse as sp

from ..data.interactions import Interactions
from .base import Recommender
from .sampling import WindowScorer


@dataclass(eq=False)
class EASE(Recommender, WindowScorer):
    """reg: the L2 penalty lambda (Steck uses 100-1000 on MovieLens / Netflix).
    max_items: refuse catalogs whose dense Gram matrix would not fit (8 max_items^2 bytes)."""

    reg: float = 250.0
    max_items: int = 30_000

    def _check_config(self):
        if not self.reg > 0:
            raise ValueError(f"reg must be > 0 (it makes X^T X + reg I invertible), got {self.reg}")

    def _fit(self, train: Interactions) -> None:
        n = self.n_items_
        if n > self.max_items:
            raise ValueError(f"EASE needs a dense {n} x {n} matrix ({8 * n * n / 2**30:.1f} GiB); "
                             f"n_items={n} exceeds max_items={self.max_items}")
        X = self.seen_                                                 # [n_users, n_items] 0/1
        G = (X.T @ X).toarray().astype(np.float64)                     # [n_items, n_items] Gram
        G[np.diag_indices(n)] += self.reg
        P = scipy.linalg.inv(G, overwrite_a=True, check_finite=False)  # (X^T X + reg I)^-1
        B = P / -np.diag(P)[None, :]                                   # B_ij = -P_ij / P_jj
        B[np.diag_indices(n)] = 0.0
        self.B_ = np.ascontiguousarray(B, dtype=np.float32)           # row-major: x_u B reads rows

    def _score(self, users: np.ndarray) -> np.ndarray:
        return self.seen_[users] @ self.B_                             # [n, n_items]

    def score_windows(self, tokens: np.ndarray) -> np.ndarray:
        """x B of each history window as a multi-hot row x: tokens int64 [B, L] (item + 1, 0 = pad)
        -> float32 [B, n_items]; a window holding a user's seen items scores as ``score`` does."""
        self._check_fitted()
        tokens = np.asarray(tokens, dtype=np.int64)
        rows, cols = np.nonzero(tokens > 0)
        x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, tokens[rows, cols] - 1)),
                          shape=(len(tokens), self.n_items_))             # [B, N]
        x.sum_duplicates()
        x.data[:] = 1.0                                                    # multi-hot, not counts
        return np.asarray(x @ self.B_, dtype=np.float32)

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """Memory 20 n^2 bytes (the float64 Gram matrix inverted in place, B in float64 and its
        float32 copy); time 2 n^3 flops of the inverse (getrf + getri) plus the sparse Gram."""
        from .cost import (DENSE_FLOPS, SPARSE_MACS, CostEstimate, cooccurrence_pairs,
                           power_of_ten, train_csr_bytes)
        n, side = float(n_items), power_of_ten(n_items)
        gram = cooccurrence_pairs(n_users, n_items, n_events) / SPARSE_MACS
        return CostEstimate(train_csr_bytes(n_users, n_events) + 20.0 * n * n,
                            2.0 * n ** 3 / DENSE_FLOPS + gram,
                            f"the dense {side} x {side} Gram matrix and its inverse",
                            "inverting the Gram matrix, 2 n^3 flops")
