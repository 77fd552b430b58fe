"""Sweep a grid of model x accelerator x knob settings into one tidy DataFrame.

    grid = [{"model": "EASE", "params": {"reg": [100.0, 500.0]},
             "accelerators": [None, {"name": "Quantized", "params": {"dtype": ["fp16", "int8"]}}]},
            {"model": "BPRMF", "params": {"embedding_size": 32, "epochs": 5}}]
    df = run_sweep(grid, data="online-retail", split={"method": "random", "seed": 2020},
                   cache_dir=".sweep-cache", backend="process", n_jobs=2)

A grid is plain data (a list of blocks, or a dict with a ``"grid"`` list, as in a JSON file): each
block names a model from ``Recommender.registry`` with its parameters and optionally a list of
accelerator alternatives, each ``None`` (the bare model), ``{"name": ..., "params": ...}`` or a list
of those (a chain, innermost first). A list value in ``params`` is a sweep axis; the grid is the
Cartesian product (scikit-learn's ``ParameterGrid``). Nothing but names and JSON values crosses a
process boundary, so the same code path runs in-process, on local processes (spawn-safe) or on a
Ray cluster.

Every configuration is fitted once per block setting (accelerators of one base model share its
fit), evaluated by :func:`~recsys_lab.eval.evaluate` (full ranking, validation masked) and timed at
each batch size with :func:`~recsys_lab.eval.time_calls`. One row per configuration and batch size:
accuracy and latency together, plus ``pareto`` (the front of ``pareto_x`` vs ``ndcg@K`` within each
data set and batch size, :func:`~recsys_lab.eval.pareto.pareto_front`).

Results are cached as JSON (never pickle) under ``cache_dir``, keyed by a SHA-256 of the
configuration, the evaluation settings and the data (the interaction arrays of every split); fitted
base models are kept as ``.npz`` (``Recommender.save``, no pickle) so a new accelerator on a known
model does not retrain it.
"""
from __future__ import annotations

import copy
import hashlib
import itertools
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import fields, is_dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
import pandas as pd

from ..data.interactions import Interactions
from .evaluate import evaluate
from .latency import cpu_model, limit_threads, time_calls
from .pareto import pareto_front

CACHE_VERSION = 1
BACKENDS = ("serial", "process", "ray")
WRAPPED_FIELDS = ("model", "teacher", "base", "inner")   # the field an accelerator wraps
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


# ---- the registry --------------------------------------------------------------------------------
def registry() -> dict[str, type]:
    """``Recommender.registry`` with every model and accelerator module imported."""
    from importlib import import_module

    from ..models.base import Recommender
    for mod in ("recsys_lab.models", "recsys_lab.models.sequential", "recsys_lab.models.svd",
                "recsys_lab.accel", "recsys_lab.accel.distill"):
        try:
            import_module(mod)
        except ImportError:          # optional / not yet present
            pass
    return Recommender.registry


def _klass(name: str) -> type:
    reg = registry()
    if name not in reg:
        raise ValueError(f"unknown model or accelerator {name!r}; known: {sorted(reg)}")
    return reg[name]


def _wrapped_field(klass: type) -> str | None:
    names = [f.name for f in fields(klass)] if is_dataclass(klass) else []
    return next((n for n in WRAPPED_FIELDS if n in names), None)


def _check_params(klass: type, params: dict, skip: str | None = None) -> None:
    valid = {f.name for f in fields(klass)} - {skip} if is_dataclass(klass) else set()
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(f"{klass.__name__}: unknown parameter(s) {bad}; valid: {sorted(valid)}")


# ---- grid expansion ------------------------------------------------------------------------------
def _product(params: dict | None) -> list[dict]:
    """Cartesian product of the list-valued entries (scalars are fixed)."""
    params = dict(params or {})
    keys = sorted(params)
    axes = [v if isinstance(v, list) else [v] for v in (params[k] for k in keys)]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _step(spec) -> dict:
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "params"}:
        raise ValueError(f"an accelerator is None, a name or {{'name': ..., 'params': {{...}}}}, got {spec!r}")
    return {"name": spec["name"], "params": spec.get("params") or {}}


