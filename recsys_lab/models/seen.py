"""The seen set: which items each user has interacted with (training events plus events since).

One object per chain of models, owned by the innermost model (wrappers and composites read their
model's). ``recommend(filter_seen=True)`` masks it, ``update``/``extend`` grow it. Appending one
event is O(1): events wait in a per-user list and the CSR matrix is rebuilt once, when it is next
read (``csr``); ``count``, ``items`` and ``contains`` answer for one user without that rebuild.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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


class SeenSet:
    """Seen items per user: a CSR matrix [n_users, n_items] (stored entries = seen) plus pending
    appends, merged lazily."""

    def __init__(self, matrix: sp.spmatrix):
        self._csr = sp.csr_matrix(matrix)
        self._pending: dict[int, list[int]] = {}

    @property
    def shape(self) -> tuple[int, int]:
        return self._csr.shape

    @property
    def csr(self) -> sp.csr_matrix:
        """The whole set as CSR (pending appends merged in first)."""
        if self._pending:
            pairs = [(u, i) for u, items in self._pending.items() for i in items]
            self._pending = {}
            if len(pairs) == 1:
                self._csr = csr_insert(self._csr, *pairs[0])
            else:
                u, i = np.array(pairs).T
                extra = sp.csr_matrix((np.ones(len(u), np.float32), (u, i)), shape=self.shape)
                merged = (self._csr + extra).tocsr()
                merged.data[:] = 1.0
                merged.sort_indices()
                self._csr = merged
        return self._csr

    def _stored(self, user: int) -> np.ndarray:
        m = self._csr
        return m.indices[m.indptr[user]:m.indptr[user + 1]]

    def items(self, user: int) -> np.ndarray:
        """The user's seen items (stored order, then appended ones)."""
        extra = self._pending.get(int(user))
        row = self._stored(int(user))
        return np.concatenate([row, np.asarray(extra, dtype=row.dtype)]) if extra else row

    def count(self, user: int) -> int:
        return len(self._stored(int(user))) + len(self._pending.get(int(user), ()))

    def contains(self, user: int, item: int) -> bool:
        return bool(np.any(self._stored(int(user)) == item)) or item in self._pending.get(int(user), ())

    def add(self, user: int, item: int) -> bool:
        """Record one event; False when the item was already seen (nothing changes)."""
        user, item = int(user), int(item)
        if self.contains(user, item):
            return False
        self._pending.setdefault(user, []).append(item)
        return True

    def extend(self, events: sp.spmatrix) -> None:
        """Add every stored entry of ``events`` [n_users, n_items]."""
        if events.shape != self.shape:
            raise ValueError(f"events have shape {events.shape}, the seen set {self.shape}")
        merged = (self.csr + sp.csr_matrix(events)).tocsr()
        merged.data[:] = 1.0
        merged.sort_indices()
        self._csr = merged

    @property
    def nbytes(self) -> int:
        m = self.csr
        return m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
