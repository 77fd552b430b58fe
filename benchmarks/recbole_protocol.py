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

DATA_DIR may also name a synthetic preset (``SYNTHETIC``): ``synthetic-ml1m`` is a shop log of
MovieLens-1M size (``load_dataset("synthetic", ...)``; no ratings, so no rating filter; each
(user, item) pair once, then the 10-core: 6,000 users, 3,000 items, 833,870 interactions).
``--jobs N`` fits N grid points at once in worker processes (``--threads`` BLAS/torch threads
each); ``--valid-every N`` validates learned models every N epochs (default 1); every model's ``timing`` and the top-level ``timing`` record epochs, seconds per training
epoch and per validation, and the table's wall time.

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
import multiprocessing
import os
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# implicit 0.7's CosineRecommender.fit normalises into COO internally and then warns about it
warnings.filterwarnings("ignore", message="Method expects CSR input")

from recsys_lab.data import filter_rating, k_core, load_dataset, random_split  # noqa: E402
from recsys_lab.data.splits import first_events  # noqa: E402
from recsys_lab.eval import environment, evaluate  # noqa: E402
from recsys_lab.eval.latency import limit_threads  # noqa: E402
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
# name -> load_dataset("synthetic", **knobs): synthetic-ml1m has MovieLens-1M's size after filtering
# (ML-1M: 6,040 users, 834,449 interactions; here 6,000 x 3,000 and 833,870, popularity flattened
# and five categories per user so that few events repeat a pair)
SYNTHETIC = {"synthetic-ml1m": dict(n_users=6040, n_items=3000, n_events=1_275_000, seed=0,
                                    popularity_exponent=0.5, categories_per_user=5)}


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
    """Ratings >= threshold, iterative ``core``-core (None: skip either), random 8:1:1 per user.

    A ``SYNTHETIC`` preset name has no ratings: no threshold; each pair's first event only."""
    synthetic = data_dir in SYNTHETIC
    if synthetic:
        data = load_dataset("synthetic", **SYNTHETIC[data_dir])
        data, threshold = data.subset(first_events(data)), None
    else:
        data = load_dataset(data_dir)
    if threshold is not None:
        data = filter_rating(data, threshold)
    if core is not None:
        data = k_core(data, core, core)
    train, valid, test = random_split(data, (0.8, 0.1, 0.1), seed=seed)
    info = {"path_name": Path(data_dir).name, "n_users": data.n_users, "n_items": data.n_items,
            "n_interactions": len(data), "train": len(train), "valid": len(valid), "test": len(test),
            "rating_threshold": threshold, "core": core, "split": "random 8:1:1 per user",
            "seed": seed, "k": K, **({"synthetic": SYNTHETIC[data_dir]} if synthetic else {})}
    return train, valid, test, info


def metrics_at_k(frame) -> dict:
    row = frame.iloc[0]
    return {f"{m}@{K}": float(row[m]) for m in METRIC_KEYS}


VALID = f"valid_ndcg@{K}"


def fit_config(name: str, params: dict, train, valid, test, threads: int | None = None,
               valid_every: int = 1) -> dict:
    """Fit one grid point on train (learned models: early stopping on valid, validated every
    ``valid_every`` epochs), then its validation NDCG@10 and its test metrics (validation items
    masked too), with its timings."""
    factory, _ = resolve(name)
    with limit_threads(threads):
        t0, c0 = time.perf_counter(), time.process_time()   # process CPU time: a guide under load
        model = factory(**params)
        learned = isinstance(model, TorchRecommender)
        if learned:
            model.valid_every = valid_every
        model.fit(train, valid=valid) if learned else model.fit(train)   # torch: early stopping
        fit_s, fit_cpu = time.perf_counter() - t0, time.process_time() - c0
        v = metrics_at_k(evaluate(model, valid, k=K))[f"ndcg@{K}"]
        t0 = time.perf_counter()
        test_m = metrics_at_k(evaluate(model, test, k=K, exclude=valid))
        eval_s = time.perf_counter() - t0
    row = {"params": params, VALID: v, "fit_seconds": fit_s, "fit_cpu_seconds": fit_cpu,
           "class": type(model).__name__}
    if learned:
        h = model.history_
        validated = h["valid_ndcg@10"].notna() if "valid_ndcg@10" in h else np.zeros(len(h), bool)
        row.update(epoch_seconds=float(np.mean(model.epoch_seconds_)), best_epoch=model.best_epoch_,
                   epochs=len(h), validations=int(validated.sum()),
                   valid_seconds=float((h["seconds"] - h["train_seconds"])[validated].mean())
                   if validated.any() else 0.0)
    return {"row": row, "test": {**test_m, "eval_seconds": eval_s}}