def expand_grid(grid) -> list[dict]:
    """Concrete configurations ``{"model", "params", "accel": [{"name", "params"}, ...]}`` of a grid.

    Names and parameters are checked against the registry here, so a typo fails before any fit.
    """
    if isinstance(grid, dict):
        grid = grid["grid"] if "grid" in grid else [grid]
    if not isinstance(grid, (list, tuple)) or not grid:
        raise ValueError("a grid is a non-empty list of blocks {'model': NAME, 'params': {...}, "
                         "'accelerators': [...]}")
    out, seen = [], set()
    for block in grid:
        if not isinstance(block, dict) or "model" not in block:
            raise ValueError(f"grid block without a 'model' name: {block!r}")
        bad = set(block) - {"model", "params", "accelerators"}
        if bad:
            raise ValueError(f"grid block has unknown key(s) {sorted(bad)}; use model, params, accelerators")
        klass = _klass(block["model"])
        _check_params(klass, block.get("params") or {})
        chains = []
        for alt in block.get("accelerators") or [None]:
            steps = [] if alt in (None, "none") else [_step(s) for s in (alt if isinstance(alt, list) else [alt])]
            for s in steps:
                acc = _klass(s["name"])
                field = _wrapped_field(acc)
                if field is None:
                    raise ValueError(f"{s['name']} is not an accelerator (it has no "
                                     f"{'/'.join(WRAPPED_FIELDS)} field to wrap a model)")
                _check_params(acc, s["params"], skip=field)
            per_step = [[{"name": s["name"], "params": p} for p in _product(s["params"])] for s in steps]
            chains += [list(c) for c in itertools.product(*per_step)]
        for params in _product(block.get("params")):
            for chain in chains:
                cfg = {"model": block["model"], "params": params, "accel": chain}
                key = _canonical(cfg)
                if key not in seen:
                    seen.add(key)
                    out.append(cfg)
    return out


def label(cfg: dict) -> str:
    """Short readable name, e.g. ``EASE(reg=100.0) + Quantized(dtype=int8)``."""
    def one(name, params):
        return f"{name}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})" if params else name
    return " + ".join([one(cfg["model"], cfg["params"])] + [one(s["name"], s["params"]) for s in cfg["accel"]])


# ---- hashing -------------------------------------------------------------------------------------
def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_json_default)


def _json_default(v):
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    raise TypeError(f"not JSON-serialisable in a sweep config: {v!r} ({type(v).__name__})")


def _sha(obj) -> str:
    return hashlib.sha256(_canonical(obj).encode()).hexdigest()[:20]


