"""ANN retrieval on a synthetic catalog: HNSW vs exact flat search, per-query latency and overlap@10.

    python benchmarks/ann.py                       # 1M items x 64 dims (about 10 min on 2 cores)
    python benchmarks/ann.py --items 100000        # quicker

Items are a clustered Gaussian mixture (cluster centres N(0, I), points centre + sigma N(0, I),
power-law cluster sizes), queries are drawn from the same mixture. One run: exact top-10 from the
flat index, then HNSW at each ``--ef`` value; the reported setting is the smallest ef_search with
overlap@10 >= 0.95, and its p50 per-query speed-up over flat search (one query per call on one
thread, as a request is served; index builds and ground truth use all cores).
Writes JSON (with ``recsys_lab.eval.environment()``).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from recsys_lab.accel import build_index, overlap_at_k
from recsys_lab.eval import environment, time_calls


def clustered_catalog(n_items: int, dim: int, n_clusters: int, sigma: float, n_queries: int, seed: int):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_clusters, dim)).astype(np.float32)
    p = np.arange(1, n_clusters + 1, dtype=np.float64) ** -0.8                 # uneven cluster sizes
    p /= p.sum()
    def draw(n):
        c = rng.choice(n_clusters, size=n, p=p)
        return (centres[c] + sigma * rng.standard_normal((n, dim), dtype=np.float32)).astype(np.float32)
    return draw(n_items), draw(n_queries)


def per_query_ms(index, queries, k):
    """Milliseconds per single-query search, on one thread (a server runs one request per core)."""
    import faiss
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        return time_calls(lambda q: index.search(q, k), [(queries[i:i + 1],) for i in range(len(queries))],
                          warmup=5)
    finally:
        faiss.omp_set_num_threads(threads)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--sigma", type=float, default=1.0)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=64)
    ap.add_argument("--ef", type=int, nargs="+", default=[8, 16, 32, 64, 128, 256, 512])
    ap.add_argument("--target", type=float, default=0.95)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="benchmarks/results/ann.json")
    a = ap.parse_args(argv)

    items, queries = clustered_catalog(a.items, a.dim, a.clusters, a.sigma, a.queries, a.seed)
    t0 = time.perf_counter()
    flat = build_index(items, "flat")
    exact_items = flat.search(queries, a.k)[1]                                  # batched ground truth
    flat_ms = per_query_ms(flat, queries, a.k)
    print(f"flat: p50 {np.median(flat_ms):.2f} ms/query ({time.perf_counter() - t0:.0f} s)", flush=True)

    t0 = time.perf_counter()
    hnsw = build_index(items, "hnsw", M=a.M, ef_construction=a.ef_construction)
    build_s = time.perf_counter() - t0
    print(f"hnsw build: {build_s:.0f} s", flush=True)
    rows, chosen = [], None
    for ef in a.ef:
        hnsw.hnsw.efSearch = ef
        ms = per_query_ms(hnsw, queries, a.k)
        approx = hnsw.search(queries, a.k)[1]
        row = {"ef_search": ef, "overlap_at_10": overlap_at_k(approx, exact_items, a.k),
               "p50_ms": float(np.median(ms)), "p95_ms": float(np.percentile(ms, 95)),
               "p99_ms": float(np.percentile(ms, 99)),
               "speedup_p50": float(np.median(flat_ms) / np.median(ms))}
        rows.append(row)
        print(row, flush=True)
        if chosen is None and row["overlap_at_10"] >= a.target:
            chosen = row
    result = {"benchmark": "ann_hnsw_vs_flat", "config": vars(a), "n_items": a.items, "dim": a.dim,
              "flat": {"p50_ms": float(np.median(flat_ms)), "p95_ms": float(np.percentile(flat_ms, 95)),
                       "p99_ms": float(np.percentile(flat_ms, 99))},
              "hnsw_build_seconds": build_s, "hnsw": rows, "chosen": chosen,
              "meets_target": chosen is not None, "environment": environment()}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print("chosen:", chosen, "->", out)
    return result


if __name__ == "__main__":
    main()
