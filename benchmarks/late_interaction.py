"""Multi-segment late interaction vs two-tower vs cross-encoder on Online Retail (issue 6).

    python benchmarks/late_interaction.py [--profile quick|full|bench] [--retriever two-tower|ease]
                                          [--out FILE.json]

Trains the three architectures on one leave-one-out next-item split and writes, side by side:
NDCG@10 / Recall@10 of the two-stage system (first-stage top-C re-ranked, C=100) and of full
ranking, per-request p50/p99 after a click (C=100 and the whole catalog), incremental-update vs
full re-encode latency at history lengths 50/200/1000, the framework's per-call floor and what
lowers it, serving memory, the FLOPs cost model, and the headline ratios. The ``bench`` profile
(the default) trains every model until validation stalls (early stopping, up to 30 / 15 / 10
epochs for two-tower / cross-encoder / late models) on 2,000 users, with EASE as the first
stage; notebook 07 shows this run next to its own smaller one.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from recsys_lab.data.loaders import load_dataset
from recsys_lab.eval import environment
from recsys_lab.experiments.late_interaction import Profile, run


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="bench", choices=["quick", "full", "bench"])
    ap.add_argument("--retriever", default=None, choices=["two-tower", "ease"],
                    help="first stage (default: the profile's)")
    ap.add_argument("--item-init", default=None, choices=["text"],
                    help="start the two-tower (and the models warm-started from it) from MiniLM "
                         "title vectors (needs the text extra)")
    ap.add_argument("--dataset", default="online-retail")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for training (latency is always timed on one)")
    ap.add_argument("--out", default=None, help="JSON path (default benchmarks/results/late_interaction_<profile>.json)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    profile = Profile.named(args.profile)
    if args.retriever:
        profile = replace(profile, retriever=args.retriever)
    if args.item_init:
        profile = replace(profile, item_init=args.item_init)
    res = run(load_dataset(args.dataset), profile, seed=args.seed,
              log=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = {
        "benchmark": "late_interaction", "dataset": args.dataset, "profile": args.profile,
        "config": asdict(res["profile"]), "seed": args.seed, "environment": environment(),
        "protocol": "leave-one-out next item (first purchase of each item per user), history <= 50; "
                    f"two-stage: {profile.retriever} top-C unseen candidates re-ranked; full-ranking metrics; "
                    "latency per request = update(user, click) + score C candidates, interleaved "
                    "across models in one process",
        "headline": res["headline"],
        "table": res["table"].to_dict("records"),
        "latency": res["latency"].to_dict("records"),
        "retrieval_latency": res["retrieval"],
        "incremental_updates": res["updates"].to_dict("records"),
        "framework_floor": res["floor"].to_dict("records"),
        "memory": res["memory"].to_dict("records"),
        "cost_model": res["costs"].to_dict("records"),
        "fit_seconds": res["fit_seconds"],
        "epochs_run": {k: len(m.history_) for k, m in res["models"].items()},
        "n_test_users": res["n_test_users"], "torch_threads": args.threads,
        "total_seconds": time.perf_counter() - t0,
    }
    suffix = f"_{args.item_init}" if args.item_init else ""
    path = Path(args.out) if args.out else \
        Path(__file__).parent / "results" / f"late_interaction_{args.profile}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out["headline"], indent=1))
    print(res["table"].round(4).to_string())
    print(res["updates"].round(3).to_string())
    print(res["floor"].round(1).to_string())
    print(f"wrote {path} in {out['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
