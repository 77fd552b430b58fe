"""``run_sweep``: configurations -> cache look-up -> tasks on a backend -> one tidy frame."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from ...data.interactions import Interactions
from ..latency import cpu_model
from ..pareto import pareto_front
from .cache import SweepCache, data_hash, model_key, result_key
from .executors import BACKENDS, execute, show_progress
from .grid import expand_grid, label

ACCURACY = ("ndcg", "recall", "precision", "hit", "mrr")      # the metrics@K of every row
LATENCY = ("batch_size", "p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput")
DEFAULT_EVAL = {"k": 10, "batch_sizes": [1, 32], "n_requests": 100, "warmup": 5,
                "latency_seed": 0}
PRESETS = {
    "smoke": {"data": {"name": "synthetic", "n_users": 300, "n_items": 200, "n_events": 6000},
              "split": {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 0},
              "eval": {"batch_sizes": [1, 16], "n_requests": 30},
              "grid": [{"model": "Popularity"}, {"model": "EASE", "params": {"reg": [50.0, 500.0]}},
                       {"model": "ItemKNN", "params": {"k": [10, 50]}}]},
    "retail": {"data": "online-retail",
               "split": {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 2020},
               "grid": [{"model": "Popularity"},
                        {"model": "ItemKNN", "params": {"k": [20, 100]}},
                        {"model": "EASE", "params": {"reg": 250.0},
                         "accelerators": [None, {"name": "Distilled",
                                                 "params": {"embedding_size": 32, "epochs": 20,
                                                            "learning_rate": 0.01}}]},
                        {"model": "PureSVD", "params": {"embedding_size": [32, 128]},
                         "accelerators": [None, {"name": "Quantized", "params": {"dtype": "int8"}},
                                          {"name": "ANNIndex", "params": {"backend": "hnsw"}},
                                          {"name": "LowRank", "params": {"rank": 16}}]},
                        {"model": "BPRMF", "params": {"embedding_size": 64, "epochs": 20,
                                                      "learning_rate": 0.01}}]},
}


def default_cache_dir() -> Path:
    """``$RECSYS_LAB_CACHE/sweep``, else ``~/.cache/recsys_lab/sweep`` (outside the repository)."""
    root = os.environ.get("RECSYS_LAB_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "recsys_lab") / "sweep"


def _load(data) -> Interactions:
    from ...data import load_dataset
    if isinstance(data, Interactions):
        return data
    if isinstance(data, dict):
        options = dict(data)
        return load_dataset(options.pop("name"), **options)
    return load_dataset(data)


def _split(data: Interactions, split) -> tuple[Interactions, Interactions | None, Interactions]:
    from ...data import split as split_data
    if isinstance(split, (tuple, list)) and all(isinstance(p, Interactions) for p in split):
        parts = tuple(split)
    else:
        parts = split_data(data, **dict(split or {}))
    if len(parts) == 3:
        return parts
    if len(parts) == 2:
        return parts[0], None, parts[1]
    raise ValueError(f"a split must give (train, test) or (train, valid, test), got {len(parts)} parts")


def run_sweep(grid, data="online-retail", split=None, cache_dir: str | os.PathLike | None = None,
              backend: str = "process", n_jobs: int = 2, evaluation: dict | None = None,
              pareto_x: str = "p99_ms", refresh: bool = False, ray_address: str | None = None,
              threads: int | None = None, progress: bool | None = None) -> pd.DataFrame:
    """Run every configuration of ``grid`` (see :func:`expand_grid`) and return the tidy frame.

    data:      Interactions, a ``load_dataset`` name, or ``{"name": ..., **options}``.
    split:     ``{"method": "random"|"loo"|"temporal", ...}`` for ``recsys_lab.data.split``
               (default random 8:1:1, seed 0), or ready ``(train, [valid,] test)`` splits.
    cache_dir: verified JSON results and ``.npz`` base models (:mod:`.cache`); None: no cache.
               Results are written by this process; base models by the workers, except on Ray.
    backend:   "process" (local spawn pool of ``n_jobs``), "ray" or "serial".
    ray_address: the Ray cluster for ``backend="ray"`` ("host:port" or "auto"; None: $RAY_ADDRESS,
               else a new local instance of ``n_jobs`` CPUs, stopped at the end). On a cluster its
               CPUs, not ``n_jobs``, set how many tasks run at once; a Ray connection the caller
               already opened is used as it is and left open.
    evaluation: overrides of ``k``, ``batch_sizes``, ``n_requests``, ``warmup``, ``latency_seed``.
    threads:   BLAS/torch threads per task (default: the libraries' own for "serial", cores //
               n_jobs for "process", 1 for "ray", where each task reserves ``threads`` CPUs; on a
               loaded machine ``threads=1`` avoids thread oversubscription, which slowed torch/BLAS
               fits here by 10-70x). Accuracy is identical across backends at equal ``threads``.
    refresh:   ignore cached results (refit and re-measure; the cache is overwritten).
    progress:  tqdm bars over tasks and chains (None: only when stderr is a terminal).

    Each configuration is measured by :func:`~recsys_lab.eval.compare` (full ranking, validation
    masked; latency at each batch size). Columns: dataset, label, model, accel, ``param.*``,
    ``accel.*``, batch_size, p50/p95/p99/mean ms, throughput (users/s), ``ndcg@K``, ``recall@K``,
    ``precision@K``, ``hit@K``, ``mrr@K``, coverage, serving_mb, fit_s, accel_fit_s, cached,
    threads, cpu, key, pareto (the front of ``pareto_x`` vs ``ndcg@K`` per data set and batch size).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    if n_jobs < 1:
        raise ValueError(f"n_jobs must be >= 1, got {n_jobs}")
    settings = {**DEFAULT_EVAL, **(evaluation or {})}
    bad = sorted(set(settings) - set(DEFAULT_EVAL))
    if bad:
        raise ValueError(f"unknown eval setting(s) {bad}; valid: {sorted(DEFAULT_EVAL)}")
    configs = expand_grid(grid)
    full = _load(data)
    splits = _split(full, split if split is not None else {"method": "random", "seed": 0})
    dkey = data_hash(*splits)
    cache = SweepCache(cache_dir)
    if cache.root is not None:
        cache.root.mkdir(parents=True, exist_ok=True)
    if threads is None:        # serial: the libraries' default; a pool: share the cores; Ray: one per CPU
        threads = {"serial": None, "process": max(1, (os.cpu_count() or 1) // n_jobs), "ray": 1}[backend]

    keys = [result_key(c, dkey, settings) for c in configs]
    results: dict[str, dict] = {}
    for key in keys if not refresh else []:
        found = cache.load_result(key, dkey)
        if found is not None:
            results[key] = {**found, "cached": True}
    # fitted models are kept where the workers share the driver's disk: not on a Ray cluster
    model_cache = None if cache.root is None or backend == "ray" else str(cache.root)
    tasks: dict[str, dict] = {}
    for cfg, key in zip(configs, keys):
        if key in results:
            continue
        mkey = model_key(cfg["model"], cfg["params"], dkey)
        t = tasks.setdefault(mkey, {"model": cfg["model"], "params": cfg["params"], "model_key": mkey,
                                    "chains": [], "keys": [], "settings": settings,
                                    "cache_dir": model_cache, "threads": threads,
                                    "progress": backend == "serial" and show_progress(progress)})
        t["chains"].append(cfg["accel"])
        t["keys"].append(key)
    if refresh:
        for t in tasks.values():
            cache.forget_model(t["model_key"])
    config_of = dict(zip(keys, configs))

    def keep(rows):                                  # on the driver, as each task finishes
        for row in rows:
            result = {k: v for k, v in row.items() if k != "key"}
            cache.store_result(row["key"], config_of[row["key"]], dkey, settings, result)
            results[row["key"]] = {**result, "cached": False}
    execute(list(tasks.values()), splits, backend, n_jobs, ray_address, progress, on_rows=keep)
    return _frame(configs, keys, results, full.name, settings, pareto_x, threads)


def _frame(configs, keys, results, dataset, settings, pareto_x, threads) -> pd.DataFrame:
    k = settings["k"]
    records = []
    for cfg, key in zip(configs, keys):
        r = results[key]
        base = {"dataset": dataset, "label": label(cfg), "model": cfg["model"],
                "accel": "+".join(s["name"] for s in cfg["accel"]) or "none",
                **{f"param.{p}": v for p, v in cfg["params"].items()}}
        for s in cfg["accel"]:
            prefix = "accel." if len(cfg["accel"]) == 1 else f"accel.{s['name']}."
            base.update({f"{prefix}{p}": v for p, v in s["params"].items()})
        metrics = {m: r[m] for m in (*(f"{m}@{k}" for m in ACCURACY), "coverage")}
        for lat in r["latency"]:
            records.append({**base, **{c: lat[c] for c in LATENCY}, **metrics, "serving_mb": r["serving_mb"],
                            "fit_s": r["fit_s"], "accel_fit_s": r["accel_fit_s"], "cached": r["cached"],
                            "threads": threads or (os.cpu_count() or 1), "cpu": cpu_model(), "key": key})
    df = pd.DataFrame.from_records(records)
    knobs = [c for c in df.columns if c.startswith(("param.", "accel."))]
    front = ["dataset", "label", "model", "accel", *knobs]
    df = df[front + [c for c in df.columns if c not in front]]
    df["pareto"] = False
    for _, g in df.groupby(["dataset", "batch_size"], sort=False):
        df.loc[g.index, "pareto"] = pareto_front(g, pareto_x, f"ndcg@{k}").to_numpy()
    return df


def check_spec(spec) -> dict:
    """A sweep spec ``{"grid": [...], "data": ..., "split": ..., "eval": ..., "pareto_x": ...}``
    (or a :data:`PRESETS` name), validated: unknown keys and grid names raise ValueError."""
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown preset {spec!r}; known: {sorted(PRESETS)}")
        spec = PRESETS[spec]
    if isinstance(spec, list):
        spec = {"grid": spec}
    if not isinstance(spec, dict) or "grid" not in spec:
        raise ValueError("a sweep spec is an object with a 'grid' list (or the list itself)")
    bad = set(spec) - {"grid", "data", "split", "eval", "pareto_x"}
    if bad:
        raise ValueError(f"unknown key(s) {sorted(bad)} in the sweep spec; use grid, data, split, eval, pareto_x")
    expand_grid(spec["grid"])
    return spec


def run_spec(spec, **overrides) -> pd.DataFrame:
    """Run a spec (see :func:`check_spec`); keyword ``overrides`` go to :func:`run_sweep`."""
    spec = check_spec(spec)
    kw = {k: spec[k] for k in ("data", "split", "pareto_x") if k in spec}
    if "eval" in spec:
        kw["evaluation"] = spec["eval"]
    return run_sweep(spec["grid"], **{**kw, **overrides})
