"""Row-row similarity of a sparse matrix, chunked, with shrinkage and top-k neighbour pruning.

Rows are the objects compared (users of a user x item matrix; pass ``X.T`` for items); the
stored entries of a row are its observed values (for a dense input: its non-zero entries).
For rows a, b with co-rated set I = {i : a_i and b_i both observed}:

    cosine            a.b / (||a|| ||b||)                              (norms over all entries)
    pearson           sum_I (a_i - m_a)(b_i - m_b) / sqrt(sum_I (a_i - m_a)^2 sum_I (b_i - m_b)^2)
                      with m_a, m_b the means over I: the correlation of the co-rated values,
                      equal to ``scipy.stats.pearsonr(a[I], b[I])``
    adjusted_cosine   sum_I z_ai z_bi / sqrt(sum_I z_ai^2 sum_I z_bi^2),  z_ci = c_i - mean of column i
                      over its observed entries (Sarwar et al., WWW 2001: item rows, user means)
    jaccard           |A & B| / |A | B| on the observed sets

Shrinkage, two named forms (``shrink_form``), both ``sim * w / (w + shrink)``:

    "koren"    w = n = |I|, the co-rated count (Koren, KDD 2008): sim n / (n + shrink)
    "recbole"  w = ||a|| ||b||, an additive constant in the cosine's denominator (RecBole's
               ``ComputeSimilarity``): a.b / (||a|| ||b|| + shrink); cosine only. RecBole also adds
               1e-6 to that denominator against division by zero; here an empty row is 0 by
               definition, so the 1e-6 is left out (a relative change of 1e-6 / (||a|| ||b|| +
               shrink), under 1e-6 on 0/1 data).
Undefined cases are **0** by definition, never NaN: an empty row, rows with no co-rated entry,
Pearson with fewer than two co-rated entries or a constant side on I, adjusted cosine where a
side's centred values are all zero on I.

``similarity_matrix`` works one chunk of rows at a time, so memory is bounded by the chunk
(``max_block_cells`` dense cells per intermediate) plus the pruned output, never n x n. Its values
are snapped to the tie grid of :mod:`recsys_lab.ties` (2^-24), and pruning keeps each row's k
largest *positive* snapped similarities (its neighbours), ties to the lower index, so the kept
neighbourhood does not depend on the CPU's float noise.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import scipy.sparse as sp

from .ties import snap

METRICS = ("cosine", "pearson", "adjusted_cosine", "jaccard")
SHRINK_FORMS = ("koren", "recbole")
_SNAP = 1e-9    # centred values this small relative to the data's scale are exact zeros
_CONST = 1e-12  # Pearson: co-rated variance below this fraction of the sum of squares = constant
_ILL = 1e-6     # ... below this fraction, the one-pass sums are recomputed exactly for the pair


def similarity_matrix(X, metric: str = "cosine", k: int | None = None, shrink: float = 0.0,
                      include_self: bool = False, max_block_cells: int = 1 << 21,
                      n_jobs: int | None = None, dtype=np.float32,
                      shrink_form: str = "koren") -> sp.csr_matrix:
    """Sparse [n, n] similarity between the rows of ``X`` (n x m), row r keeping its top ``k``.

    k:          neighbours kept per row: its k largest similarities that are > 0 (a negatively
                correlated row is no neighbour; ties at the k-th value go to the lower index);
                None keeps every non-zero, negatives included.
    shrink:     shrinkage constant (0 = none).
    shrink_form: "koren" (sim n / (n + shrink)) or "recbole" (a.b / (||a|| ||b|| + shrink)).
    include_self: keep the diagonal (excluded by default: a row is not its own neighbour).
    max_block_cells: rows per chunk = max_block_cells // n (a few dense chunk x n float64
                arrays live at once, per thread).
    n_jobs:     threads computing chunks (SciPy and NumPy release the GIL); None = all cores.
                The result does not depend on it.
    """
    prep = _Prepared(X, metric, shrink_form)
    n = prep.n
    if k is not None and (int(k) != k or k <= 0):
        raise ValueError(f"k (neighbours) must be a positive integer or None, got {k!r}")
    if shrink < 0:
        raise ValueError(f"shrink must be >= 0, got {shrink}")
    chunk = max(1, int(max_block_cells) // max(n, 1))

    def rows_of(lo: int):
        hi = min(n, lo + chunk)
        s = snap(prep.block(lo, hi, shrink))                           # [hi - lo, n] on the tie grid
        if not include_self:
            s[np.arange(hi - lo), np.arange(lo, hi)] = 0.0
        r, c = np.nonzero(s) if k is None else _top_positive(s, min(int(k), n))
        return r + lo, c, s[r, c]

    starts = range(0, n, chunk)
    workers = min(len(starts), n_jobs or os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers) as pool:
            parts = list(pool.map(rows_of, starts))
    else:
        parts = [rows_of(lo) for lo in starts]
    rows, cols, vals = (np.concatenate(p) for p in zip(*parts))
    out = sp.csr_matrix((np.clip(vals, -1.0, 1.0).astype(dtype), (rows, cols)), shape=(n, n))
    out.sort_indices()
    return out


def pairwise(X, metric: str = "cosine", shrink: float = 0.0, shrink_form: str = "koren") -> np.ndarray:
    """Dense [n, n] float64 similarity of the rows of a small ``X`` (diagonal included)."""
    prep = _Prepared(X, metric, shrink_form)
    return np.clip(prep.block(0, prep.n, shrink), -1.0, 1.0)


def shrunk(sim, support, shrink: float):
    """Shrinkage towards 0, ``sim * w / (w + shrink)`` with w = ``support``: the co-rated count n
    (Koren's form) or ||a|| ||b|| (RecBole's, which makes it a.b / (||a|| ||b|| + shrink))."""
    support = np.asarray(support, dtype=np.float64)
    if shrink == 0:
        return np.asarray(sim, dtype=np.float64)
    return np.asarray(sim) * _divide(support, support + shrink)


class _Prepared:
    """The sparse pieces a metric needs, built once; ``block`` computes a chunk of rows."""

    def __init__(self, X, metric: str, shrink_form: str = "koren"):
        check_shrink_form(metric, shrink_form)
        if not sp.issparse(X):
            X = np.asarray(X, dtype=np.float64)
            if X.ndim != 2:
                raise ValueError(f"X must be a 2-d matrix, got shape {X.shape}")
        X = sp.csr_matrix(X, dtype=np.float64)
        X.sum_duplicates()
        X.sort_indices()
        if not np.isfinite(X.data).all():
            raise ValueError("X holds NaN or infinite values")
        if X.shape[0] == 0:
            raise ValueError("X has no rows to compare")
        self.metric, self.shrink_form, self.n = metric, shrink_form, X.shape[0]
        self.B = X.copy()
        self.B.data[:] = 1.0                                           # observed-entry indicator
        self.BT = self.B.T.tocsr()
        if metric == "cosine":                                         # rows scaled to unit norm
            self.norm = np.sqrt(np.asarray(X.multiply(X).sum(1)).ravel())
            self.Z = sp.diags(_divide(1.0, self.norm)) @ X
        elif metric == "jaccard":
            self.count = np.diff(X.indptr).astype(np.float64)
        else:
            axis = 1 if metric == "pearson" else 0                     # centre rows or columns
            self.Z = _centre(X, axis)
            self.Z2T = self.Z.multiply(self.Z).T.tocsr()
        if metric != "jaccard":
            self.ZT = self.Z.T.tocsr()

    def block(self, lo: int, hi: int, shrink: float) -> np.ndarray:
        B = self.B[lo:hi]
        koren = bool(shrink) and self.shrink_form == "koren"
        n_common = (B @ self.BT).toarray() if (koren or self.metric != "cosine") else None
        if self.metric == "cosine":
            s = (self.Z[lo:hi] @ self.ZT).toarray()
        elif self.metric == "jaccard":
            union = self.count[lo:hi, None] + self.count[None, :] - n_common
            s = _divide(n_common, union)
        else:
            Z = self.Z[lo:hi]
            Z2 = Z.multiply(Z).tocsr()
            sxy = (Z @ self.ZT).toarray()
            sxx = (Z2 @ self.BT).toarray()                             # sum_I z_a^2
            syy = (B @ self.Z2T).toarray()                             # sum_I z_b^2
            if self.metric == "pearson":                               # re-centre on I
                sx, sy = (Z @ self.BT).toarray(), (B @ self.ZT).toarray()
                inv_n = _divide(1.0, n_common)
                sxy = sxy - sx * sy * inv_n
                vx, vy = sxx - sx * sx * inv_n, syy - sy * sy * inv_n
                ok = (n_common >= 2) & (vx > _CONST * sxx) & (vy > _CONST * syy)
            else:
                vx, vy = sxx, syy
                ok = (vx > 0) & (vy > 0)
            s = np.where(ok, sxy / np.sqrt(np.where(ok, vx * vy, 1.0)), 0.0)
            if self.metric == "pearson":                               # one-pass sums lost digits:
                for a, b in zip(*np.nonzero(ok & ((vx < _ILL * sxx) | (vy < _ILL * syy)))):
                    s[a, b] = self._exact_pearson(lo + a, b)           # recompute those pairs
        if not shrink:
            return s
        return shrunk(s, n_common if koren else np.outer(self.norm[lo:hi], self.norm), shrink)

    def _exact_pearson(self, a: int, b: int) -> float:
        """Two-pass Pearson on the co-rated entries of rows a and b (for ill-conditioned pairs)."""
        Z = self.Z
        ia, ib = (slice(Z.indptr[r], Z.indptr[r + 1]) for r in (a, b))
        _, pa, pb = np.intersect1d(Z.indices[ia], Z.indices[ib], assume_unique=True, return_indices=True)
        x, y = Z.data[ia][pa], Z.data[ib][pb]
        x, y = x - x.mean(), y - y.mean()
        den = np.sqrt((x * x).sum() * (y * y).sum())
        return float(np.clip((x * y).sum() / den, -1, 1)) if den > 0 and np.ptp(x) > 0 and np.ptp(y) > 0 else 0.0


def check_shrink_form(metric: str, shrink_form: str) -> None:
    """A clear error for an unknown metric or shrink form, or RecBole's form off the cosine."""
    if metric not in METRICS:
        raise ValueError(f"unknown similarity {metric!r}; choose one of {METRICS}")
    if shrink_form not in SHRINK_FORMS:
        raise ValueError(f"unknown shrink_form {shrink_form!r}; choose one of {SHRINK_FORMS}")
    if shrink_form == "recbole" and metric != "cosine":
        raise ValueError(f"shrink_form='recbole' (a.b / (||a|| ||b|| + shrink)) is RecBole's cosine; "
                         f"similarity={metric!r} takes shrink_form='koren'")