def data_hash(*splits: Interactions | None) -> str:
    """SHA-256 of the interaction arrays (user, item, rating, timestamp) and id-space sizes."""
    h = hashlib.sha256()
    for part in splits:
        if part is None:
            h.update(b"none")
            continue
        h.update(np.array([part.n_users, part.n_items, len(part)], dtype=np.int64).tobytes())
        for arr in (part.user, part.item, part.rating, part.timestamp):
            h.update(b"-" if arr is None else np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()[:20]


# ---- data ----------------------------------------------------------------------------------------
def _load(data) -> Interactions:
    from ..data import load_dataset
    if isinstance(data, Interactions):
        return data
    if isinstance(data, dict):
        options = dict(data)
        return load_dataset(options.pop("name"), **options)
    return load_dataset(data)


def _split(data: Interactions, split) -> tuple[Interactions, Interactions | None, Interactions]:
    from ..data import split as split_data
    if isinstance(split, (tuple, list)) and all(isinstance(p, Interactions) for p in split):
        parts = tuple(split)
    else:
        parts = split_data(data, **dict(split or {}))
    if len(parts) == 3:
        return parts
    if len(parts) == 2:
        return parts[0], None, parts[1]
    raise ValueError(f"a split must give (train, test) or (train, valid, test), got {len(parts)} parts")


# ---- one task: fit a base model once, then every accelerator chain on it -------------------------
def _build(name: str, params: dict, inner=None):
    klass = _klass(name)
    if inner is None:
        return klass(**params)
    return klass(**{_wrapped_field(klass): inner}, **params)


def _fit(model, train, valid):
    return model.fit(train, valid=valid)


def _is_fitted(model) -> bool:
    try:
        model._check_fitted()
    except RuntimeError:
        return False
    return True


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def measure(model, train, valid, test, settings: dict) -> dict:
    """Accuracy (``evaluate``) and per-batch-size latency (``time_calls``) of one fitted model."""
    k = int(settings["k"])
    acc = evaluate(model, test, exclude=valid, k=k).iloc[0]
    out = {f"{m}@{k}": float(acc[m]) for m in ("ndcg", "recall", "hit", "mrr")}
    out["coverage"] = float(acc["coverage"])
    rng = np.random.default_rng(settings["latency_seed"])
    lat = []
    for b in settings["batch_sizes"]:
        calls = [(rng.integers(0, model.n_users_, size=int(b)),)
                 for _ in range(settings["n_requests"] + settings["warmup"])]
        ms = time_calls(lambda u: model.recommend(u, k=k), calls, warmup=settings["warmup"])
        ms = ms[settings["warmup"]:]
        lat.append({"batch_size": int(b), "p50_ms": float(np.percentile(ms, 50)),
                    "p95_ms": float(np.percentile(ms, 95)), "p99_ms": float(np.percentile(ms, 99)),
                    "mean_ms": float(ms.mean()), "throughput": float(b * 1e3 / ms.mean())})
    out["latency"] = lat
    out["serving_mb"] = model.serving_bytes() / 2**20
    return out


def run_task(task: dict, train: Interactions, valid: Interactions | None, test: Interactions) -> list[dict]:
    """Fit (or load) one base model and measure each accelerator chain on it; write the cache.

    ``task``: {"model", "params", "chains": [[step, ...], ...], "keys": [...], "model_key",
    "cache_dir", "settings", "threads"}. Module-level and data-only, so it runs in any process.
    """
    cache = Path(task["cache_dir"]) if task["cache_dir"] else None
    with limit_threads(task.get("threads")):
        model, fit_s, from_cache = None, None, False
        mpath = cache / "models" / f"{task['model_key']}.npz" if cache else None
        if mpath is not None and mpath.exists():
            from ..models.base import Recommender
            try:
                model = Recommender.load(mpath)
                fit_s = json.loads(mpath.with_suffix(".json").read_text())["fit_s"]
                from_cache = True
            except Exception:        # unreadable or not round-trippable: refit
                model = None
        if model is None:
            model = _build(task["model"], task["params"])
            t0 = time.perf_counter()
            _fit(model, train, valid)
            fit_s = time.perf_counter() - t0
            if mpath is not None:
                try:
                    mpath.parent.mkdir(parents=True, exist_ok=True)
                    model.save(mpath)
                    _atomic_write(mpath.with_suffix(".json"), json.dumps({"fit_s": fit_s}))
                except Exception:    # a model that cannot be saved is simply refitted next time
                    mpath.unlink(missing_ok=True)
        rows = []
        for chain, key in zip(task["chains"], task["keys"]):
            served, t0 = (copy.deepcopy(model) if chain else model), time.perf_counter()
            for s in chain:                     # a copy: no wrapper can leak state into the next chain
                served = _build(s["name"], s["params"], inner=served)
                if not _is_fitted(served):     # wrappers of a fitted model build at once
                    _fit(served, train, valid)
            accel_fit_s = time.perf_counter() - t0
            row = {"key": key, "fit_s": fit_s, "accel_fit_s": accel_fit_s, "model_from_cache": from_cache,
                   **measure(served, train, valid, test, task["settings"])}
            if cache is not None:
                _atomic_write(cache / f"{key}.json", json.dumps(row))
            rows.append(row)
    return rows


# ---- the sweep -----------------------------------------------------------------------------------
def _execute(tasks: list[dict], splits: tuple, backend: str, n_jobs: int, ray_address: str | None):
    if backend == "serial" or not tasks:
        return [run_task(t, *splits) for t in tasks]
    if backend == "process":
        with ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn")) as pool:
            return list(pool.map(run_task, tasks, *[[s] * len(tasks) for s in splits]))
    import ray
    started = not ray.is_initialized()
    if started:
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    try:
        remote = ray.remote(num_cpus=1)(run_task)
        refs = [ray.put(s) for s in splits]
        return ray.get([remote.remote(t, *refs) for t in tasks])
    finally:
        if started:
            ray.shutdown()


def run_sweep(grid, data="online-retail", split=None, cache_dir: str | os.PathLike | None = None,
              backend: str = "process", n_jobs: int = 2, evaluation: dict | None = None,
              pareto_x: str = "p99_ms", refresh: bool = False, ray_address: str | None = None,
              threads: int | None = None) -> pd.DataFrame:
    """Run every configuration of ``grid`` (see :func:`expand_grid`) and return the tidy frame.

    data:      Interactions, a ``load_dataset`` name, or ``{"name": ..., **options}``.
    split:     ``{"method": "random"|"loo"|"temporal", ...}`` for ``recsys_lab.data.split``
               (default random 8:1:1, seed 0), or ready ``(train, [valid,] test)`` splits.
    cache_dir: JSON results and ``.npz`` base models; None disables caching.
    backend:   "process" (local spawn pool of ``n_jobs``), "ray" (``ray.init(address=
               ray_address)`` unless Ray is already initialised) or "serial".
    evaluation: overrides of ``k``, ``batch_sizes``, ``n_requests``, ``warmup``, ``latency_seed``.
    threads:   BLAS/torch threads per worker (default: cores // n_jobs for the parallel backends,
               the libraries' own default for "serial"; on a loaded machine ``threads=1`` avoids
               thread oversubscription, which slowed torch/BLAS fits here by 10-70x).
    refresh:   ignore cached results (refit and re-measure; the cache is overwritten).

    Columns: dataset, label, model, accel, ``param.*``, ``accel.*``, batch_size, p50/p95/p99/mean
    ms, throughput (users/s), ``ndcg@K``, ``recall@K``, ``hit@K``, ``mrr@K``, coverage, serving_mb,
    fit_s, accel_fit_s, cached, threads, cpu, key, pareto.
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
    cache = Path(cache_dir) if cache_dir is not None else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    if threads is None and backend != "serial":
        threads = max(1, (os.cpu_count() or 1) // n_jobs)

    keys = [_sha({"v": CACHE_VERSION, "config": c, "data": dkey, "eval": settings}) for c in configs]
    results: dict[str, dict] = {}
    for key in keys:
        path = cache / f"{key}.json" if cache is not None else None
        if not refresh and path is not None and path.exists():
            results[key] = {**json.loads(path.read_text()), "cached": True}
    tasks: dict[str, dict] = {}
    for cfg, key in zip(configs, keys):
        if key in results:
            continue
        mkey = _sha({"v": CACHE_VERSION, "model": cfg["model"], "params": cfg["params"], "data": dkey})
        t = tasks.setdefault(mkey, {"model": cfg["model"], "params": cfg["params"], "chains": [],
                                    "keys": [], "model_key": mkey, "settings": settings,
                                    "cache_dir": None if cache is None else str(cache),
                                    "threads": threads})
        t["chains"].append(cfg["accel"])
        t["keys"].append(key)
    if refresh and cache is not None:
        for t in tasks.values():
            (cache / "models" / f"{t['model_key']}.npz").unlink(missing_ok=True)
    for rows in _execute(list(tasks.values()), splits, backend, n_jobs, ray_address):
        for row in rows:
            results[row["key"]] = {**row, "cached": False}
    return _frame(configs, keys, results, full.name, settings, pareto_x, threads)


def _frame(configs, keys, results, dataset, settings, pareto_x, threads) -> pd.DataFrame:
    k = settings["k"]
    records = []
    for cfg, key in zip(configs, keys):
        r = results[key]
        base = {"dataset": dataset, "label": label(cfg), "model": cfg["model"],
                "accel": "+".join(s["name"] for s in cfg["accel"]) or "none",
                **{f"param.{p}": v for p, v in cfg["params"].items()}}
        for i, s in enumerate(cfg["accel"]):
            prefix = "accel." if len(cfg["accel"]) == 1 else f"accel.{s['name']}."
            base.update({f"{prefix}{p}": v for p, v in s["params"].items()})
        metrics = {m: r[m] for m in (f"ndcg@{k}", f"recall@{k}", f"hit@{k}", f"mrr@{k}", "coverage")}
        for lat in r["latency"]:
            records.append({**base, **lat, **metrics, "serving_mb": r["serving_mb"], "fit_s": r["fit_s"],
                            "accel_fit_s": r["accel_fit_s"], "cached": r["cached"],
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
