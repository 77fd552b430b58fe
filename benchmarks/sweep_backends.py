"""Sweep wall time: the same grid run serially and on the local process pool (and optionally Ray).

    python benchmarks/sweep_backends.py --preset retail --json OUT.json [--ray] [--serial-threads 1]
    python benchmarks/sweep_backends.py --preset smoke --ray --ray-address HOST:PORT   # a running cluster

No cache (every configuration is fitted and measured in each run). The serial run uses all cores
for BLAS/torch in one process; the process backend runs ``n_jobs`` configurations at once with
cores // n_jobs threads each; ``--serial-threads N`` adds a serial run capped at N threads
(separating the gain of parallel configurations from that of avoiding thread oversubscription). Accuracy must agree across backends (checked to 1e-3 relative: the
BLAS thread count changes summation order, e.g. in ItemKNN's similarities). The load average
before and after each run is stored: other processes on the machine distort wall times.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_lab.eval import environment  # noqa: E402
from recsys_lab.eval.sweep import PRESETS, run_spec  # noqa: E402
from recsys_lab.fileio import atomic_write  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", default="retail", choices=sorted(PRESETS))
    p.add_argument("--n-jobs", type=int, default=2)
    p.add_argument("--ray", action="store_true", help="also run on Ray (a local instance unless --ray-address)")
    p.add_argument("--ray-address", default=None, metavar="ADDR",
                   help="an existing Ray cluster for the ray run (host:port or 'auto'; default: $RAY_ADDRESS, "
                        "else a local instance of --n-jobs CPUs)")
    p.add_argument("--serial-threads", type=int, default=None, metavar="N")
    p.add_argument("--serial-last", action="store_true", help="run the default serial sweep last")
    p.add_argument("--json", dest="out")
    args = p.parse_args()
    backends = ["serial"] + ([f"serial_{args.serial_threads}t"] if args.serial_threads else []) + \
        ["process"] + (["ray"] if args.ray else [])
    if args.serial_last:                              # the slowest run last: partial results survive
        backends = backends[1:] + backends[:1]
    out = {"preset": args.preset, "spec": PRESETS[args.preset], "n_jobs": args.n_jobs,
           "ray_address": args.ray_address,
           "environment": environment(), "runs": {}}
    frames = {}
    for backend in backends:
        load0, t0 = os.getloadavg()[0], time.perf_counter()
        kw = {"backend": "serial", "threads": args.serial_threads} if backend.startswith("serial_") \
            else {"backend": backend, **({"ray_address": args.ray_address} if backend == "ray" else {})}
        df = run_spec(args.preset, n_jobs=args.n_jobs, cache_dir=None, **kw)
        wall = time.perf_counter() - t0
        frames[backend] = df
        out["runs"][backend] = {"wall_s": wall, "configs": int(df["label"].nunique()),
                                "fit_s_total": float(df.drop_duplicates("label")["fit_s"].sum()),
                                "loadavg_1min": [load0, os.getloadavg()[0]]}
        print(f"{backend:8s} {wall:7.1f} s  ({df['label'].nunique()} configurations)", flush=True)
        ref = backends[0]
        np.testing.assert_allclose(df["ndcg@10"], frames[ref]["ndcg@10"], rtol=1e-3)
        for b in frames:
            out["runs"][b]["wall_vs_" + ref] = out["runs"][b]["wall_s"] / out["runs"][ref]["wall_s"]
        one = {b: f.drop_duplicates("label").set_index("label") for b, f in frames.items()}
        table = one[ref][["ndcg@10", "recall@10", "serving_mb", "accel_fit_s"]].copy()
        for b in frames:
            table[f"fit_s_{b}"] = one[b]["fit_s"]
        out["table"] = json.loads(table.reset_index().to_json(orient="records"))
        if args.out:                                  # after every run, so a killed run keeps the rest
            atomic_write(args.out, json.dumps(out, indent=1, default=str))
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
