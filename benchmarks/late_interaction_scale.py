"""Per-request latency at large-model scale (issue 11.4): naive and cached cross-encoder, late
interaction and two-tower with random weights, d in {64, 256, 768} x layers {2, 6, 12} x
L {50, 200} x C {100, 1000}, beside the FLOPs cost model.

    python benchmarks/late_interaction_scale.py [--grid bench|quick] [--threads 1] [--out FILE.json]

Writes benchmarks/results/late_interaction_scale.json: hardware, threads, versions, the load
average before and after, every measured row (the naive cross-encoder's rows say when they were
measured on n of C candidates and scaled by C / n), the naive linearity check, and the headline
ratios at the largest size (12 x 768 is BERT-base). Run it on a quiet machine (``uptime`` load
below 1.5); the load it ran under is in the JSON either way. About 10 minutes on one core.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch

from recsys_lab.eval import environment
from recsys_lab.experiments.late_interaction_scale import ScaleGrid, run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--grid", default="bench", choices=["bench", "quick"])
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads per request")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/late_interaction_scale[_quick].json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    grid = ScaleGrid.named(args.grid)
    grid.threads = args.threads
    load_before = os.getloadavg()
    t0 = time.perf_counter()
    res = run(grid, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = {"benchmark": "late_interaction_scale", "grid": args.grid, "config": asdict(grid),
           "environment": environment(), "torch_threads": args.threads,
           "load_average_before": load_before, "load_average_after": os.getloadavg(),
           "protocol": "random weights, inference mode, SDPA; one request = update(user, click) + "
                       "score_candidates(C); median of repeats after one warm-up; naive "
                       "cross-encoder rows labelled 'measured on n of C candidates' are scaled by C/n",
           "headline": res["headline"].to_dict("records"),
           "table": res["table"].to_dict("records"),
           "linearity": res["linearity"].to_dict("records"),
           "total_seconds": time.perf_counter() - t0}
    suffix = "" if args.grid == "bench" else f"_{args.grid}"
    path = Path(args.out) if args.out else \
        Path(__file__).parent / "results" / f"late_interaction_scale{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(res["headline"].round(2).to_string())
    print(res["linearity"].round(3).to_string())
    print(f"wrote {path} in {out['total_seconds']:.0f} s (load {load_before} -> {out['load_average_after']})")


if __name__ == "__main__":
    main()
