"""The RecBole general-recommendation protocol (docs/protocol.md) on a GroupLens folder.

    python benchmarks/recbole_protocol.py DATA_DIR --models pop,itemknn,ease --json OUT.json

ratings >= 3 -> implicit; iterative 10-core; per-user random 8:1:1 (seeded); full ranking with
training (and, on test, validation) items masked; K = 10. Each model's hyper-parameters are
chosen on validation NDCG@10 from the small grid in ``MODELS``, then the chosen model (fitted on
train) is scored on test. OUT.json maps each model name to its test metrics (``ndcg@10``,
``recall@10``, ``mrr@10``, ``hit@10``, ``precision@10``), ``fit_seconds``, ``params`` and the
grid it searched; the reserved keys ``dataset`` and ``environment`` describe the run. The KNN
grids span neighbourhood ("target": RecBole's and the article's; "source": implicit's) x k x
shrink x shrink form, and ``by_neighbourhood`` holds the test metrics of the best configuration
(on validation) of each neighbourhood. Learned models early-stop on all validation users.

``--protocol quickstart`` is RecBole's default quick-start instead (no rating filter, no k-core;
the setting of the published ML-100k BPR runs, NDCG@10 0.277-0.292).

A model joins by name: add ``MODELS["name"] = (factory, grid)``, or pass any Recommender class
name (e.g. ``--models bprmf``), which runs with its default config. ``sasrec`` runs the sequential
variant (leave-one-out by time on the unfiltered data, full ranking; ``benchmarks/sequential.py``).
Where ``implicit`` imports, its ``CosineRecommender`` runs on the same split as ``implicit_cosine``
(fit time side by side).
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# implicit 0.7's CosineRecommender.fit normalises into COO internally and then warns about it
warnings.filterwarnings("ignore", message="Method expects CSR input")

from recsys_lab.data import filter_rating, k_core, load_dataset, random_split  # noqa: E402
from recsys_lab.eval import environment, evaluate  # noqa: E402
from recsys_lab.eval.metrics import ranking_metrics  # noqa: E402
from sequential import run_sequential  # noqa: E402  (benchmarks/sequential.py)

from recsys_lab.models import (BPRMF, EASE, NGCF, ItemKNN, LightGCN, NeuMF, Popularity,  # noqa: E402
                               Recommender, TorchRecommender, UserKNN)
from recsys_lab.models.knn import NEIGHBOURHOODS  # noqa: E402
from recsys_lab.similarity import SHRINK_FORMS  # noqa: E402

K = 10
METRIC_KEYS = ("ndcg", "recall", "mrr", "hit", "precision")


def grid(**axes) -> list[dict]:
    """Cartesian product of the axes: grid(k=[1, 2], shrink=[0]) -> [{k: 1, shrink: 0}, ...]."""
    return [dict(zip(axes, values)) for values in itertools.product(*axes.values())]


def knn_grid(k: list[int], shrink: list[float]) -> list[dict]:
    """Cosine KNN grid: neighbourhood x k x shrink x shrink form (one form at shrink 0, where
    both forms are the plain cosine)."""
    return [dict(similarity="cosine", neighbourhood=n, k=kk, shrink=sh, shrink_form=form)
            for n in NEIGHBOURHOODS for kk in k for sh in shrink
            for form in (SHRINK_FORMS if sh else SHRINK_FORMS[:1])]


# name -> (factory(**params) -> Recommender, small grid selected on validation NDCG@10)
MODELS: dict[str, tuple] = {
    "pop": (Popularity, [{}]),
    "itemknn": (ItemKNN, knn_grid(k=[50, 100, 250, 500], shrink=[0.0, 10.0, 100.0])),
    "userknn": (UserKNN, knn_grid(k=[50, 100, 250], shrink=[0.0, 10.0, 100.0])),
    "ease": (EASE, grid(reg=[50.0, 100.0, 250.0, 500.0, 1000.0, 2000.0])),
}
# learned models: early stopping on validation NDCG@10 (patience 10, as RecBole's stopping_step),
# scored on every validation user (valid_users=None): a sample could stop training on noise
_TORCH = dict(embedding_size=64, epochs=300, patience=10, batch_size=2048, num_threads=1,  # small nets: 1 thread
              valid_users=None)
MODELS.update({
    "bpr": (partial(BPRMF, **_TORCH),   # 5e-4: the learning rate of RecBole's published BPR row
            grid(learning_rate=[5e-4, 1e-3, 2e-3], reg=[0.0, 1e-4], n_negatives=[1, 4])),
    "neumf": (partial(NeuMF, **_TORCH), grid(learning_rate=[1e-3], n_negatives=[4])),
    "lightgcn": (partial(LightGCN, **_TORCH), grid(learning_rate=[1e-3], n_layers=[2, 3], reg=[1e-4])),
    "ngcf": (partial(NGCF, **_TORCH), grid(learning_rate=[1e-3], n_layers=[2], reg=[1e-4])),
})


# name -> runner(data, seed) under the sequential (leave-one-out) protocol
SEQUENTIAL = {"sasrec": partial(run_sequential, loss="ce")}   # RecBole's SASRec default: CE loss
PROTOCOLS = {"recbole": dict(threshold=3.0, core=10), "quickstart": dict(threshold=None, core=None)}


def resolve(name: str) -> tuple:
    """A MODELS entry, else a registered Recommender class by (case-insensitive) name."""
    if name in SEQUENTIAL:
        return SEQUENTIAL[name], None
    if name in MODELS:
        return MODELS[name]
    by_lower = {cls.lower(): klass for cls, klass in Recommender.registry.items()}
    if name.lower() in by_lower:
        return by_lower[name.lower()], [{}]
    raise SystemExit(f"unknown model {name!r}; known: {sorted(MODELS)} or any of "
                     f"{sorted(Recommender.registry)}")


def protocol_splits(data_dir: str, seed: int, threshold: float | None = 3.0, core: int | None = 10):
    """Ratings >= threshold, iterative ``core``-core (None: skip either), random 8:1:1 per user."""
    data = load_dataset(data_dir)
    if threshold is not None:
        data = filter_rating(data, threshold)
    if core is not None:
        data = k_core(data, core, core)
    train, valid, test = random_split(data, (0.8, 0.1, 0.1), seed=seed)
    info = {"path_name": Path(data_dir).name, "n_users": data.n_users, "n_items": data.n_items,
            "n_interactions": len(data), "train": len(train), "valid": len(valid), "test": len(test),
            "rating_threshold": threshold, "core": core, "split": "random 8:1:1 per user",
            "seed": seed, "k": K}
    return train, valid, test, info


def metrics_at_k(frame) -> dict:
    row = frame.iloc[0]
    return {f"{m}@{K}": float(row[m]) for m in METRIC_KEYS}


VALID = f"valid_ndcg@{K}"


def run_model(name, train, valid, test) -> dict:
    """Fit every grid point on train, choose on validation NDCG@10, score the choice on test.

    With a ``neighbourhood`` axis in the grid, ``by_neighbourhood`` also holds each
    neighbourhood's own choice (on validation) and its test metrics. Only the models still in
    the running are kept in memory."""
    factory, candidates = resolve(name)
    tried, best = [], {}                                               # group -> (row, model)
    for params in candidates:
        t0 = time.perf_counter()
        model = factory(**params)
        learned = isinstance(model, TorchRecommender)
        model.fit(train, valid=valid) if learned else model.fit(train)   # torch: early stopping
        fit_s = time.perf_counter() - t0
        v = metrics_at_k(evaluate(model, valid, k=K))[f"ndcg@{K}"]
        row = {"params": params, VALID: v, "fit_seconds": fit_s,
               **({"epoch_seconds": float(np.mean(model.epoch_seconds_)), "best_epoch": model.best_epoch_}
                  if learned else {})}
        tried.append(row)
        groups = [None, params["neighbourhood"]] if "neighbourhood" in params else [None]  # None: all
        for group in groups:
            if group not in best or v > best[group][0][VALID]:         # ties: the earlier config
                best[group] = (row, model)
        print(f"  {name} {params}: valid NDCG@{K} {v:.4f}  fit {fit_s:.2f}s", flush=True)
    out = {**tested(*best.pop(None), valid, test), "grid": tried}
    if best:
        out["by_neighbourhood"] = {g: tested(*best[g], valid, test) for g in best}
    return out


def tested(row: dict, model: Recommender, valid, test) -> dict:
    """The test metrics of a chosen grid point (validation items masked too), with its record."""
    t0 = time.perf_counter()
    test_m = metrics_at_k(evaluate(model, test, k=K, exclude=valid))
    return {**test_m, "fit_seconds": row["fit_seconds"], "eval_seconds": time.perf_counter() - t0,
            "params": row["params"], VALID: row[VALID], "class": type(model).__name__,
            **{key: row[key] for key in ("epoch_seconds", "best_epoch") if key in row}}


def run_implicit_cosine(train, valid, test, neighbours: int) -> dict | None:
    """implicit's CosineRecommender (user x item CSR in 0.7) on the same split, K neighbours."""
    try:
        from implicit.nearest_neighbours import CosineRecommender
    except ImportError:
        return None
    X = train.to_csr()                                                 # [n_users, n_items]
    model = CosineRecommender(K=neighbours + 1)                        # its K counts the item itself
    t0 = time.perf_counter()
    model.fit(X, show_progress=False)
    fit_s = time.perf_counter() - t0

    def top_k(split, mask):
        users = np.flatnonzero(np.diff(split.to_csr().indptr))
        extra = mask.to_csr() if mask is not None else None
        width = K + (int(np.diff(extra.indptr).max()) if extra is not None else 0)
        ids, _ = model.recommend(users, X[users], N=min(width, X.shape[1]), filter_already_liked_items=True)
        if extra is not None:                                          # drop masked (valid) items
            hit = np.asarray(extra[np.repeat(users, ids.shape[1]), np.maximum(ids, 0).ravel()]).reshape(ids.shape)
            ids = np.where(hit > 0, -1, ids)
            ids = np.stack([row[row >= 0][:K] if (row >= 0).sum() >= K else
                            np.pad(row[row >= 0], (0, K - (row >= 0).sum()), constant_values=-1) for row in ids])
        full = np.full((X.shape[0], K), -1, dtype=np.int64)
        full[users] = ids[:, :K]
        return full, split.to_csr()

    v_top, v_rel = top_k(valid, None)
    t0 = time.perf_counter()
    t_top, t_rel = top_k(test, valid)
    eval_s = time.perf_counter() - t0
    v = ranking_metrics(v_top, v_rel, K)["ndcg"]
    t = ranking_metrics(t_top, t_rel, K)
    import implicit
    return {**{f"{m}@{K}": float(t[m]) for m in METRIC_KEYS}, "fit_seconds": fit_s, "eval_seconds": eval_s,
            "params": {"K": neighbours + 1}, f"valid_ndcg@{K}": float(v), "class": "implicit.CosineRecommender",
            "implicit_version": implicit.__version__}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data_dir", help="a MovieLens folder (u.data or ratings.dat)")
    p.add_argument("--models", default="pop,itemknn,ease", help="comma-separated model names")
    p.add_argument("--json", dest="out", help="write the results here")
    p.add_argument("--seed", type=int, default=2020)
    p.add_argument("--protocol", choices=sorted(PROTOCOLS), default="recbole",
                   help="recbole: ratings >= 3 and 10-core (default); quickstart: unfiltered")
    p.add_argument("--no-implicit", action="store_true", help="skip implicit's CosineRecommender")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        resolve(n)                                                     # fail before any work
    train, valid, test, info = protocol_splits(args.data_dir, args.seed, **PROTOCOLS[args.protocol])
    info["protocol"] = args.protocol
    print(f"{info['path_name']}: {info['n_users']} users, {info['n_items']} items, "
          f"{info['n_interactions']} interactions ({args.protocol} protocol)", flush=True)
    out = {"dataset": info}
    for name in names:
        if name in SEQUENTIAL:       # its own split: leave-one-out by time on the unfiltered data
            res = SEQUENTIAL[name](load_dataset(args.data_dir), seed=args.seed)
            out[name] = {**res[name], "protocol": res["dataset"]["protocol"], "dataset": res["dataset"],
                         "baselines": {k: res[k] for k in res if k not in (name, "dataset")}}
        else:
            out[name] = run_model(name, train, valid, test)
    if not args.no_implicit and "itemknn" in out:                     # implicit's orientation: source
        chosen = out["itemknn"].get("by_neighbourhood", {}).get("source", out["itemknn"])
        res = run_implicit_cosine(train, valid, test, chosen["params"].get("k", 100))
        if res is not None:
            out["implicit_cosine"] = res
    out["environment"] = {**environment(), "load_average_1_5_15": list(os.getloadavg())}
    print(f"\n{'model':16s} " + " ".join(f"{m + '@10':>12s}" for m in METRIC_KEYS) + "   fit_s  params")
    rows = [(name, r) for name, r in out.items() if name not in ("dataset", "environment")]
    rows += [(f"{name}:{g}", r["by_neighbourhood"][g]) for name, r in rows if "by_neighbourhood" in r
             for g in r["by_neighbourhood"]]
    for name, r in rows:
        print(f"{name:16s} " + " ".join(f"{r.get(m + '@10', float('nan')):12.4f}" for m in METRIC_KEYS)
              + f" {r['fit_seconds']:7.2f}  {r.get('params', r.get('protocol'))}")
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=1, default=float))
    return out


if __name__ == "__main__":
    main()