_DATA: tuple = ()


def _init_worker(train, valid, test) -> None:
    global _DATA
    _DATA = (train, valid, test)


def _fit_in_worker(name, params, threads, valid_every):
    return fit_config(name, params, *_DATA, threads=threads, valid_every=valid_every)


# the order tasks start in with --jobs > 1: the longest first, so that no long fit starts last
_LONGEST_FIRST = ("ngcf", "lightgcn", "neumf", "bpr", "userknn", "itemknn", "ease")


def run_models(names, train, valid, test, jobs: int = 1, threads: int | None = None,
               valid_every: int = 1) -> dict:
    """Every grid point of every model (``jobs`` at once), then each model's choice on
    validation NDCG@10 (ties: the earlier grid point) with its test metrics.

    With a ``neighbourhood`` axis in the grid, ``by_neighbourhood`` also holds each
    neighbourhood's own choice (on validation) and its test metrics."""
    tasks = [(name, i, params) for name in names for i, params in enumerate(resolve(name)[1])]
    results = {}
    if jobs <= 1:
        for name, i, params in tasks:
            results[name, i] = fit_config(name, params, train, valid, test, threads, valid_every)
            _log(name, results[name, i])
    else:
        rank = {n: r for r, n in enumerate(_LONGEST_FIRST)}
        ordered = sorted(tasks, key=lambda t: rank.get(t[0], len(rank)))           # stable
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_init_worker, initargs=(train, valid, test)) as pool:
            futures = {(n, i): pool.submit(_fit_in_worker, n, p, threads, valid_every)
                       for n, i, p in ordered}
            for key, future in futures.items():
                results[key] = future.result()
                _log(key[0], results[key])
    return {name: choose([results[n, i] for n, i, _ in tasks if n == name]) for name in names}


def _log(name: str, res: dict) -> None:
    r = res["row"]
    epochs = f"  {r['epochs']} epochs x {r['epoch_seconds']:.2f}s + {r['validations']} valid x " \
             f"{r['valid_seconds']:.2f}s" if "epochs" in r else ""
    print(f"  {name} {r['params']}: valid NDCG@{K} {r[VALID]:.4f}  fit {r['fit_seconds']:.2f}s{epochs}",
          flush=True)


def choose(results: list[dict]) -> dict:
    """One model's grid results (in grid order) -> its choice on validation, grid and timing."""
    best = {}                                                          # group -> result
    for res in results:
        params = res["row"]["params"]
        groups = [None, params["neighbourhood"]] if "neighbourhood" in params else [None]  # None: all
        for group in groups:
            if group not in best or res["row"][VALID] > best[group]["row"][VALID]:   # ties: earlier
                best[group] = res
    rows = [res["row"] for res in results]
    out = {**tested(best.pop(None)), "grid": [{k: v for k, v in r.items() if k != "class"} for r in rows],
           "timing": timing(results)}
    if best:
        out["by_neighbourhood"] = {g: tested(best[g]) for g in best}
    return out


def tested(res: dict) -> dict:
    """The record of a chosen grid point: its test metrics and its fit."""
    row = res["row"]
    return {**res["test"], **{key: row[key] for key in ("fit_seconds", "params", VALID, "class",
                                                          "epoch_seconds", "best_epoch") if key in row}}


