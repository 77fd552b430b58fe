"""One task of the scale grid: a family at one catalog size, run in whatever process gets it.

A task is plain data (the size, the model and its variants by name), so the sweep's backends
(:func:`recsys_lab.eval.sweep.executors.execute`: in-process, a spawn pool, a Ray cluster) run it
unchanged. The worker generates the seeded shop itself (cached for the next task of the same
size), so no split crosses a process or network boundary. :func:`run_scale_task` fits the base
model once (timed, peak RSS), builds each variant (index build time and RSS), sweeps its search
knob without rebuilding, and measures every setting with :func:`~recsys_lab.eval.compare` (full
ranking on the seeded user sample, p50/p95/p99 at batch 1, throughput at the large batch) plus
overlap@k with the exact base model's top-k.
"""
from __future__ import annotations

import ctypes
import functools
import resource
import time

import numpy as np
from tqdm.auto import tqdm

from ..data import random_split, synthetic_shop
from ..eval import compare
from ..eval.latency import limit_threads
from ..eval.sweep.grid import build
from .scale_cost import skip_row


# ---- memory probes: peak RSS of this process, reset between stages (Linux /proc) ---------------
def _status_kb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return None


def rss_mb() -> float:
    """Resident set size now (MB); the lifetime peak where /proc is missing."""
    kb = _status_kb("VmRSS")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


def release_free_memory() -> None:
    """Hand the allocator's free pages back to the OS (glibc ``malloc_trim``), so the next
    stage's peak-RSS growth counts its own allocations, not reuse of memory freed before."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) to the current RSS; False where not supported
    (then :func:`peak_rss_mb` is the process's lifetime peak, an upper bound)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident set size (MB) since the last :func:`reset_peak_rss`."""
    kb = _status_kb("VmHWM")
    return (kb if kb is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) / 1024


@functools.lru_cache(maxsize=1)
def shop_splits(n_users: int, n_items: int, n_events: int, seed: int, eval_users: int):
    """The seeded synthetic shop of one size, split 8:1:1 per user (seeded), and a seeded sample
    of ``eval_users`` test users: ``(train, valid, test, users)``. Cached: the next task of the
    same size in this process reuses it."""
    data = synthetic_shop(n_users=n_users, n_items=n_items, n_events=n_events, seed=seed)
    train, valid, test = random_split(data, ratios=(0.8, 0.1, 0.1), seed=seed)
    with_test = np.unique(test.user)
    rng = np.random.default_rng([seed, 7])
    users = np.sort(rng.choice(with_test, size=min(eval_users, len(with_test)), replace=False))
    return train, valid, test, users


@functools.lru_cache(maxsize=None)
def warm_up(model_name: str) -> None:
    """Pay this process's one-time costs before the first timed fit of a torch model: the first
    torch optimizer imports torch._dynamo (seconds), which is no part of any model's fit."""
    import torch

    from ..eval.sweep.grid import component
    from ..models.torch_base import TorchRecommender
    if issubclass(component(model_name), TorchRecommender):
        torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))])


def _faiss_threads(n: int | None) -> None:
    """faiss's OpenMP pool to ``n`` threads (its bundled libgomp may escape threadpoolctl)."""
    if n:
        import faiss
        faiss.omp_set_num_threads(int(n))


def _measure(label: str, served, ctx: dict, exact: bool = False) -> dict:
    """compare()'s standard row of one served model, plus overlap@k with the exact top-k (1 for
    the exact model itself, not recomputed)."""
    from ..accel import overlap_at_k
    s = ctx["settings"]
    row = compare({label: served}, ctx["test"], valid=ctx["valid"], k=s["k"], users=ctx["users"],
                  batch_size=s["throughput_batch"], throughput_requests=s["throughput_requests"],
                  n_requests=s["n_requests"], warmup=s["warmup"], fit_seconds={label: ctx["fit_s"]},
                  seed=s["seed"], progress=False)
    out = row.iloc[0].to_dict()
    out["evaluated_users"] = out.pop("n_users")
    if exact:
        out[f"overlap@{s['k']}"] = 1.0
    else:
        top = served.recommend(ctx["users"], k=s["k"], exclude=ctx["valid_csr"])[0]
        out[f"overlap@{s['k']}"] = overlap_at_k(top, ctx["exact_top"], s["k"])
    return out


