"""Where the sweep's tasks run: in-process, on a local spawn pool, or on a Ray cluster.

A task is plain data (names, JSON values, the model cache folder); :func:`run_task` fits (or
loads) one base model and measures every accelerator chain on it with
:func:`~recsys_lab.eval.compare`, so the same function runs in any process. :func:`execute` hands
each finished task's rows to ``on_rows`` at once (the runner caches them on the driver), so an
interrupted sweep keeps what it finished.
"""
from __future__ import annotations

import copy
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context

from tqdm.auto import tqdm

from ...data.interactions import Interactions
from ..compare import compare
from ..latency import limit_threads
from ..metrics import METRICS
from .cache import SweepCache
from .grid import build

BACKENDS = ("serial", "process", "ray")


def show_progress(progress: bool | None) -> bool:
    """None: bars only when stderr is a terminal (not in tests or papermill runs)."""
    return sys.stderr.isatty() if progress is None else bool(progress)


def _fitted_base(task: dict, cache: SweepCache, train, valid):
    """``(model, fit_s, from_cache)``: the cached fitted base model, else a fresh fit (then cached)."""
    cached = cache.load_model(task["model_key"])
    if cached is not None:
        return (*cached, True)
    model = build(task["model"], task["params"])
    t0 = time.perf_counter()
    model.fit(train, valid=valid)
    fit_s = time.perf_counter() - t0
    cache.store_model(task["model_key"], model, fit_s)
    return model, fit_s, False


def _result(frame, settings: dict) -> dict:
    """The cached form of one configuration's :func:`compare` rows (one per batch size)."""
    k, first = settings["k"], frame.iloc[0]
    out = {f"{m}@{k}": float(first[f"{m}@{k}"]) for m in METRICS}
    out["coverage"] = float(first[f"coverage@{k}"])
    out["serving_mb"] = float(first["serving_mb"])
    out["latency"] = [{"batch_size": int(r["batch_size"]),
                       **{c: float(r[c]) for c in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput")}}
                      for _, r in frame.iterrows()]
    return out


def run_task(task: dict, train: Interactions, valid: Interactions | None, test: Interactions) -> list[dict]:
    """Fit (or load) one base model and measure each accelerator chain on it: one row per chain.

    ``task``: {"model", "params", "model_key", "chains": [[step, ...], ...], "keys": [...],
    "settings", "cache_dir" (fitted models; None: none kept), "threads", "progress"}.
    Module-level and data-only, so it runs in any process.
    """
    cache, settings = SweepCache(task["cache_dir"]), task["settings"]
    rows = []
    with limit_threads(task.get("threads")):
        model, fit_s, from_cache = _fitted_base(task, cache, train, valid)
        chains = list(zip(task["chains"], task["keys"]))
        for chain, key in tqdm(chains, desc=task["model"], disable=not task.get("progress"), leave=False):
            served, t0 = (copy.deepcopy(model) if chain else model), time.perf_counter()
            for s in chain:                     # a copy: no wrapper can leak state into the next chain
                served = build(s["name"], s["params"], inner=served)
                if not served.is_fitted():      # wrappers of a fitted model build at once
                    served.fit(train, valid=valid)
            accel_fit_s = time.perf_counter() - t0
            frame = compare({key: served}, test, valid=valid, k=settings["k"],
                            batch_sizes=settings["batch_sizes"], n_requests=settings["n_requests"],
                            warmup=settings["warmup"], seed=settings["latency_seed"],
                            fit_seconds={key: fit_s}, progress=False)
            rows.append({"key": key, "fit_s": fit_s, "accel_fit_s": accel_fit_s,
                         "model_from_cache": from_cache, **_result(frame, settings)})
    return rows


def execute(tasks: list[dict], splits: tuple, backend: str = "serial", n_jobs: int = 2,
            ray_address: str | None = None, progress: bool | None = None, on_rows=None,
            task_fn=run_task) -> None:
    """Run every task on ``backend`` (see :data:`BACKENDS`); ``on_rows(rows)`` gets each finished
    task's rows, in the order they finish. A bar counts the finished tasks. ``task_fn(task,
    *splits)`` runs one task: :func:`run_task` by default, or another module-level function of
    plain data (the scale grid's) on the same backends."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    bar = tqdm(total=len(tasks), desc=f"sweep ({backend})", disable=not show_progress(progress))

    def done(rows):
        if on_rows is not None:
            on_rows(rows)
        bar.update()
    try:
        if backend == "serial" or not tasks:
            for t in tasks:
                done(task_fn(t, *splits))
        elif backend == "process":
            _process(tasks, splits, n_jobs, done, task_fn)
        else:
            _ray(tasks, splits, ray_address, n_jobs, done, task_fn)
    finally:
        bar.close()


def _process(tasks, splits, n_jobs: int, done, task_fn=run_task) -> None:
    with ProcessPoolExecutor(max_workers=n_jobs, mp_context=get_context("spawn")) as pool:
        for future in as_completed([pool.submit(task_fn, t, *splits) for t in tasks]):
            done(future.result())


def _ray(tasks, splits, address: str | None, n_jobs: int, done, task_fn=run_task) -> None:
    """On the Ray cluster at ``address`` (``ray.init(address=...)``: "auto", "host:port", or None for
    $RAY_ADDRESS or a new local instance of ``n_jobs`` CPUs); a connection the caller opened is used
    as it is and left open. The splits travel once through the object store."""
    import ray

    started = not ray.is_initialized()
    if started:
        local = address is None and "RAY_ADDRESS" not in os.environ
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({"num_cpus": n_jobs} if local else {}))
    try:
        remote = ray.remote(num_cpus=tasks[0]["threads"] or 1)(task_fn)    # a CPU per thread it runs
        refs = [ray.put(s) for s in splits]
        pending = [remote.remote(t, *refs) for t in tasks]
        while pending:
            finished, pending = ray.wait(pending, num_returns=1)
            done(ray.get(finished[0]))
    finally:
        if started:
            ray.shutdown()
