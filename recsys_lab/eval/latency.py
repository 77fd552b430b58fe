"""One latency harness for every model: per-request percentiles, throughput, serving memory."""
from __future__ import annotations

import os
import platform
import sys
import time
import tracemalloc
from contextlib import contextmanager
from importlib import metadata

import numpy as np


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def threads() -> dict:
    """Thread counts of the numeric libraries that serve a request."""
    info = {"cpu_count": os.cpu_count()}
    try:
        from threadpoolctl import threadpool_info
        for pool in threadpool_info():
            info[f"{pool['internal_api']}_threads"] = pool["num_threads"]
    except Exception:  # pragma: no cover - threadpoolctl optional at runtime
        pass
    if "torch" in sys.modules:
        info["torch_threads"] = sys.modules["torch"].get_num_threads()
    return info


def environment() -> dict:
    """Hardware, threads and versions: stamped into every benchmark JSON and report."""
    versions = {}
    for pkg in ("recsys_lab", "numpy", "scipy", "pandas", "torch", "faiss-cpu", "implicit"):
        try:
            versions[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_model(), "machine": platform.machine(), "python": platform.python_version(),
            "os": platform.platform(), "threads": threads(), "versions": versions}


@contextmanager
def limit_threads(n: int | None = 1):
    """BLAS/OpenMP pools (threadpoolctl) and torch's intra-op pool limited to ``n`` threads
    inside the block (no change when ``n`` is None or 0).

    One serving worker per core is the usual deployment; it also keeps timings sane on a shared
    machine, where OpenMP workers spinning on busy cores slow small kernels down by orders of magnitude.
    """
    if not n:
        yield
        return
    from threadpoolctl import threadpool_limits
    torch = sys.modules.get("torch")
    old = torch.get_num_threads() if torch is not None else None
    if torch is not None:
        torch.set_num_threads(int(n))
    try:
        with threadpool_limits(int(n)):
            yield
    finally:
        if torch is not None:
            torch.set_num_threads(old)


def latency_summary(ms, prefix: str = "") -> dict:
    """p50/p95/p99 (numpy's linear-interpolated percentiles) and mean of per-request milliseconds.

    The one percentile helper of the package: ``latency_summary(ms, "cached_")`` gives
    ``cached_p50_ms``, ``cached_p95_ms``, ``cached_p99_ms``, ``cached_mean_ms``.
    """
    ms = np.asarray(ms, dtype=np.float64).ravel()
    if ms.size == 0:
        raise ValueError("no timings to summarise (an empty list of milliseconds)")
    p50, p95, p99 = np.percentile(ms, [50, 95, 99])
    return {f"{prefix}p50_ms": float(p50), f"{prefix}p95_ms": float(p95), f"{prefix}p99_ms": float(p99),
            f"{prefix}mean_ms": float(ms.mean())}


def time_calls(fn, args_list, warmup: int = 5) -> np.ndarray:
    """Milliseconds of ``fn(*args)`` for each args in ``args_list``, after ``warmup`` untimed calls."""
    for a in args_list[:warmup]:
        fn(*a)
    out = np.empty(len(args_list))
    for i, a in enumerate(args_list):
        t0 = time.perf_counter_ns()
        fn(*a)
        out[i] = (time.perf_counter_ns() - t0) / 1e6
    return out


def batch_latency(model, batch_size: int = 1, n_requests: int = 200, warmup: int = 10, k: int = 10,
                  filter_seen: bool = True, users=None, seed: int = 0) -> dict:
    """Latency of ``model.recommend`` on batches of ``batch_size`` users drawn (seeded, with
    replacement) from ``users`` (default: every user): ``warmup`` untimed calls, then
    ``n_requests`` timed ones. Returns :func:`latency_summary` of the per-call milliseconds,
    ``throughput`` (users/s = batch_size / mean seconds per call), ``batch_size``, ``n_requests``.
    """
    batch_size, n_requests, warmup = int(batch_size), int(n_requests), int(warmup)
    if batch_size < 1 or n_requests < 1 or warmup < 0:
        raise ValueError(f"batch_size and n_requests must be >= 1 and warmup >= 0, got "
                         f"batch_size={batch_size}, n_requests={n_requests}, warmup={warmup}")
    model._check_fitted()
    pool = np.arange(model.n_users_) if users is None else np.asarray(users, dtype=np.int64)
    if len(pool) == 0:
        raise ValueError("no users to time")
    batches = np.random.default_rng(seed).choice(pool, size=(warmup + n_requests, batch_size), replace=True)
    ms = time_calls(lambda u: model.recommend(u, k=k, filter_seen=filter_seen),
                    [(b,) for b in batches], warmup=warmup)[warmup:]
    out = latency_summary(ms)
    out.update(throughput=float(batch_size * 1e3 / out["mean_ms"]), batch_size=batch_size,
               n_requests=n_requests)
    return out


def effective_threads() -> int:
    """Threads a request runs on now: torch's intra-op pool, else the BLAS pool, else the cores."""
    info = threads()
    return int(info.get("torch_threads") or info.get("openblas_threads") or os.cpu_count() or 1)


def measure_latency(model, users=None, k: int = 10, n_requests: int = 200, warmup: int = 10,
                    batch_sizes=(1, 32, 1024), filter_seen: bool = True, seed: int = 0) -> dict:
    """Per-request latency of ``model.recommend`` (one user per request) and batch throughput.

    Returns p50/p95/p99/mean in ms over ``n_requests`` single-user requests after ``warmup``
    untimed ones (:func:`batch_latency` at batch 1); ``throughput_b{B}`` in users/s and
    ``latency_b{B}_ms`` for each batch size (median of 3 calls after one warm-up);
    ``serving_mb`` (fitted state), ``peak_request_mb`` (peak Python/numpy allocation of one
    batch-1 request, tracemalloc), thread counts, device and CPU model.
    """
    one = batch_latency(model, 1, n_requests=n_requests, warmup=warmup, k=k, filter_seen=filter_seen,
                        users=users, seed=seed)
    row = {"model": model.name, **{m: v for m, v in one.items() if m.endswith("_ms")},
           "n_requests": int(n_requests)}
    for b in batch_sizes:
        med = batch_latency(model, b, n_requests=3, warmup=1, k=k, filter_seen=filter_seen, users=users,
                            seed=seed)["p50_ms"]
        row[f"throughput_b{b}"] = float(b / (med / 1e3))
        row[f"latency_b{b}_ms"] = float(med)
    first = np.asarray(users if users is not None else [0], dtype=np.int64)[:1]
    tracemalloc.start()
    model.recommend(first, k=k, filter_seen=filter_seen)
    row["peak_request_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["serving_mb"] = model.serving_bytes() / 2**20
    row["device"] = model.serving_device()
    row["threads"] = effective_threads()
    row["cpu"] = cpu_model()
    return row
