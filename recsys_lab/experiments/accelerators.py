"""Accelerator experiments, the same in benchmarks and notebooks: accuracy kept, latency saved.

    accuracy_table(base, {"int8": Quantized(base), ...}, test, exclude=valid)
    cache_experiment(model, zipf_requests(model.n_users_, 5000, 1.1), capacity=500)
    batching_experiment(model, rates=(200, 2000))

Measurement is ``recsys_lab.eval``'s (:func:`~recsys_lab.eval.compare`, the latency harness);
the accelerators are ``recsys_lab.accel``'s wrappers. This layer sits above both, so neither
imports the other.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..accel.tables import embedding_bytes
from ..accel.batching import Batched, batch_curve, poisson_arrivals, summarize_serving
from ..accel.cache import Cached
from ..eval import compare, latency_summary, time_calls
from ..eval.latency import limit_threads
from ..models.capabilities import EmbeddingModel

__all__ = ["accuracy_table", "cache_experiment", "batching_experiment", "limit_threads"]


def accuracy_table(base, variants: dict, test, exclude=None, k: int = 10, n_requests: int = 200,
                   seed: int = 0) -> pd.DataFrame:
    """One row per model (``base`` first, as "fp32"): NDCG@k, Recall@k, the fraction of the base
    NDCG kept, embedding MB (when it has tables), serving MB and p50/p99 single-request latency
    (:func:`~recsys_lab.eval.compare`, validation ``exclude`` masked)."""
    models = {"fp32": base, **variants}
    table = compare(models, test, valid=exclude, k=k, batch_size=None, n_requests=n_requests, warmup=10,
                    seed=seed, progress=False)
    ref = table[f"ndcg@{k}"].iloc[0]
    rows = []
    for (name, m), (_, r) in zip(models.items(), table.iterrows()):
        try:
            emb = embedding_bytes(m) / 2**20
        except TypeError:
            emb = np.nan
        rows.append({"variant": name, "accelerator": type(m).__name__, f"ndcg@{k}": r[f"ndcg@{k}"],
                     f"recall@{k}": r[f"recall@{k}"], "ndcg_kept": r[f"ndcg@{k}"] / ref if ref else np.nan,
                     "embedding_mb": emb, "serving_mb": r["serving_mb"],
                     "p50_ms": r["p50_ms"], "p99_ms": r["p99_ms"]})
    out = pd.DataFrame(rows)
    base_emb = out["embedding_mb"].iloc[0]
    out["memory_saving"] = base_emb / out["embedding_mb"] if base.supports(EmbeddingModel) else np.nan
    return out


def cache_experiment(model, stream: np.ndarray, capacity: int, k: int = 10, policy: str = "lru") -> dict:
    """Replay ``stream`` (user per request) without and with a ``Cached`` front: per-request
    p50/p95/p99/mean (ms) of both and the cache's hit rate."""
    cached = Cached(model, capacity=capacity, policy=policy)
    out = {"n_requests": int(len(stream)), "capacity": int(capacity), "policy": policy,
           "distinct_users": int(len(np.unique(stream)))}
    for name, m in (("uncached", model), ("cached", cached)):
        ms = time_calls(lambda u: m.recommend(u, k=k), [(np.array([u]),) for u in stream], warmup=0)
        out.update(latency_summary(ms, prefix=f"{name}_"))
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
