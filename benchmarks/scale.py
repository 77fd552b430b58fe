"""Cost as the work grows: every family on the seeded synthetic shop at 10^3..10^6 items.

    python benchmarks/scale.py                                   # the grid -> benchmarks/results/scale.json
    python benchmarks/scale.py --sizes 1000 10000 --fit-budget-s 60 --out /tmp/scale.json
    python benchmarks/scale.py --sizes 1000000 --update          # add or redo one size in the JSON
    python benchmarks/scale.py --backend ray --ray-address HOST:PORT   # on an existing Ray cluster
    python benchmarks/scale.py --calibrate                       # measure the throughput constants

The shop at n items: min(2 n, 10^6) users, 20 events per user (repeats included), split 8:1:1
per user. Families: Popularity, ItemKNN, EASE, PureSVD (exact, + HNSW with an ef_search sweep,
+ IVF-PQ with an nprobe sweep, + int8), LightGCN, the two-tower (fixed epochs, no early stop).
Every configuration is predicted first (``estimate_cost``); one beyond ``--memory-budget-gb``
(on top of the data) or ``--fit-budget-s`` is skipped with its estimate printed, never run.
Measured: fit seconds and peak RSS growth, index build seconds and RSS, serving MB, per-request
p50/p95/p99 at batch 1 and throughput at batch 1024 (``eval.compare``), NDCG@10 / Recall@10 on a
seeded sample of test users (full ranking), overlap@10 with the exact base model. One thread per
task (``--threads``); tasks run on the sweep's backends (``--backend process`` with ``--n-jobs``,
``ray``: a new local instance unless ``--ray-address`` or $RAY_ADDRESS names a cluster; every
node needs this package installed). The JSON holds the machine, its load average before and
after, the estimates beside the measurements, the skipped rows and the empirical exponents.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_lab.eval import environment  # noqa: E402
from recsys_lab.experiments.scale import FAMILIES, SIZES, ScaleConfig, config_dict, run_scale  # noqa: E402
from recsys_lab.experiments.scale_cost import exponents  # noqa: E402
from recsys_lab.fileio import atomic_write  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "scale.json"
PAIRS = {"fit_s": "est_fit_s", "fit_rss_mb": "est_memory_mb", "index_build_s": "est_index_fit_s",
         "serving_mb": None, "p50_ms": None, "p99_ms": None, "throughput": None}


def _plain(v):
    """numpy scalars as Python values (for json.dumps)."""
    if hasattr(v, "item"):
        return v.item()
    raise TypeError(f"not JSON-serialisable: {v!r}")


def calibrate() -> dict:
    """The throughput constants of ``recsys_lab.models.cost``, measured here on one thread."""
    import faiss
    import scipy.linalg
    import scipy.sparse as sp
    import torch
    from threadpoolctl import threadpool_limits

    from recsys_lab.data import random_split, synthetic_shop
    from recsys_lab.models import PureSVD
    from recsys_lab.similarity import similarity_matrix

    def best(fn, repeat=3):
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    rng = np.random.default_rng(0)
    torch.set_num_threads(1)
    faiss.omp_set_num_threads(1)
    out = {}
    with threadpool_limits(1):
        n = 1500
        a = rng.standard_normal((n, n))
        a = a @ a.T + n * np.eye(n)
        out["DENSE_FLOPS"] = 2 * n**3 / best(lambda: scipy.linalg.inv(a))
        data = synthetic_shop(n_users=20_000, n_items=10_000, n_events=400_000, seed=0)
        X = random_split(data, seed=0)[0].to_csr().astype(np.float64)
        macs = float((np.diff(X.indptr).astype(np.float64) ** 2).sum())
        out["SPARSE_MACS"] = macs / best(lambda: X.T @ X)
        x = rng.standard_normal(X.shape[1])
        out["SPMV_MACS"] = X.nnz / best(lambda: [X @ x for _ in range(20)]) * 20
        V, w = rng.standard_normal((100_000, 129)), rng.standard_normal(100_000)
        out["GEMV_FLOPS"] = 4 * V.size / best(lambda: V @ (V.T @ w))
        sparse_items = sp.random(4000, 2000, density=0.002, format="csr", random_state=0)
        knn = best(lambda: similarity_matrix(sparse_items, "cosine", k=100, n_jobs=1), 1)
        out["CELL_SECONDS"] = knn / 4000**2
        u = torch.randn(256, 64, requires_grad=True)
        e = torch.randn(20_000, 64, requires_grad=True)
        step = best(lambda: (u @ e.T).logsumexp(1).sum().backward(), 5)        # forward + backward
        out["TORCH_FLOPS"] = 3 * 2 * 256 * 64 * 20_000 / step
        adj = torch.sparse_csr_tensor(torch.as_tensor(X.indptr), torch.as_tensor(X.indices),
                                      torch.as_tensor(X.data, dtype=torch.float32), X.shape)
        h = torch.randn(X.shape[1], 64)
        out["TORCH_SPMM_MACS"] = X.nnz * 64 / best(lambda: adj @ h, 5)
        p = torch.nn.Parameter(torch.randn(1_000_000, 64))
        p.grad = torch.randn_like(p)
        opt = torch.optim.Adam([p], lr=1e-3)
        out["TORCH_ELEMENTS"] = 12 * p.numel() / best(opt.step, 3)
        big = synthetic_shop(n_users=50_000, n_items=10_000, n_events=1_000_000, seed=0)
        out["EVENTS_PER_SECOND"] = len(big) / best(big.to_csr)
        vec = PureSVD(embedding_size=64).fit(random_split(data, seed=0)[0]).item_vectors()   # [10^4, 64]

        def hnsw():
            index = faiss.IndexHNSWFlat(64, 32, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = 80
            index.add(vec)
        out["HNSW_INSERT_SECONDS"] = best(hnsw, 1) / len(vec) / (np.log2(len(vec)) / 10)
        km = faiss.Kmeans(64, 100, niter=10, seed=0)
        out["KMEANS_FLOPS"] = 10 * 2 * 64 * len(vec) * 100 / best(lambda: km.train(vec), 1)
        pq = faiss.ProductQuantizer(64, 16, 8)
        out["PQ_PAIR_SECONDS"] = best(lambda: pq.train(vec), 1) / (16 * 25 * len(vec) * 256)
    return out


def _summary(rows, cfg) -> dict:
    """The acceptance row at the largest size: the exact p50/p99 and, of the HNSW settings with
    overlap@k >= 0.95, the one with the lowest p99 (plain or norm-ranged), and plain HNSW's own."""
    ok = rows[(rows["status"] == "ok") & (rows["family"] == "PureSVD")]
    if not len(ok):
        return {}
    n = int(ok["n_items"].max())
    at = ok[ok["n_items"] == n]
    exact = at[at["variant"] == "exact"].iloc[0]
    out = {"n_items": n, "exact_p50_ms": float(exact["p50_ms"]), "exact_p99_ms": float(exact["p99_ms"])}
    for key, variants in (("hnsw", ("HNSW", "norm-ranged HNSW")), ("plain_hnsw", ("HNSW",))):
        good = at[at["variant"].isin(variants) & (at[f"overlap@{cfg.k}"] >= 0.95)]
        if len(good):
            h = good.sort_values("p99_ms", kind="stable").iloc[0]
            out.update({f"{key}_variant": h["variant"], f"{key}_knob": h["knob"],
                        f"{key}_overlap": float(h[f"overlap@{cfg.k}"]), f"{key}_p50_ms": float(h["p50_ms"]),
                        f"{key}_p99_ms": float(h["p99_ms"]), f"{key}_p99_under_2ms": bool(h["p99_ms"] < 2.0),
                        f"{key}_build_s": float(h["index_build_s"])})
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    ap.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    ap.add_argument("--memory-budget-gb", type=float, default=12.0)
    ap.add_argument("--fit-budget-s", type=float, default=5400.0)
    ap.add_argument("--eval-users", type=int, default=1000)
    ap.add_argument("--requests", type=int, default=500, help="single-user requests per setting")
    ap.add_argument("--ef-search", type=int, nargs="+", default=list(ScaleConfig.ef_search),
                    help="HNSW knob values")
    ap.add_argument("--nprobe", type=int, nargs="+", default=list(ScaleConfig.nprobe),
                    help="IVF-PQ knob values")
    ap.add_argument("--variants", nargs="+", default=None, metavar="NAME",
                    help="run only these accelerated variants (e.g. HNSW int8); exact always runs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--backend", default="process", choices=["serial", "process", "ray"])
    ap.add_argument("--n-jobs", type=int, default=1)
    ap.add_argument("--ray-address", default=None, metavar="ADDR",
                    help="an existing Ray cluster (host:port or 'auto'); default $RAY_ADDRESS, else a "
                         "local instance")
    ap.add_argument("--update", action="store_true",
                    help="replace these sizes in an existing --out, keep the rest")
    ap.add_argument("--calibrate", action="store_true", help="print the throughput constants measured here")
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args(argv)
    if a.calibrate:
        consts = calibrate()
        print(json.dumps({k: float(f"{v:.3g}") for k, v in consts.items()}, indent=1))
        return consts

    cfg = ScaleConfig(sizes=tuple(a.sizes), families=tuple(a.families), memory_budget_gb=a.memory_budget_gb,
                      fit_budget_s=a.fit_budget_s, eval_users=a.eval_users, n_requests=a.requests,
                      threads=a.threads, seed=a.seed, ef_search=tuple(a.ef_search), nprobe=tuple(a.nprobe),
                      variants=None if a.variants is None else tuple(a.variants))
    out_path = Path(a.out)
    old = json.loads(out_path.read_text()) if a.update and out_path.exists() else {"rows": [], "runs": []}
    kept = [r for r in old["rows"] if r["n_items"] not in set(a.sizes)]
    run = {"sizes": list(a.sizes), "variants": a.variants, "backend": a.backend, "n_jobs": a.n_jobs,
           "ray_address": a.ray_address,
           "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "loadavg_before": list(os.getloadavg())}
    fresh: list[dict] = []
    t0 = time.perf_counter()

    def save(rows=None, final=None):
        import pandas as pd
        if rows is not None:
            fresh.extend(json.loads(json.dumps(rows, default=_plain)))
        frame = pd.DataFrame(kept + fresh)
        result = {"benchmark": "scale", "config": config_dict(cfg), "environment": environment(),
                  "runs": old["runs"] + [{**run, **(final or {})}],
                  "rows": json.loads(frame.to_json(orient="records", double_precision=15)) if len(frame) else []}
        if final is not None and len(frame):
            result["exponents"] = json.loads(exponents(frame, PAIRS).to_json(orient="records", double_precision=15))
            result["acceptance"] = _summary(frame, cfg)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out_path, json.dumps(result, indent=1))
        return result

    rows = run_scale(cfg, backend=a.backend, n_jobs=a.n_jobs, ray_address=a.ray_address,
                     on_rows=lambda r: save(r))
    result = save(final={"wall_s": time.perf_counter() - t0, "loadavg_after": list(os.getloadavg())})
    shown = rows[["n_items", "family", "variant", "knob", "status", "fit_s", "est_fit_s", "fit_rss_mb",
                  "est_memory_mb", "p99_ms", "throughput", "ndcg@10", "overlap@10"]]
    print(shown.to_string(float_format=lambda v: f"{v:.4g}"))
    print("acceptance:", json.dumps(result.get("acceptance", {})), "->", out_path)
    return result


if __name__ == "__main__":
    main()