def timing(results: list[dict]) -> dict:
    """A model's cost over its whole grid: fits, evaluations, epochs and their mean seconds."""
    rows = [res["row"] for res in results]
    out = {"configs": len(rows), "fit_seconds": sum(r["fit_seconds"] for r in rows),
           "fit_cpu_seconds": sum(r["fit_cpu_seconds"] for r in rows),
           "eval_seconds": sum(res["test"]["eval_seconds"] for res in results)}
    if "epochs" in rows[0]:
        epochs, validations = sum(r["epochs"] for r in rows), sum(r["validations"] for r in rows)
        out.update(epochs=epochs, validations=validations,
                   train_seconds_per_epoch=sum(r["epoch_seconds"] * r["epochs"] for r in rows) / epochs,
                   seconds_per_validation=sum(r["valid_seconds"] * r["validations"] for r in rows)
                   / max(validations, 1))
    return out


def run_model(name, train, valid, test) -> dict:
    """One model's grid, one grid point at a time (``run_models`` for several, in parallel)."""
    return run_models([name], train, valid, test)[name]


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
    p.add_argument("--jobs", type=int, default=1, help="grid points fitted at once (processes)")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS and torch threads per grid point (default: as the environment says)")
    p.add_argument("--valid-every", type=int, default=1,
                   help="learned models validate every N epochs (RecBole's eval_step; default 1)")
    args = p.parse_args(argv)
    if min(args.jobs, args.valid_every, args.threads or 1) < 1:
        raise SystemExit(f"--jobs, --threads and --valid-every must be >= 1, got {args.jobs}, "
                         f"{args.threads} and {args.valid_every}")
    t_start, load_start = time.perf_counter(), list(os.getloadavg())
    names = [n.strip() for n in args.models.split(",") if n.strip()]
    for n in names:
        resolve(n)                                                     # fail before any work
    train, valid, test, info = protocol_splits(args.data_dir, args.seed, **PROTOCOLS[args.protocol])
    info["protocol"] = args.protocol
    print(f"{info['path_name']}: {info['n_users']} users, {info['n_items']} items, "
          f"{info['n_interactions']} interactions ({args.protocol} protocol)", flush=True)
    out = {"dataset": info}
    general = run_models([n for n in names if n not in SEQUENTIAL], train, valid, test,
                         jobs=args.jobs, threads=args.threads, valid_every=args.valid_every)
    for name in names:
        if name in SEQUENTIAL:       # its own split: leave-one-out by time on the unfiltered data
            res = SEQUENTIAL[name](load_dataset(args.data_dir), seed=args.seed)
            out[name] = {**res[name], "protocol": res["dataset"]["protocol"], "dataset": res["dataset"],
                         "baselines": {k: res[k] for k in res if k not in (name, "dataset")}}
        else:
            out[name] = general[name]
    if not args.no_implicit and "itemknn" in out:                     # implicit's orientation: source
        chosen = out["itemknn"].get("by_neighbourhood", {}).get("source", out["itemknn"])
        res = run_implicit_cosine(train, valid, test, chosen["params"].get("k", 100))
        if res is not None:
            out["implicit_cosine"] = res
    out["environment"] = {**environment(), "load_average_1_5_15": list(os.getloadavg()),
                          "load_average_at_start": load_start, "cpu_count": os.cpu_count()}
    out["timing"] = {"wall_seconds": time.perf_counter() - t_start, "jobs": args.jobs,
                     "threads_per_job": args.threads, "valid_every": args.valid_every,
                     "fit_seconds": {n: r["timing"]["fit_seconds"] for n, r in general.items()}}
    print(f"\n{'model':16s} " + " ".join(f"{m + '@10':>12s}" for m in METRIC_KEYS) + "   fit_s  params")
    rows = [(name, r) for name, r in out.items() if name not in ("dataset", "environment", "timing")]
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
