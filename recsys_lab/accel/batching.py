"""Request micro-batching: hold requests up to ``max_wait_ms`` to serve up to ``max_batch`` at once.

A batch of B users costs one matrix product instead of B vector products, so throughput rises with
B while each request waits for its batch to fill and to be served (latency = queueing wait +
service time). ``Batched.serve`` replays a stream of arrival times through one server that
measures each batch's real service time with the wrapped model, and ``batch_curve`` gives the
latency and throughput of batch sizes 1..1024 served back to back.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..models.arguments import check_k
from .base import Wrapper


def poisson_arrivals(n: int, rate_per_s: float, seed: int = 0) -> np.ndarray:
    """``n`` arrival times in seconds of a Poisson process with ``rate_per_s`` requests/s."""
    if rate_per_s <= 0:
        raise ValueError(f"rate_per_s must be > 0, got {rate_per_s}")
    return np.cumsum(np.random.default_rng(seed).exponential(1.0 / rate_per_s, size=n))


@dataclass(eq=False)
class Batched(Wrapper):
    """Serves ``recommend`` in chunks of at most ``max_batch`` users; ``serve`` simulates the queue."""

    max_batch: int = 64
    max_wait_ms: float = 2.0

    def _check_config(self):
        if self.max_batch < 1:
            raise ValueError(f"max_batch must be a positive integer, got {self.max_batch!r}")
        if not self.max_wait_ms >= 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {self.max_wait_ms!r}")

    def _build(self):
        pass

    def _score_items(self, users, items):
        return self.model._score_items(users, items)

    def _recommend(self, users, k, filter_seen, exclude, items):
        B = self.max_batch
        parts = [self.model._recommend(users[lo:lo + B], k, filter_seen, exclude,
                                       None if items is None else items[lo:lo + B])
                 for lo in range(0, len(users), B)]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def serve(self, arrivals_s, users, k: int = 10, filter_seen: bool = True) -> pd.DataFrame:
        """Replay requests (``users[i]`` arriving at ``arrivals_s[i]``, seconds, sorted) through one
        server. A batch is dispatched when the server is free and either ``max_batch`` requests wait
        or the oldest has waited ``max_wait_ms``; its service time is measured for real.

        Returns one row per request: arrival_s, dispatch_s, done_s, wait_ms, service_ms,
        latency_ms (done - arrival), batch (the size it was served in).
        """
        t = np.asarray(arrivals_s, dtype=np.float64)
        users = self._check_users(users)
        check_k(k, self.n_items_)
        if t.shape != users.shape:
            raise ValueError(f"arrivals_s and users differ in length: {t.shape} vs {users.shape}")
        if len(t) and (np.diff(t) < 0).any():
            raise ValueError("arrivals_s must be sorted")
        n, B, wait = len(t), int(self.max_batch), self.max_wait_ms / 1e3
        dispatch, done, size = np.empty(n), np.empty(n), np.empty(n, dtype=np.int64)
        self.model.recommend(users[:1], k=k, filter_seen=filter_seen)          # warm-up
        free, i = 0.0, 0
        while i < n:
            full = t[min(i + B, n) - 1] if i + B <= n else np.inf               # when B are waiting
            d = max(free, min(t[i] + wait, full))
            j = min(i + B, int(np.searchsorted(t, d, side="right")))            # all waiting by d, <= B
            j = max(j, i + 1)
            t0 = time.perf_counter()
            self.model.recommend(users[i:j], k=k, filter_seen=filter_seen)
            service = time.perf_counter() - t0
            dispatch[i:j], done[i:j], size[i:j] = d, d + service, j - i
            free, i = d + service, j
        return pd.DataFrame({"arrival_s": t, "dispatch_s": dispatch, "done_s": done,
                             "wait_ms": (dispatch - t) * 1e3, "service_ms": (done - dispatch) * 1e3,
                             "latency_ms": (done - t) * 1e3, "batch": size})


def summarize_serving(log: pd.DataFrame) -> dict:
    """p50/p95/p99 latency (ms), mean wait and batch size, and throughput (requests/s) of a log."""
    lat = log["latency_ms"].to_numpy()
    span = log["done_s"].max() - log["arrival_s"].min()
    return {"p50_ms": float(np.percentile(lat, 50)), "p95_ms": float(np.percentile(lat, 95)),
            "p99_ms": float(np.percentile(lat, 99)), "mean_wait_ms": float(log["wait_ms"].mean()),
            "mean_batch": float(log["batch"].mean()), "throughput_rps": float(len(log) / span)}


def batch_curve(model, batch_sizes=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), k: int = 10,
                repeats: int = 5, seed: int = 0) -> pd.DataFrame:
    """Latency of one ``recommend`` call per batch size (median of ``repeats``, after a warm-up)
    and the throughput it implies (users/s). One row per batch size."""
    from ..eval import time_calls
    model._check_fitted()
    rng = np.random.default_rng(seed)
    rows = []
    for b in batch_sizes:
        batch = rng.choice(model.n_users_, size=int(b), replace=True)
        ms = time_calls(lambda u: model.recommend(u, k=k), [(batch,)] * (repeats + 1), warmup=1)[1:]
        med = float(np.median(ms))
        rows.append({"batch": int(b), "latency_ms": med, "per_user_ms": med / b,
                     "throughput_ups": b / (med / 1e3)})
    return pd.DataFrame(rows)
