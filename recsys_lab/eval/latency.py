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


def _percentiles(ms: np.ndarray) -> dict:
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "p99_ms": float(np.percentile(ms, 99)), "mean_ms": float(ms.mean())}


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


def measure_latency(model, users=None, k: int = 10, n_requests: int = 200, warmup: int = 10,
                    batch_sizes=(1, 32, 1024), filter_seen: bool = True, seed: int = 0) -> dict:
    """Per-request latency of ``model.recommend`` (one user per request) and batch throughput.

    Returns p50/p95/p99/mean in ms over ``n_requests`` single-user requests after ``warmup``
    untimed ones; ``throughput_b{B}`` in users/s for each batch size (median of 3 calls);
    ``serving_mb`` (fitted state), ``peak_request_mb`` (peak Python/numpy allocation of one
    batch-1 request, tracemalloc), thread counts, device and CPU model.
    """
    model._check_fitted()
    rng = np.random.default_rng(seed)
    pool = np.arange(model.n_users_) if users is None else np.asarray(users, dtype=np.int64)
    if len(pool) == 0:
        raise ValueError("no users to time")
    req = rng.choice(pool, size=n_requests + warmup, replace=True)
    ms = time_calls(lambda u: model.recommend(u, k=k, filter_seen=filter_seen),
                    [(req[i:i + 1],) for i in range(len(req))], warmup=warmup)[warmup:]
    row = {"model": model.name, **_percentiles(ms), "n_requests": int(n_requests)}
    for b in batch_sizes:
        batch = rng.choice(pool, size=b, replace=True)
        t = time_calls(lambda u: model.recommend(u, k=k, filter_seen=filter_seen), [(batch,)] * 3, warmup=1)
        row[f"throughput_b{b}"] = float(b / (np.median(t) / 1e3))
        row[f"latency_b{b}_ms"] = float(np.median(t))
    tracemalloc.start()
    model.recommend(req[:1], k=k, filter_seen=filter_seen)
    row["peak_request_mb"] = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    row["serving_mb"] = model.serving_bytes() / 2**20
    row["device"] = str(getattr(model, "device_", "cpu"))
    row["threads"] = threads().get("torch_threads") or threads().get("openblas_threads") or os.cpu_count()
    row["cpu"] = cpu_model()
    return row
