"""Sizes, predicted costs of the accelerators and empirical exponents of the scale grid.

The models predict their own fit cost (``Recommender.estimate_cost``, formulas in
:mod:`recsys_lab.models.cost`); the wrappers built on a fitted model are predicted here, from
the same throughput constants:

    HNSW    memory 2 n (4 d + 9 M) bytes (the graph, and its serialised copy for serving_bytes);
            time n x HNSW_INSERT_SECONDS x (log2 n / 10) x (efConstruction / 80)
    IVF-PQ  k-means of nlist cells (10 iterations on at most 256 points per cell, d-dim GEMMs)
            and of 2^pq_bits codes in each of pq_m sub-spaces (25 iterations on at most 256 points
            per code, paid per point-code pair: faiss is slow on 4-dim sub-vectors); memory n (pq_m + 16)
    int8    (n_users + n_items) (d + 4) bytes of codes and scales, plus the float32 user table

The empirical exponent of a curve y(n) is the least-squares slope of log y against log n
(``slope``; ``slope_last`` over the two largest sizes, the asymptotic regime); the analytic
exponent is the same fit to the predicted cost at the same sizes, so both are comparable even
where the users stop growing with the items.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from ..models.cost import HNSW_INSERT_SECONDS, KMEANS_FLOPS, PQ_PAIR_SECONDS, CostEstimate, power_of_ten


def shop_size(n_items: int, users_per_item: float = 2.0, max_users: int = 10**6,
              events_per_user: int = 20) -> dict:
    """The shop at a catalog size: n_users = min(users_per_item x n_items, max_users),
    n_events = events_per_user x n_users (generated events, repeats included)."""
    if int(n_items) < 10:
        raise ValueError(f"a catalog needs at least 10 items, got n_items={n_items!r}")
    n_users = int(min(round(users_per_item * n_items), max_users))
    return {"n_users": n_users, "n_items": int(n_items), "n_events": int(events_per_user * n_users)}


def default_nlist(n_items: int) -> int:
    """IVF cells: sqrt(n), with at least 39 items per cell (faiss's k-means floor)."""
    return int(max(1, min(round(math.sqrt(n_items)), n_items // 39)))


def wrapper_cost(spec: dict, n_users: int, n_items: int, d: int) -> CostEstimate:
    """Predicted build memory and seconds of the accelerator ``spec`` ({"name", "params"}) on a
    fitted embedding model of width ``d`` (formulas in the module docstring)."""
    name, p = spec["name"], spec.get("params", {})
    n = float(n_items)
    if name == "ANNIndex" and p.get("backend", "hnsw") == "hnsw":
        M, efc = p.get("M", 32), p.get("ef_construction", 80)
        seconds = n * HNSW_INSERT_SECONDS * max(math.log2(n), 1) / 10 * efc / 80
        return CostEstimate(2.0 * n * (4 * d + 9 * M), seconds,
                            f"the HNSW graph (M={M})", "inserting every item into the graph")
    if name == "ANNIndex" and p.get("backend") == "ivfpq":
        nlist = p.get("nlist") or default_nlist(n_items)
        pq_m, codes = p.get("pq_m") or max(1, d // 4), 2.0 ** p.get("pq_bits", 8)
        train = min(n, 256.0 * nlist)
        coarse = (10 * train + n) * nlist * 2 * d / KMEANS_FLOPS      # 10 iterations, then assign all
        codebooks = pq_m * 25 * min(n, 256.0 * codes) * codes * PQ_PAIR_SECONDS
        return CostEstimate(n * (pq_m + 16) + 4.0 * d * train, coarse + codebooks,
                            "the PQ codes and the k-means training set", "k-means of the PQ codebooks")
    if name == "Quantized":
        return CostEstimate((n_users + n) * (d + 4) + 4.0 * d * n_users, 0.0,
                            "int8 codes and the float32 user table", "one pass over the tables")
    raise ValueError(f"no cost formula for the accelerator {name!r} with {p!r}")


def skip_row(family: str, variant: str, size: dict, est: CostEstimate, why: list[str]) -> dict:
    """The row of a configuration predicted beyond the budget: its estimate and the reason,
    e.g. "EASE at 10^6 items needs 18.2 TiB for the dense 10^6 x 10^6 Gram matrix ...: skipped"."""
    who = family if variant in ("exact", "all") else f"{family} + {variant}"
    return {"family": family, "variant": variant, "knob": "", **size, "status": "skipped",
            "reason": f"{who} at {power_of_ten(size['n_items'])} items {'; '.join(why)}: skipped",
            **est.as_dict()}


def base_cost(model, size: dict) -> CostEstimate:
    """The model's own prediction at ``size`` on its training share, 80% of the generated events:
    an upper bound (the split keeps each user-item pair once), used to plan before any data is
    generated; the worker checks again on the real counts before it fits."""
    return model.estimate_cost(size["n_users"], size["n_items"], int(0.8 * size["n_events"]))


def _slope(x, y) -> float:
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = (x > 0) & (y > 0) & np.isfinite(y)
    if ok.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log10(x[ok]), np.log10(y[ok]), 1)[0])


def exponents(rows: pd.DataFrame, pairs: dict, x: str = "n_items",
              by=("family", "variant", "knob")) -> pd.DataFrame:
    """Empirical and analytic exponents: for each group in ``by`` and each ``{measured: predicted}``
    column pair (``predicted`` None: no formula), the slopes of log measured and of log predicted
    against log ``x`` over the sizes that ran. Columns: *by, metric, sizes, slope, slope_last,
    analytic_slope."""
    ok = rows[rows["status"] == "ok"]
    out = []
    for key, g in ok.groupby(list(by), sort=False):
        g = g.sort_values(x)
        for measured, predicted in pairs.items():
            if measured not in g or g[measured].isna().all():
                continue
            last = g.tail(2)
            out.append({**dict(zip(by, key)), "metric": measured, "sizes": len(g),
                        "slope": _slope(g[x], g[measured]), "slope_last": _slope(last[x], last[measured]),
                        "analytic_slope": _slope(g[x], g[predicted]) if predicted in g else float("nan")})
    return pd.DataFrame(out)
