"""Pareto front of a latency-vs-accuracy table."""
from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_front(df: pd.DataFrame, x: str, y: str, minimize_x: bool = True,
                 maximize_y: bool = True) -> pd.Series:
    """Boolean mask (aligned with ``df.index``) of the rows no other row dominates.

    Row a dominates b when a is at least as good on both columns and strictly better on one
    (by default: lower ``x``, e.g. p99 latency, and higher ``y``, e.g. NDCG@10). Equal rows are
    both on the front; rows with NaN in ``x`` or ``y`` never are. Use ``df[pareto_front(...)]``.
    """
    missing = [c for c in (x, y) if c not in df.columns]
    if missing:
        raise KeyError(f"column(s) {missing} not in the frame; columns: {list(df.columns)}")
    xs = df[x].to_numpy(np.float64) * (1 if minimize_x else -1)          # lower is better
    ys = df[y].to_numpy(np.float64) * (-1 if maximize_y else 1)          # lower is better
    ok = ~(np.isnan(xs) | np.isnan(ys))
    front = np.zeros(len(df), dtype=bool)
    idx = np.flatnonzero(ok)
    order = idx[np.lexsort((ys[idx], xs[idx]))]                          # by x, then y
    best_y = np.inf
    for pos, i in enumerate(order):
        if ys[i] < best_y:
            front[i], best_y = True, ys[i]
        elif ys[i] == best_y and pos and xs[i] == xs[order[pos - 1]] and front[order[pos - 1]]:
            front[i] = True                                              # an exact duplicate
    return pd.Series(front, index=df.index, name="pareto")