class _Peak:
    """Peak RSS per stage (``stage()`` resets the kernel's mark) and over the whole task."""

    def __init__(self):
        self.overall, self.exact = 0.0, reset_peak_rss()    # exact: per-stage peaks are supported

    def stage(self) -> float:
        """Start a stage: returns the RSS it starts from."""
        self.overall = max(self.overall, peak_rss_mb())
        release_free_memory()
        reset_peak_rss()
        return rss_mb()

    def since(self, start_mb: float) -> float:
        """Peak RSS growth (MB) of the stage started at ``start_mb``."""
        now = peak_rss_mb()
        self.overall = max(self.overall, now)
        return now - start_mb


def _variant_rows(name: str, spec, model, ctx: dict, peak: _Peak, show: bool) -> list[dict]:
    """Build one variant of the fitted ``model`` (timed, RSS) and measure each search-knob value."""
    build_s, build_mb, knob, values, served = 0.0, 0.0, None, [None], model
    if spec is not None:
        start, t0 = peak.stage(), time.perf_counter()
        served = build(spec["name"], spec.get("params", {}), inner=model)   # reads the model only
        build_s, build_mb = time.perf_counter() - t0, peak.since(start)
        if spec.get("search"):
            (knob, values), = spec["search"].items()
    rows = []
    for v in tqdm(values, desc=name, disable=not show or len(values) == 1, leave=False):
        setting = "" if knob is None else f"{knob}={v}"
        if knob is not None:
            served.set_params(**{knob: v})
        m = _measure(f"{name}({setting})" if setting else name, served, ctx, exact=spec is None)
        rows.append({"variant": name, "knob": setting, "index_build_s": build_s, "index_rss_mb": build_mb,
                     **(spec or {}).get("estimate", {}), **m})
    return rows


def run_scale_task(task: dict) -> list[dict]:
    """Fit the family's base model at the task's size and measure every variant: one row per
    variant and search-knob value (see :func:`recsys_lab.experiments.scale.run_scale`).

    ``task``: {"size": {"n_users", "n_items", "n_events"}, "family", "model", "params",
    "variants": {name: None | {"name", "params", "search": {knob: [values]}, "estimate"}},
    "budget": {"memory_bytes", "seconds"}, "settings", "threads", "progress"}. The model's
    estimate is taken again on the generated data's real counts; beyond the budget, the task
    returns its skipped row without fitting. Module-level and data-only: it runs in any process.
    """
    s, size = task["settings"], task["size"]
    show = bool(task.get("progress"))
    with limit_threads(task.get("threads")):
        _faiss_threads(task.get("threads"))
        t0 = time.perf_counter()
        train, valid, test, users = shop_splits(size["n_users"], size["n_items"], size["n_events"],
                                                s["seed"], s["eval_users"])
        data_s = time.perf_counter() - t0
        model = build(task["model"], task["params"])
        est = model.estimate_cost(train.n_users, train.n_items, len(train))     # the real counts
        why = est.exceeds(**task["budget"])
        if why:
            whole = "all" if len(task["variants"]) > 1 else "exact"
            return [skip_row(task["family"], whole, size, est, why)]
        warm_up(task["model"])
        peak = _Peak()
        start, t0 = peak.stage(), time.perf_counter()
        model.fit(train)                                        # fixed epochs: no early stopping
        fit_s, fit_mb = time.perf_counter() - t0, peak.since(start)
        valid_csr = valid.to_csr()
        approximate = any(spec is not None for spec in task["variants"].values())
        ctx = {"settings": s, "test": test, "valid": valid, "valid_csr": valid_csr, "users": users,
               "fit_s": fit_s, "exact_top": model.recommend(users, k=s["k"], exclude=valid_csr)[0]
               if approximate else None}
        base = {"family": task["family"], "n_items": size["n_items"], "n_users": size["n_users"],
                "n_events": size["n_events"], "train_events": len(train), "data_s": data_s,
                "fit_rss_mb": fit_mb, "rss_before_fit_mb": start, "rss_peak_reset": peak.exact,
                **est.as_dict()}
        rows = []
        for name, spec in task["variants"].items():
            rows += _variant_rows(name, spec, model, ctx, peak, show)
        peak.since(0.0)
    return [{**base, **r, "rss_peak_mb": peak.overall, "status": "ok"} for r in rows]
