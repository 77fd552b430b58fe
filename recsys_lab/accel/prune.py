"""Magnitude pruning and low-rank factorisation of embedding tables (or of torch layers).

Pruned (Han et al., NeurIPS 2015): zero the fraction ``sparsity`` of entries with the smallest
|w| in each table (threshold t = the ``sparsity`` quantile of |W|; keep |w| > t) and store the
table as CSR (4-byte value + 4-byte column per kept entry, so memory falls below dense only past
50% sparsity). Scores are sparse-dense products, so their cost falls with the kept entries.
Torch models without tables: global magnitude pruning of every ``nn.Linear`` weight.

LowRank: the item table's SVD V = P S Q^T truncated to rank r (Eckart-Young: the best rank-r
approximation V_r = P_r S_r Q_r^T). Since u . v_r,i = (u Q_r) . (P_r S_r)_i, users are stored
projected, u Q_r [n_users, r], and items as P_r S_r [n_items, r]: r/d of the memory and of the
scoring flops. Torch models without tables: every ``nn.Linear`` wider than r is split in two
by the SVD of its weight.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .tables import TableWrapper


def magnitude_threshold(w: np.ndarray, sparsity: float) -> float:
    """t such that zeroing |w| <= t removes the ``sparsity`` fraction of entries (ties aside)."""
    a = np.abs(np.asarray(w)).ravel()
    n_prune = int(np.floor(sparsity * a.size))
    if n_prune == 0:
        return -1.0
    return float(np.partition(a, n_prune - 1)[n_prune - 1])


@dataclass(eq=False)
class Pruned(TableWrapper):
    """Magnitude-pruned tables stored sparse; ``sparsity_`` is the achieved zero fraction."""

    sparsity: float = 0.5

    def _check_config(self):
        if not 0.0 <= self.sparsity < 1.0:
            raise ValueError(f"sparsity must be in [0, 1), got {self.sparsity!r}")

    def fit_codec(self, items):
        self.thresholds_ = {"item": magnitude_threshold(items, self.sparsity)}

    def encode(self, x, table):
        x = np.asarray(x, dtype=np.float32)
        if table not in self.thresholds_:          # the user threshold comes from the full user table
            self.thresholds_[table] = magnitude_threshold(x, self.sparsity)
        return sp.csr_matrix(np.where(np.abs(x) > self.thresholds_[table], x, 0).astype(np.float32))

    def decode(self, enc, rows=None):
        return (enc if rows is None else enc[rows]).toarray()

    def set_rows(self, enc, rows, new):
        m = enc.tolil()
        m[rows] = new.toarray()
        return m.tocsr()

    def score_tables(self, users):
        return np.asarray((self.items_ @ self.decode(self.users_, users).T).T)   # [n_items, d] @ [d, n]

    @property
    def sparsity_(self) -> float:
        self._require_tables()
        n = np.prod(self.users_.shape) + np.prod(self.items_.shape)
        return 1.0 - (self.users_.nnz + self.items_.nnz) / n

    def transform_module(self, module):
        from torch import nn
        from torch.nn.utils import prune
        params = [(m, "weight") for m in module.modules() if isinstance(m, nn.Linear)]
        if not params:
            raise TypeError(f"{type(self.model).__name__}: its module has no nn.Linear layer to prune")
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=float(self.sparsity))
        for m, name in params:
            prune.remove(m, name)                 # make the zeros permanent
        return module


@dataclass(eq=False)
class LowRank(TableWrapper):
    """Rank-``rank`` factorisation of the item table; users projected onto its top right singular
    vectors. ``explained_`` is the fraction of the item table's energy (sum of s^2) kept."""

    rank: int = 16

    def _check_config(self):
        if self.rank < 1:
            raise ValueError(f"rank must be a positive integer, got {self.rank!r}")

    def fit_codec(self, items):
        d = items.shape[1]
        if self.rank > d:
            raise ValueError(f"rank={self.rank} exceeds the embedding size {d}")
        _, s, qt = np.linalg.svd(items.astype(np.float64), full_matrices=False)
        self.basis_ = np.ascontiguousarray(qt[:self.rank].T, dtype=np.float32)   # Q_r: [d, r]
        self.explained_ = float((s[:self.rank] ** 2).sum() / max((s ** 2).sum(), 1e-300))

    def encode(self, x, table):
        return np.asarray(x, dtype=np.float32) @ self.basis_          # [n, d] @ [d, r] -> [n, r]

    def decode(self, enc, rows=None):
        return enc if rows is None else enc[rows]

    def set_rows(self, enc, rows, new):
        enc[rows] = new
        return enc

    def embedding_bytes(self) -> int:
        return super().embedding_bytes() + (0 if self.module_ is not None else self.basis_.nbytes)

    def transform_module(self, module):
        """Each ``nn.Linear`` W [out, in] with rank < min(out, in) becomes two layers,
        W ~= (U_r S_r) V_r^T: in -> r -> out."""
        import torch
        from torch import nn
        done = 0
        for parent in list(module.modules()):
            for name, child in list(parent.named_children()):
                if isinstance(child, nn.Linear) and self.rank < min(child.weight.shape):
                    u, s, vt = torch.linalg.svd(child.weight.detach().float(), full_matrices=False)
                    first = nn.Linear(child.in_features, self.rank, bias=False)
                    second = nn.Linear(self.rank, child.out_features, bias=child.bias is not None)
                    with torch.no_grad():
                        first.weight.copy_(vt[:self.rank])                        # [r, in]
                        second.weight.copy_(u[:, :self.rank] * s[:self.rank])     # [out, r]
                        if child.bias is not None:
                            second.bias.copy_(child.bias)
                    setattr(parent, name, nn.Sequential(first, second).to(child.weight.device))
                    done += 1
        if not done:
            raise TypeError(f"{type(self.model).__name__}: no nn.Linear layer wider than rank={self.rank}")
        return module
