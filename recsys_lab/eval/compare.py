"""One measurement layer: the standard row of accuracy, latency, memory and fit time per model.

    table = compare({"EASE": EASE(reg=250.0), "SVD": PureSVD(embedding_size=64)}, test,
                    train=train, valid=valid, k=(10, 20))

Every row holds, for one model: full-ranking accuracy on ``test`` at each cutoff (training items
and ``valid`` masked; :func:`~recsys_lab.eval.evaluate`), per-request p50/p95/p99/mean latency of
single-user requests, throughput at ``batch_size`` (:func:`~recsys_lab.eval.latency.batch_latency`,
one protocol for both), serving memory and fit seconds. ``batch_sizes=[1, 32, ...]`` gives the
sweep's long form instead: one row per model and batch size, latency and throughput measured at
that batch size. The sweep, the accelerator experiments and the notebooks all build on this.
"""
from __future__ import annotations

import sys
import time
from collections.abc import Mapping

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from .evaluate import evaluate
from .latency import batch_latency, cpu_model, effective_threads, limit_threads
from .metrics import METRICS


def accuracy_columns(ks) -> list[str]:
    """``ndcg@10``-style column names of :func:`compare` for the cutoffs ``ks``."""
    return [f"{m}@{k}" for k in ks for m in (*METRICS, "coverage")]


def reported_fit_seconds(model) -> float:
    """Seconds the model says its last fit took (``fit_seconds_``, set by the torch training loop),
    else NaN. Guessing, until the base class declares ``fit_seconds_`` for every model (wave 2)."""
    return float(vars(model).get("fit_seconds_", np.nan))


def _named(models) -> dict:
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {}
        for m in models:
            if m.name in named:
                raise ValueError(f"two models are both named {m.name!r}; pass a dict {{name: model}}")
            named[m.name] = m
    if not named:
        raise ValueError("compare needs at least one model")
    return named


def _positive(name: str, value, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def compare(models, test, train=None, valid=None, k=10, batch_size: int | None = 1024,
            batch_sizes=None, n_requests: int = 200, warmup: int = 10, throughput_requests: int = 5,
            users=None, latency_users=None, fit_seconds: Mapping | None = None, seed: int = 0,
            threads: int | None = None, progress: bool | None = None) -> pd.DataFrame:
    """The standard measurement row of each model in ``models`` (a dict name -> model, or a list).

    train:       fit every model that is not fitted yet on it (``fit(train, valid=valid)``, timed);
                 fitted models are measured as they are (their own training items masked).
    valid:       validation events: given to ``fit`` and masked when ranking for ``test``.
    k:           cutoff or cutoffs of the accuracy columns (``ndcg@k``, ``recall@k``, ...).
    batch_size:  batch of the ``throughput`` column (``throughput_requests`` timed calls after one
                 warm-up); None skips it. Ignored when ``batch_sizes`` is given.
    batch_sizes: the long form: latency and throughput at each of these batch sizes, one row each.
    n_requests, warmup, seed: the timed requests (seeded random users, warm-up excluded).
    users:       evaluate these users only (latency draws from every user).
    latency_users: draw the timed requests from these users (default: every user), e.g. the test
                 users when the others have no history.
    fit_seconds: {name: seconds} for models fitted elsewhere (else a model's ``fit_seconds_``).
    threads:     BLAS/torch threads while fitting and measuring (None: as they are).

    Columns: model, fit_s, ``{metric}@{k}`` for every metric and cutoff (plus ``coverage@{k}``),
    n_users, [batch_size,] p50_ms, p95_ms, p99_ms, mean_ms, throughput (users/s),
    [throughput_batch,] serving_mb, threads, cpu.
    """
    named = _named(models)
    ks = sorted({_positive("k", int(x) if isinstance(x, np.integer) else x) for x in np.atleast_1d(k)})
    long_form = batch_sizes is not None
    sizes = [_positive("batch size", b) for b in batch_sizes] if long_form else [1]
    batch_size = None if long_form else _positive("batch_size", batch_size, allow_none=True)
    n_requests, throughput_requests = _positive("n_requests", n_requests), _positive(
        "throughput_requests", throughput_requests)
    fit_seconds = dict(fit_seconds or {})
    show = sys.stderr.isatty() if progress is None else bool(progress)
    rows = []
    with limit_threads(threads):
        for name, model in tqdm(named.items(), desc="compare", disable=not show, leave=False):
            fit_s = fit_seconds.get(name)
            if not model.is_fitted():
                if train is None:
                    raise ValueError(f"model {name!r} is not fitted and no train split was given")
                t0 = time.perf_counter()
                model.fit(train, valid=valid)
                fit_s = time.perf_counter() - t0
            if fit_s is None:
                fit_s = reported_fit_seconds(model)
            acc = evaluate(model, test, k=ks, exclude=valid, users=users)
            base = {"model": name, "fit_s": float(fit_s)}
            for _, r in acc.iterrows():
                base.update({f"{m}@{int(r.k)}": float(r[m]) for m in (*METRICS, "coverage")})
            base["n_users"] = int(acc["n_users"].iloc[0])
            lat = {b: batch_latency(model, b, n_requests=n_requests, warmup=warmup, k=ks[-1],
                                    users=latency_users, seed=seed) for b in sizes}
            tail = {"serving_mb": model.serving_bytes() / 2**20, "threads": effective_threads(),
                    "cpu": cpu_model()}
            if long_form:
                for b in sizes:
                    rows.append({**base, "batch_size": b, **_timing(lat[b]), **tail})
                continue
            through = np.nan
            if batch_size is not None:
                through = batch_latency(model, batch_size, n_requests=throughput_requests, warmup=1,
                                        k=ks[-1], users=latency_users, seed=seed)["throughput"]
            rows.append({**base, **{**_timing(lat[1]), "throughput": through},
                         "throughput_batch": batch_size, **tail})
    return pd.DataFrame(rows)


def _timing(summary: dict) -> dict:
    return {c: summary[c] for c in ("p50_ms", "p95_ms", "p99_ms", "mean_ms", "throughput")}
