"""Seconds per training epoch and per full validation of the learned models, for two checkouts.

    python benchmarks/recbole_epoch_times.py synthetic-ml1m --before /path/to/old/checkout \
        --json benchmarks/results/recbole_synthetic-ml1m_epochs.json

Both code versions train on the same split (``recbole_protocol.protocol_splits``, written once to
a temporary ``.npz`` and read back by each version in its own subprocess, with that checkout first
on ``PYTHONPATH``). Each model runs ``--epochs`` epochs of its benchmark configuration (the
``recbole_protocol.MODELS`` factory and the first grid point, or ``--params``), validating after
every epoch on all validation users, and reports per epoch its training and validation seconds
(wall and process CPU time: under load, CPU time is the better guide to a quiet machine) and its
loss and validation NDCG@10, so that the two versions can be compared epoch by epoch.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT_EPOCHS = {"bpr": 3, "neumf": 2, "lightgcn": 2, "ngcf": 2}
# the benchmark configuration of each model (the grid point validation chose on ML-100k)
DEFAULT_PARAMS = {"bpr": dict(learning_rate=5e-4, reg=1e-4, n_negatives=4),
                  "neumf": dict(learning_rate=1e-3, n_negatives=4),
                  "lightgcn": dict(learning_rate=1e-3, n_layers=2, reg=1e-4),
                  "ngcf": dict(learning_rate=1e-3, n_layers=2, reg=1e-4)}
CLASSES = {"bpr": "BPRMF", "neumf": "NeuMF", "lightgcn": "LightGCN", "ngcf": "NGCF"}


def child(split_path: str, name: str, epochs: int, params: dict) -> dict:
    """Runs inside the checkout under test: time ``epochs`` epochs of one model."""
    import torch

    import recsys_lab
    from recsys_lab.data import Interactions
    from recsys_lab.eval import evaluate
    from recsys_lab.models import Recommender
    with np.load(split_path) as f:
        parts = [Interactions(f[f"{p}_user"], f[f"{p}_item"], f["user_ids"], f["item_ids"], name=p)
                 for p in ("train", "valid", "test")]
    train, valid, _ = parts
    torch.set_num_threads(1)
    klass = Recommender.registry[CLASSES[name]]
    model = klass(embedding_size=64, epochs=epochs, patience=epochs, batch_size=2048, num_threads=1,
                  valid_users=None, device="cpu", **params)
    rows, orig = [], model.validation_score

    def timed_validation(v):                                           # CPU and wall per validation
        c, w = time.process_time(), time.perf_counter()
        score = orig(v)
        rows.append({"valid_cpu_seconds": time.process_time() - c,
                     "valid_wall_seconds": time.perf_counter() - w})
        return score

    epoch_cpu, batches = [], model.batches

    def timed_batches(*a):                                             # CPU from first batch to last step
        c = time.process_time()
        yield from batches(*a)
        epoch_cpu.append(time.process_time() - c)

    model.validation_score, model.batches = timed_validation, timed_batches
    model.fit(train, valid=valid)
    h = model.history_
    return {"package": str(Path(recsys_lab.__file__).resolve().parents[1]), "params": params,
            "epochs": len(h), "loss": h["loss"].tolist(), "valid_ndcg@10": h["valid_ndcg@10"].tolist(),
            "train_wall_seconds": h["train_seconds"].tolist(),
            "valid_wall_seconds": [r["valid_wall_seconds"] for r in rows],
            "valid_cpu_seconds": [r["valid_cpu_seconds"] for r in rows],
            "train_cpu_seconds": epoch_cpu,
            "final_valid_ndcg@10": float(evaluate(model, valid, k=10)["ndcg"].iloc[0])}


def run_version(root: Path, split_path: str, name: str, epochs: int, params: dict) -> dict:
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    code = ("import json, sys; sys.path.insert(0, %r); from recbole_epoch_times import child; "
            "print('RESULT' + json.dumps(child(%r, %r, %d, %s)))") % (
        str(HERE), split_path, name, epochs, json.dumps(params).replace("true", "True"))
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=str(root), capture_output=True,
                         text=True, check=False)
    if out.returncode:
        raise RuntimeError(f"{name} in {root} failed:\n{out.stderr[-3000:]}")
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT")][-1]
    return json.loads(line[len("RESULT"):])


def main(argv=None) -> dict:
    sys.path.insert(0, str(HERE))
    from recbole_protocol import PROTOCOLS, protocol_splits
    from recsys_lab.eval import environment
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", help="a MovieLens folder or a recbole_protocol.SYNTHETIC preset")
    p.add_argument("--before", required=True, help="the checkout of the code before (its root)")
    p.add_argument("--after", default=str(HERE.parent), help="the checkout after (default: this one)")
    p.add_argument("--models", default=",".join(DEFAULT_EPOCHS))
    p.add_argument("--epochs", type=int, default=None, help="epochs per model (default: DEFAULT_EPOCHS)")
    p.add_argument("--json", dest="out")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    unknown = sorted(set(names) - set(CLASSES))
    if unknown:
        raise SystemExit(f"unknown model {unknown}; known: {sorted(CLASSES)}")
    train, valid, test, info = protocol_splits(args.data_dir, 2020, **PROTOCOLS["recbole"])
    load_start = list(os.getloadavg())
    out = {"dataset": info, "versions": {"before": args.before, "after": args.after}}
    with tempfile.TemporaryDirectory() as tmp:
        split_path = str(Path(tmp) / "split.npz")
        np.savez(split_path, user_ids=train.user_ids, item_ids=train.item_ids,
                 **{f"{n}_{c}": getattr(part, c) for n, part in (("train", train), ("valid", valid),
                                                                  ("test", test)) for c in ("user", "item")})
        for name in names:
            epochs = args.epochs or DEFAULT_EPOCHS[name]
            out[name] = {v: run_version(Path(root), split_path, name, epochs, DEFAULT_PARAMS[name])
                         for v, root in (("before", args.before), ("after", args.after))}
            b, a = out[name]["before"], out[name]["after"]
            print(f"{name}: train s/epoch {np.mean(b['train_wall_seconds']):.2f} -> "
                  f"{np.mean(a['train_wall_seconds']):.2f} (cpu {np.mean(b['train_cpu_seconds']):.2f} -> "
                  f"{np.mean(a['train_cpu_seconds']):.2f}); validation s {np.mean(b['valid_wall_seconds']):.2f}"
                  f" -> {np.mean(a['valid_wall_seconds']):.2f} (cpu {np.mean(b['valid_cpu_seconds']):.2f} -> "
                  f"{np.mean(a['valid_cpu_seconds']):.2f}); valid NDCG {b['valid_ndcg@10']} vs {a['valid_ndcg@10']}",
                  flush=True)
    out["environment"] = {**environment(), "load_average_at_start": load_start,
                          "load_average_1_5_15": list(os.getloadavg()), "cpu_count": os.cpu_count(),
                          "threads": 1}
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
