"""Measure accelerators the same way in benchmarks and notebooks: accuracy kept, latency saved.

    accuracy_table(base, {"int8": Quantized(base), ...}, test, exclude=valid)
    cache_experiment(model, zipf_requests(model.n_users_, 5000, 1.1), capacity=500)
    batching_experiment(model, rates=(200, 2000))
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..eval.latency import limit_threads  # noqa: F401  (re-exported: recsys_lab.accel.limit_threads)
from .base import embedding_bytes, has_vectors
from .batching import Batched, batch_curve, poisson_arrivals, summarize_serving
from .cache import Cached


def accuracy_table(base, variants: dict, test, exclude=None, k: int = 10, n_requests: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """One row per model (``base`` first, as "fp32"): NDCG@k, Recall@k, the fraction of the base
    NDCG kept, embedding MB (when it has tables), serving MB and p50/p99 single-request latency."""
    from ..eval import evaluate, measure_latency   # local: eval's sweep imports accel
    rows, ref = [], None
    for name, m in {"fp32": base, **variants}.items():
        acc = evaluate(m, test, k=k, exclude=exclude).iloc[0]
        lat = measure_latency(m, k=k, n_requests=n_requests, warmup=10, batch_sizes=(), seed=seed)
        try:
            emb = embedding_bytes(m) / 2**20
        except TypeError:
            emb = np.nan
        ref = acc["ndcg"] if ref is None else ref
        rows.append({"variant": name, "accelerator": type(m).__name__, f"ndcg@{k}": acc["ndcg"],
                     f"recall@{k}": acc["recall"], "ndcg_kept": acc["ndcg"] / ref if ref else np.nan,
                     "embedding_mb": emb, "serving_mb": lat["serving_mb"],
                     "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"]})
    out = pd.DataFrame(rows)
    base_emb = out["embedding_mb"].iloc[0]
    out["memory_saving"] = base_emb / out["embedding_mb"] if has_vectors(base) else np.nan
    return out


def cache_experiment(model, stream: np.ndarray, capacity: int, k: int = 10, policy: str = "lru") -> dict:
    """Replay ``stream`` (user per request) without and with a ``Cached`` front: per-request
    p50/p95/p99 (ms) of both and the cache's hit rate."""
    from ..eval import time_calls
    cached = Cached(model, capacity=capacity, policy=policy)
    out = {"n_requests": int(len(stream)), "capacity": int(capacity), "policy": policy,
           "distinct_users": int(len(np.unique(stream)))}
    for name, m in (("uncached", model), ("cached", cached)):
        ms = time_calls(lambda u: m.recommend(u, k=k), [(np.array([u]),) for u in stream], warmup=0)
        out.update({f"{name}_p50_ms": float(np.percentile(ms, 50)), f"{name}_p95_ms": float(np.percentile(ms, 95)),
                    f"{name}_p99_ms": float(np.percentile(ms, 99)), f"{name}_mean_ms": float(ms.mean())})
    out["hit_rate"] = cached.results.hit_rate
    out["speedup_p50"] = out["uncached_p50_ms"] / out["cached_p50_ms"]
    out["speedup_mean"] = out["uncached_mean_ms"] / out["cached_mean_ms"]
    return out


def batching_experiment(model, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), rates=(),
                        max_batches=(1, 64), max_wait_ms: float = 2.0, n_requests: int = 2000,
                        k: int = 10, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(curve, served): latency and throughput per batch size served back to back, and the
    queueing simulation (``Batched.serve``) for each arrival rate x max_batch."""
    curve = batch_curve(model, batch_sizes=batch_sizes, k=k, seed=seed)
    rng = np.random.default_rng(seed)
    rows = []
    for rate in rates:
        t = poisson_arrivals(n_requests, rate, seed=seed)
        users = rng.integers(0, model.n_users_, n_requests)
        for b in max_batches:
            log = Batched(model, max_batch=int(b), max_wait_ms=max_wait_ms).serve(t, users, k=k)
            rows.append({"rate_rps": float(rate), "max_batch": int(b), "max_wait_ms": max_wait_ms,
                         **summarize_serving(log)})
    return curve, pd.DataFrame(rows)
