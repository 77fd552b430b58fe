"""SASRec next to Popularity and ItemKNN under the sequential protocol (docs/protocol.md).

    python benchmarks/sequential.py ml-100k --json benchmarks/results/sequential_ml100k.json

Leave-one-out by time (``next_item_split``: last event test, second-to-last validation, first
purchase of each item only), full ranking, K = 10. SASRec early-stops on validation NDCG@10 and
then reads the validation item as part of the history (``extend``); the baselines are fitted on
train + validation, so every model sees the same history when it predicts the test item. Reference
(RecBole, ML-1M, same protocol): SASRec Hit@10 0.2468 / NDCG@10 0.1286.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recsys_lab.data import load_dataset  # noqa: E402
from recsys_lab.eval import environment, evaluate, measure_latency  # noqa: E402
from recsys_lab.models import SASRec, ItemKNN, Popularity  # noqa: E402
from recsys_lab.models.sequential import next_item_split, with_valid  # noqa: E402


def run_sequential(data, seed=2020, epochs=200, embedding_size=64, n_layers=2, learning_rate=2e-3,
                   loss="bce", threads=1) -> dict:
    """SASRec, Popularity and ItemKNN on ``data`` under leave-one-out; one result dict per model."""
    torch.set_num_threads(threads)        # serving too: one request per core, as a server runs
    train, valid, test = next_item_split(data)
    sasrec = SASRec(embedding_size=embedding_size, n_layers=n_layers, n_heads=1, max_len=50,
                    dropout=0.2, loss=loss, epochs=epochs, learning_rate=learning_rate,
                    patience=5, seed=seed, device="cpu", num_threads=threads, progress=False)
    sasrec.fit(train, valid=valid).extend(valid)
    models = {"sasrec": sasrec, "pop": Popularity().fit(with_valid(train, valid)),
              "itemknn": ItemKNN(k=100).fit(with_valid(train, valid))}
    out = {"dataset": {"name": data.name, "users": data.n_users, "items": data.n_items,
                       "events": len(data), "test_users": len(test), "protocol": "leave-one-out, full ranking"}}
    for name, m in models.items():
        r = evaluate(m, test, k=10).iloc[0]
        lat = measure_latency(m, users=test.user, n_requests=100, batch_sizes=(1, 32))
        out[name] = {**{f"{k}@10": float(r[k]) for k in ("hit", "ndcg", "mrr", "recall")},
                     "p50_ms": lat["p50_ms"], "p99_ms": lat["p99_ms"],
                     "fit_seconds": float(getattr(m, "fit_seconds_", np.nan)), "config": m.get_config()}
    out["sasrec"].update(best_epoch=sasrec.best_epoch_, epoch_seconds=float(np.mean(sasrec.epoch_seconds_)),
                         history=sasrec.history_.drop(columns="best").to_dict("list"))
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dataset", help="'ml-100k', 'online-retail' or a path")
    ap.add_argument("--json", type=Path)
    ap.add_argument("--seed", type=int, default=2020)
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--embedding-size", type=int, default=64)
    ap.add_argument("--n-layers", type=int, default=2)
    ap.add_argument("--learning-rate", type=float, default=2e-3)
    ap.add_argument("--loss", default="bce", choices=("bce", "ce"))
    ap.add_argument("--threads", type=int, default=1, help="torch threads, training and serving")
    a = ap.parse_args(argv)
    out = run_sequential(load_dataset(a.dataset), a.seed, a.epochs, a.embedding_size, a.n_layers,
                         a.learning_rate, a.loss, a.threads)
    out["environment"] = environment()
    for name in ("sasrec", "pop", "itemknn"):
        print(f"{name:8s} Hit@10 {out[name]['hit@10']:.4f}  NDCG@10 {out[name]['ndcg@10']:.4f}  "
              f"p50 {out[name]['p50_ms']:.2f} ms")
    if a.json:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps(out, indent=1, default=str))
    return out


if __name__ == "__main__":
    main()
