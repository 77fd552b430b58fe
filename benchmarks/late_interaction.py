"""The late-interaction study on Online Retail (issue 11): baselines, two-stage re-rankers,
cached cross-encoder, latency; trained until validation stalls, checkpoints written.

    python benchmarks/late_interaction.py [--profile bench|quick] [--retriever ease|sasrec|two-tower]
                                          [--data FILE] [--out FILE.json] [--checkpoints DIR]

Trains every model on every user's training history (one leave-one-out next-item split, seed
2020) and writes, side by side: Popularity, ItemKNN, EASE and SASRec with full ranking; each
re-ranker (two-tower, naive and cached cross-encoder, late interaction at every S) over the
first stage's top-100, with the first stage's own NDCG@10 beside it, and over every first
stage; per-request p50/p99 after a click; incremental update vs full re-encode; the per-call
floor; serving memory; the FLOPs cost model; the headline checks. The transformers' weights go
to ``--checkpoints`` (default benchmarks/results/late_interaction_<profile>/) as safetensors with
a sha256 manifest, from which notebook 07 restores them.

``--data FILE`` runs the same study on another Online Retail file (either UCI layout, CSV or
Parquet: ``load_dataset("online-retail", path=FILE)``); its path and sha256 are recorded.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from recsys_lab.data import load_dataset
from recsys_lab.eval import environment
from recsys_lab.experiments.late_interaction import Profile, run
from recsys_lab.models.sequential.checkpoint import file_sha256

RESULTS = Path(__file__).parent / "results"


def records(df) -> list[dict]:
    return df.to_dict("records")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="bench", choices=["quick", "bench"])
    ap.add_argument("--retriever", default=None, choices=["ease", "sasrec", "two-tower"],
                    help="main first stage (default: the profile's)")
    ap.add_argument("--item-init", default=None, choices=["text"],
                    help="start the two-tower (and the models warm-started from it) from MiniLM "
                         "title vectors (needs the text extra)")
    ap.add_argument("--data", default=None,
                    help="an Online Retail file (Online Retail or Online Retail II layout, CSV or "
                         "Parquet); default: the embedded copy")
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads for training (latency is always timed on one)")
    ap.add_argument("--out", default=None,
                    help="JSON path (default benchmarks/results/late_interaction_<profile>.json)")
    ap.add_argument("--checkpoints", default=None,
                    help="folder for the safetensors checkpoints and manifest "
                         "(default benchmarks/results/late_interaction_<profile>/; 'none': skip)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    profile = Profile.named(args.profile)
    if args.retriever:
        profile = replace(profile, retriever=args.retriever)
    if args.item_init:
        profile = replace(profile, item_init=args.item_init)
    if args.data:
        path = Path(args.data).expanduser().resolve()
        data = load_dataset("online-retail", path=path)
        data_meta = {"name": data.name, "path": str(path), "sha256": file_sha256(path)}
    else:
        data = load_dataset("online-retail")
        data_meta = {"name": data.name, "path": "embedded", "sha256": None}
    suffix = (f"_{args.item_init}" if args.item_init else "") + (f"_{Path(args.data).stem}" if args.data else "")
    ckpt = None if args.checkpoints == "none" else \
        Path(args.checkpoints) if args.checkpoints else RESULTS / f"late_interaction_{args.profile}{suffix}"
    load_before = os.getloadavg()
    res = run(data, profile, seed=args.seed, save_checkpoints=ckpt, data_meta=data_meta,
              log=lambda msg: print(msg, file=sys.stderr, flush=True))
    out = {
        "benchmark": "late_interaction", "data": data_meta, "profile": args.profile,
        "config": asdict(res["profile"]), "seed": args.seed, "environment": environment(),
        "torch_threads": args.threads, "load_average_before": load_before,
        "load_average_after": os.getloadavg(),
        "protocol": "leave-one-out next item (first purchase of each item per user), history <= 50; "
                    "every model trained on every user's training events, early stopping on "
                    "validation; test on the sampled test users with validation in the history; "
                    f"two-stage: {profile.retriever} top-C unseen candidates re-ranked; full-ranking "
                    "metrics; latency per request = update(user, click) + score C candidates "
                    "(baselines: a full-ranking recommend), interleaved across models, one thread",
        "split_fingerprint": res["split_fingerprint"],
        "checkpoints": None if ckpt is None else {"folder": str(ckpt), "manifest": res["manifest"]},
        "headline": res["headline"],
        "baselines": records(res["baselines"]), "table": records(res["table"]),
        "first_stages": records(res["first_stages"]),
        "latency": records(res["latency"]), "retrieval_latency": res["retrieval"],
        "incremental_updates": records(res["updates"]), "framework_floor": records(res["floor"]),
        "memory": records(res["memory"]), "cost_model": records(res["costs"]),
        "fit_seconds": res["fit_seconds"],
        "epochs_run": {k: len(m.history_) for k, m in res["models"].items()},
        "best_epoch": {k: int(m.best_epoch_) for k, m in res["models"].items()},
        "learning_curves": {k: records(m.history_) for k, m in res["models"].items()},
        "n_test_users": res["n_test_users"], "total_seconds": time.perf_counter() - t0,
    }
    path = Path(args.out) if args.out else RESULTS / f"late_interaction_{args.profile}{suffix}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, default=str))
    print(json.dumps(out["headline"], indent=1))
    print(res["baselines"].round(4).to_string())
    print(res["table"].round(4).to_string())
    print(res["first_stages"].round(4).to_string())
    print(f"wrote {path} in {out['total_seconds']:.0f} s")


if __name__ == "__main__":
    main()
