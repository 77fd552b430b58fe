"""cornac on the atomic files that ``benchmarks/peers.py`` exported (run in ``.venv-peers``).

    .venv-peers/bin/python benchmarks/peers/cornac_run.py DATA_PATH DATASET --out OUT.npz

cornac's own evaluation is not used: for each model this writes the top-K of every user on
valid (training items masked) and on test (training + valid items masked), ties to the lower
index (``np.argsort`` stable on -score), after every training epoch for BPR (one ``fit`` of
``max_iter=1`` per epoch; cornac's BPR continues from its current factors) and once for the
others. ``benchmarks/peers.py`` scores them with ``recsys_lab.eval`` and applies the same early
stopping as everywhere else. OUT.npz (no pickle) holds ``user_tokens``, ``item_tokens`` (cornac's
index order) and per model ``NAME__valid_top`` / ``NAME__test_top`` [evaluations, users, K],
``NAME__train_seconds`` and ``NAME__wall_seconds`` [evaluations] (cumulative).

Not run: ItemKNN (cornac's is the rating-prediction weighted average over the user's rated
neighbours, sum s r / sum |s|, which is 1 for every item on 0/1 data: no ranking) and LightGCN
(needs DGL, which has no wheel for current torch on PyPI).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

K = 10
MAX_EPOCHS = 300
NOT_RUN = {"itemknn": "rating-prediction weighted average: constant 1 on 0/1 data",
           "lightgcn": "needs DGL (no wheel for current torch on PyPI)"}


def read_pairs(path: Path) -> list[tuple[str, str]]:
    with open(path) as f:
        f.readline()                                                   # header
        return [tuple(line.rstrip("\n").split("\t")) for line in f]


def csr_of(pairs, uid_map, iid_map, shape):
    import scipy.sparse as sp
    rows = np.array([uid_map[u] for u, _ in pairs], dtype=np.int64)
    cols = np.array([iid_map[i] for _, i in pairs], dtype=np.int64)
    return sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=shape)


def top_k(scores: np.ndarray, mask) -> np.ndarray:
    """[n_users, K] best items with ``mask`` (CSR, same shape) removed; ties to the lower index."""
    s = np.array(scores, dtype=np.float64)
    coo = mask.tocoo()
    s[coo.row, coo.col] = -np.inf
    return np.argsort(-s, axis=1, kind="stable")[:, :K].astype(np.int32)


def all_scores(model, n_users: int) -> np.ndarray:
    return np.stack([np.ravel(model.score(u)) for u in range(n_users)])   # [n_users, n_items]


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_path")
    p.add_argument("dataset")
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--models", default="pop,ease,bpr", help="comma-separated; others are ignored")
    args = p.parse_args(argv)
    wanted = set(args.models.split(","))
    import cornac
    from cornac.data import Dataset
    from cornac.models import BPR, EASE, MostPop

    folder = Path(args.data_path) / args.dataset
    train, valid, test = (read_pairs(folder / f"{args.dataset}.{part}.inter") for part in ("train", "valid", "test"))
    data = Dataset.from_uir([(u, i, 1.0) for u, i in train], seed=args.seed)
    shape = (data.num_users, data.num_items)
    seen = csr_of(train, data.uid_map, data.iid_map, shape)
    masks = {"valid": seen, "test": seen + csr_of(valid, data.uid_map, data.iid_map, shape)}
    models = {   # cornac's defaults except where RecBole's have a counterpart (see benchmarks/peers.py)
        "pop": lambda: MostPop(),
        "ease": lambda: EASE(lamb=250.0, posB=False, verbose=False),  # posB=False: Steck's EASE (no clipping)
        # SGD (not Adam): lr is cornac's default (equal to RecBole's 1e-3); no L2 and no item bias, as
        # RecBole's BPR (weight_decay 0, no bias term)
        "bpr": lambda: BPR(k=64, max_iter=1, learning_rate=1e-3, lambda_reg=0.0, use_bias=False,
                           seed=args.seed, verbose=False),
    }
    out = {"user_tokens": np.array(list(data.uid_map)), "item_tokens": np.array(list(data.iid_map))}
    params = {}
    for name, build in models.items():
        if name not in wanted:
            continue
        model = build()
        epochs = MAX_EPOCHS if name == "bpr" else 1
        tops = {"valid": [], "test": []}
        train_s, wall_s, t_start, t_train = [], [], time.perf_counter(), 0.0
        for _ in range(epochs):
            t0 = time.perf_counter()
            model.fit(data)
            t_train += time.perf_counter() - t0
            scores = all_scores(model, data.num_users)
            for part in tops:
                tops[part].append(top_k(scores, masks[part]))
            train_s.append(t_train)
            wall_s.append(time.perf_counter() - t_start)
        for part in tops:
            out[f"{name}__{part}_top"] = np.stack(tops[part])
        out[f"{name}__train_seconds"] = np.array(train_s)
        out[f"{name}__wall_seconds"] = np.array(wall_s)
        params[name] = {k: getattr(model, k) for k in ("k", "learning_rate", "lambda_reg", "use_bias",
                                                       "lamb", "posB") if hasattr(model, k)}
        print(f"cornac {name}: {epochs} epoch(s) in {wall_s[-1]:.1f}s", file=sys.stderr, flush=True)
    not_run = {k: v for k, v in NOT_RUN.items() if k in wanted}
    out["meta"] = np.array(json.dumps({"cornac": cornac.__version__, "params": params, "not_run": not_run,
                                       "max_epochs": MAX_EPOCHS, "k": K}))
    np.savez_compressed(args.out, **out)


if __name__ == "__main__":
    main()