def _top_positive(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of each row's k largest entries that are > 0; ties at the k-th value go to
    the lower column index (a defined result, unlike ``argpartition``'s). Rows in order."""
    n = s.shape[1]
    kth = np.partition(s, n - k, axis=1)[:, n - k:n - k + 1]          # [rows, 1] k-th largest
    cut = np.maximum(kth, 0.0)
    r_gt, c_gt = np.nonzero(s > cut)                                   # surely kept
    need = k - np.bincount(r_gt, minlength=len(s))                     # slots left for ties
    r_eq, c_eq = np.nonzero((s == kth) & (kth > 0))                    # tied at the k-th value
    first = np.searchsorted(r_eq, np.arange(len(s)))                   # row starts in r_eq
    take = np.arange(len(r_eq)) - first[r_eq] < need[r_eq]             # lowest indices first
    r = np.concatenate([r_gt, r_eq[take]])
    c = np.concatenate([c_gt, c_eq[take]])
    order = np.argsort(r, kind="stable")
    return r[order], c[order]


def _centre(X: sp.csr_matrix, axis: int) -> sp.csr_matrix:
    """Subtract the mean of the observed entries of each row (axis=1) or column (axis=0).

    The structure is kept (an entry equal to its mean stays stored, as an explicit 0), and
    values within rounding of their mean are snapped to exactly 0, so constant rows are exact.
    """
    counts = np.bincount(X.indices, minlength=X.shape[1]) if axis == 0 else np.diff(X.indptr)
    sums = np.asarray(X.sum(axis)).ravel()
    mean = sums / np.maximum(counts, 1)
    owner = X.indices if axis == 0 else np.repeat(np.arange(X.shape[0]), np.diff(X.indptr))
    Z = X.copy()
    Z.data = X.data - mean[owner]
    scale = np.abs(X.data) + np.abs(mean[owner])
    Z.data[np.abs(Z.data) <= _SNAP * scale] = 0.0
    return Z


def _divide(num, den) -> np.ndarray:
    """num / den with 0 where den == 0 (a defined result instead of NaN)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    out = np.zeros(num.shape)
    np.divide(num, den, out=out, where=den != 0)
    return out
