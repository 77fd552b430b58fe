"""The one tie-breaking rule of the package, the same on every CPU.

Every top-k (neighbours, recommendations, candidate lists, ANN merges) ranks by value, best first,
and breaks ties by the **lower index** (item or neighbour id). What counts as a tie:

- **Similarities** (float64, computed by sparse products whose last bits may differ with the
  order of a BLAS or SIMD kernel) are first snapped to a fixed grid of ``TIE_GRID`` = 2^-24
  (``snap``), so two similarities that are equal up to float noise (|a - b| ~ 1e-16) are equal
  after snapping, and the snapped value is what the model stores (float32 represents every grid
  point in [-1, 1] exactly). Which neighbours are kept, and every score summed from them by
  SciPy's sparse products, is then the same on every CPU.
- **Scores** (float32) are compared exactly; equal float32 values go to the lower item index.
  Scores that a dense BLAS product computes (EASE, MF) may differ in their last bit between CPUs,
  so tests with planted ties use values that every CPU computes exactly (small integers, sums
  of snapped similarities), never ties that exist only up to rounding.
"""
from __future__ import annotations

import numpy as np

TIE_GRID = 2.0 ** -24


def snap(x: np.ndarray) -> np.ndarray:
    """Round to the nearest multiple of ``TIE_GRID`` (float64): noise-level differences vanish."""
    return np.rint(np.asarray(x, dtype=np.float64) / TIE_GRID) * TIE_GRID


def best_first(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Column order of each row of ``values`` [n, c]: larger value first, ties by lower ``index``
    (same shape; e.g. item ids of candidate lists). Returns int64 [n, c]."""
    values, index = np.asarray(values), np.asarray(index)
    order = np.argsort(index, axis=1, kind="stable")                     # by index ...
    v = np.take_along_axis(values, order, 1)
    return np.take_along_axis(order, np.argsort(-v, axis=1, kind="stable"), 1)  # ... then by value
