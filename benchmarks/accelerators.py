"""Accelerators on Online Retail: accuracy kept and latency saved by each wrapper.

    python benchmarks/accelerators.py                       # PureSVD and BPR-MF, d = 64
    python benchmarks/accelerators.py --models puresvd --requests 2000

Per model: NDCG@10 (random 8:1:1 split, full ranking, validation items masked) of fp32, int8,
fp16, magnitude-pruned, low-rank and HNSW variants with embedding memory and single-request p50;
a Zipf(1.1) request stream with and without ``Cached`` (hit rate, p50); batch sizes 1..1024
served back to back and the queueing simulation at batch 64 vs 1 (Poisson arrivals at 0.5x and
2x the batch-1 capacity). Training and serving run with ``--threads`` BLAS/OpenMP/torch threads (default 1: one worker
per core); the machine's load average is recorded, since timings on a shared machine are noisy.
Writes JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from recsys_lab.accel import ANNIndex, LowRank, Pruned, Quantized, zipf_requests
from recsys_lab.data import load_dataset
from recsys_lab.data.splits import random_split
from recsys_lab.eval import environment, limit_threads
from recsys_lab.experiments.accelerators import accuracy_table, batching_experiment, cache_experiment
from recsys_lab.models import BPRMF, PureSVD


def make_model(name: str, dim: int, epochs: int, seed: int):
    if name == "puresvd":
        return PureSVD(embedding_size=dim, seed=seed)
    if name == "bpr":
        return BPRMF(embedding_size=dim, epochs=epochs, learning_rate=2e-3, reg=1e-5, batch_size=2048,
                     seed=seed, device="cpu")
    raise ValueError(f"unknown model {name!r}; choose puresvd or bpr")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--models", nargs="+", default=["puresvd", "bpr"])
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=15)
    ap.add_argument("--requests", type=int, default=5000, help="length of the Zipf stream")
    ap.add_argument("--zipf", type=float, default=1.1)
    ap.add_argument("--capacity", type=int, default=500, help="cache entries")
    ap.add_argument("--threads", type=int, default=1, help="BLAS/OpenMP/torch threads (one worker)")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default="benchmarks/results/accelerators.json")
    a = ap.parse_args(argv)

    data = load_dataset(a.dataset)
    train, valid, test = random_split(data, (0.8, 0.1, 0.1), seed=a.seed)
    result = {"benchmark": "accelerators", "dataset": repr(data), "config": vars(a), "models": {}}
    for name in a.models:
        with limit_threads(a.threads):
            t0 = time.perf_counter()
            model = make_model(name, a.dim, a.epochs, a.seed).fit(train)
            fit_s = time.perf_counter() - t0
            print(f"{name}: fitted in {fit_s:.1f} s", flush=True)
            result["models"][name] = run_model(model, train, valid, test, a, fit_s)
    result["environment"] = environment()
    result["loadavg"] = os.getloadavg()
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float))
    print("->", out)
    return result


def run_model(model, train, valid, test, a, fit_s) -> dict:
    """Accuracy table, cache and batching experiments of one fitted model."""
    variants = {"int8": Quantized(model, dtype="int8"), "fp16": Quantized(model, dtype="fp16"),
                "pruned-0.5": Pruned(model, sparsity=0.5), "pruned-0.8": Pruned(model, sparsity=0.8),
                f"lowrank-{a.dim // 2}": LowRank(model, rank=a.dim // 2),
                "hnsw-ef64": ANNIndex(model, backend="hnsw", ef_search=64),
                "ivfpq": ANNIndex(model, backend="ivfpq", nprobe=8)}
    acc = accuracy_table(model, variants, test, exclude=valid, seed=a.seed)
    print(acc.round(4).to_string(index=False), flush=True)
    stream = zipf_requests(model.n_users_, a.requests, exponent=a.zipf, seed=a.seed)
    cache = cache_experiment(model, stream, capacity=a.capacity)
    print("cache:", {k: round(v, 4) if isinstance(v, float) else v for k, v in cache.items()}, flush=True)
    curve, _ = batching_experiment(model, seed=a.seed)
    b1 = float(curve.set_index("batch").loc[1, "throughput_ups"])       # batch-1 capacity, req/s
    _, served = batching_experiment(model, batch_sizes=(), rates=(0.5 * b1, 2 * b1), n_requests=2000,
                                    seed=a.seed)
    print(curve.round(3).to_string(index=False))
    print(served.round(3).to_string(index=False), flush=True)
    at = curve.set_index("batch")
    int8 = acc.set_index("variant").loc["int8"]
    res = {
        "fit_seconds": fit_s, "accuracy": acc.to_dict(orient="records"), "cache": cache,
        "batch_curve": curve.to_dict(orient="records"), "served": served.to_dict(orient="records"),
        "acceptance": {
            "int8_ndcg_kept": float(int8["ndcg_kept"]), "int8_memory_saving": float(int8["memory_saving"]),
            "int8_ok": bool(int8["ndcg_kept"] >= 0.99 and int8["memory_saving"] >= 3.5),
            "cache_hit_rate": cache["hit_rate"], "cache_p50_ms": cache["cached_p50_ms"],
            "nocache_p50_ms": cache["uncached_p50_ms"],
            "batch1_latency_ms": float(at.loc[1, "latency_ms"]),
            "batch64_latency_ms": float(at.loc[64, "latency_ms"]),
            "batch1_throughput_ups": float(at.loc[1, "throughput_ups"]),
            "batch64_throughput_ups": float(at.loc[64, "throughput_ups"]),
            "throughput_gain_64": float(at.loc[64, "throughput_ups"] / at.loc[1, "throughput_ups"])}}
    print("acceptance:", json.dumps(res["acceptance"], indent=1), flush=True)
    return res


if __name__ == "__main__":
    main()
