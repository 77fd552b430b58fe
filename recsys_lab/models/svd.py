"""PureSVD (Cremonesi, Koren & Turrin, RecSys 2010): a truncated SVD of the user-item matrix.

    R ~= U_f S_f Q_f^T          (R: [n_users, n_items] binary, f = embedding_size)
    score(u, .) = r_u Q_f Q_f^T

The user vector is folded in from the user's history, p_u = r_u Q_f (equal to the row of U_f S_f
for a training user), so a new interaction changes the user's scores with no retraining. The
item vectors are Q_f. Deterministic for a given ``seed`` (ARPACK's start vector).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse.linalg import svds

from .base import Recommender
from .capabilities import EmbeddingModel


@dataclass(eq=False)
class PureSVD(Recommender, EmbeddingModel):
    """Truncated SVD; ``embedding_size`` singular vectors (capped at min(n_users, n_items) - 1)."""

    embedding_size: int = 64
    seed: int = 0

    def _check_config(self):
        if self.embedding_size < 1:
            raise ValueError(f"embedding_size must be a positive integer, got {self.embedding_size!r}")

    def _fit(self, train):
        R = self.seen_.astype(np.float64)
        f = min(int(self.embedding_size), min(R.shape) - 1)
        if f < 1:
            raise ValueError(f"PureSVD needs at least 2 users and 2 items, got {R.shape}")
        v0 = np.random.default_rng(self.seed).standard_normal(min(R.shape))
        _, s, vt = svds(R, k=f, v0=v0)
        order = np.argsort(-s, kind="stable")                  # svds returns ascending singular values
        self.singular_values_ = s[order].astype(np.float32)    # [f]
        self.item_factors_ = np.ascontiguousarray(vt[order].T, dtype=np.float32)  # Q_f: [n_items, f]

    def user_vectors(self, users=None) -> np.ndarray:
        """p_u = r_u Q_f, float32 [len(users), f] (all users when ``users`` is None)."""
        users = np.arange(self.n_users_) if users is None else self._check_users(users)
        return np.asarray(self.seen_[users] @ self.item_factors_, dtype=np.float32)

    def item_vectors(self) -> np.ndarray:
        """Q_f, float32 [n_items, f]."""
        self._check_fitted()
        return self.item_factors_

    def _score(self, users):
        return self.user_vectors(users) @ self.item_factors_.T   # [n, f] @ [f, n_items]

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """ARPACK (svds, ncv = 2f + 1 Lanczos vectors over the smaller side s): memory 8 ncv s
        bytes of basis, the float64 factors (16 f (n_users + n_items)) and a float64 copy of R;
        time ``LANCZOS_STEPS`` x (two sparse products, 4 ncv s flops of orthogonalisation)."""
        from .cost import GEMV_FLOPS, LANCZOS_STEPS, SPMV_MACS, CostEstimate, train_csr_bytes
        f = min(int(self.embedding_size), min(n_users, n_items) - 1)
        ncv, side = min(min(n_users, n_items), max(2 * f + 1, 20)), float(min(n_users, n_items))
        memory = train_csr_bytes(n_users, n_events) + 12.0 * n_events + 8.0 * ncv * side + \
            16.0 * f * (n_users + n_items) + 4.0 * f * n_items
        steps = LANCZOS_STEPS * max(ncv, 20) / 129
        return CostEstimate(memory, steps * (2.0 * n_events / SPMV_MACS + 4.0 * ncv * side / GEMV_FLOPS),
                            f"ARPACK's {ncv} Lanczos vectors and the float64 factors",
                            "Lanczos steps: sparse products, linear in events")
