"""Real-time shopping-guide simulation: replay shop events in time order against a latency budget.

    train, stream = shopping_stream(load_dataset("online-retail"), cut=0.8)
    model = Cached(EASE(reg=250.0).fit(train), capacity=2000)
    events, summary = simulate(model, stream, k=10, budget_ms=50.0, rate=200.0, seed=0)

After each event (shopper u buys item i) the shop (1) folds the event into u's state (``refresh``
says when: after every event, at the end of the session, or never) and (2) shows u a fresh top-K.
Per event the simulator records the service time of both steps, the cache outcome, and whether
the list shown held the item u bought next (the next event of u in the stream).

Arrivals: back-to-back when ``rate`` is None; else a Poisson process of ``rate`` events/s (seeded).
The shop is a single FIFO server on a virtual clock (Lindley's recursion, no sleeping):

    start_n = max(arrival_n, finish_{n-1}),   finish_n = start_n + service_n,
    response_n = finish_n - arrival_n = wait_n + service_n

so queueing delay shows when the service cannot keep up with the arrival rate. A response over
``budget_ms`` is a violation; the budget is met when the p99 of ``response_ms`` is within it.
"""
from __future__ import annotations

import copy
import time

import numpy as np
import pandas as pd

from .data.interactions import Interactions
from .data.splits import temporal_split
from .models.arguments import check_k

REFRESH = ("event", "session", "never")


def shopping_stream(data: Interactions, cut=0.8, max_events: int | None = None
                    ) -> tuple[Interactions, Interactions]:
    """(train, stream): a global time cut (``temporal_split``); the stream in time order, at most
    ``max_events`` of its earliest events, in the same id space as ``train``."""
    if data.timestamp is None:
        raise ValueError(f"{data.name}: a stream needs timestamps")
    train, rest = temporal_split(data, cut=cut)
    order = np.lexsort((np.arange(len(rest)), rest.timestamp))           # time, then file order
    if max_events is not None:
        order = order[:int(max_events)]
    return train, rest.subset(order, name=f"{data.name}/stream")


def next_items(user: np.ndarray, item: np.ndarray, session: np.ndarray | None = None):
    """For each event of a time-ordered stream, the item of the same user's next event (-1 when
    none) and whether that next event is in the same session."""
    n = len(user)
    nxt = np.full(n, -1, dtype=np.int64)
    same = np.zeros(n, dtype=bool)
    order = np.lexsort((np.arange(n), user))                             # by user, stream order
    u = user[order]
    follows = np.flatnonzero(u[1:] == u[:-1])                            # order[f] precedes order[f+1]
    nxt[order[follows]] = item[order[follows + 1]]
    if session is not None:
        same[order[follows]] = session[order[follows]] == session[order[follows + 1]]
    return nxt, same


def fifo_response(arrival: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Response times of a single FIFO server (Lindley's recursion), same units as the inputs:
    finish_n = max(arrival_n, finish_{n-1}) + service_n, response_n = finish_n - arrival_n."""
    arrival, service = np.asarray(arrival, dtype=np.float64), np.asarray(service, dtype=np.float64)
    if arrival.shape != service.shape or (np.diff(arrival) < 0).any() or (service < 0).any():
        raise ValueError("arrival must be non-decreasing and service >= 0, both of one length")
    finish = np.empty(len(arrival))
    prev = -np.inf
    for t in range(len(arrival)):
        prev = finish[t] = max(arrival[t], prev) + service[t]
    return finish - arrival


def poisson_schedule(n: int, rate: float | None, seed: int = 0) -> np.ndarray:
    """Arrival times (ms) of ``n`` events: all at 0 when ``rate`` is None (back-to-back), else a
    Poisson process of ``rate`` events/s (exponential gaps of mean 1000 / rate ms), seeded."""
    if rate is None:
        return np.zeros(n)
    if not rate > 0:
        raise ValueError(f"rate must be > 0 events/s (or None for back-to-back), got {rate}")
    return np.cumsum(np.random.default_rng(seed).exponential(1e3 / rate, size=n))


def _cache_hits(model) -> float:
    """Result-cache hits so far of a chain (``stats()["results_hits"]``; NaN without a cache)."""
    return model.stats().get("results_hits", np.nan)


def simulate(model, stream: Interactions, k: int = 10, budget_ms: float = 50.0,
             rate: float | None = None, refresh: str = "event", filter_seen: bool = True,
             seed: int = 0, copy_model: bool = True, keep_lists: bool = False
             ) -> tuple[pd.DataFrame, dict]:
    """Replay ``stream`` (time-ordered, the model's id space) against a fitted ``model``.

    refresh:  "event" (state updated after every event), "session" (a session's events are folded
              in when the user's next session starts: cached lists serve the open session) or
              "never" (the frozen model).
    copy_model: work on a deep copy, so ``model`` itself is left as it was.
    keep_lists: add a ``shown`` column with the list shown after each event.

    Returns (events, summary). ``events``: one row per event with event, timestamp, user, item,
    session, arrival_ms, update_ms, recommend_ms, service_ms, wait_ms, response_ms, violation,
    cache_hit (NaN without a cache), next_item (-1 at a user's last event), next_same_session,
    next_is_repeat (the next item was already in u's state when the list was shown), next_hit,
    next_rank (1-based, 0 when missed). ``summary``: counts, percentiles, violation and cache hit
    rates, next-item hit rates (all next events, and next items new to the user).
    """
    if refresh not in REFRESH:
        raise ValueError(f"refresh must be one of {REFRESH}, got {refresh!r}")
    model._check_fitted()
    if (stream.n_users, stream.n_items) != (model.n_users_, model.n_items_):
        raise ValueError(f"the stream's id space {stream.n_users}x{stream.n_items} differs from the "
                         f"model's {model.n_users_}x{model.n_items_}; split one data set")
    if len(stream) == 0:
        raise ValueError("the stream has no events")
    k = check_k(k, model.n_items_)
    poisson_schedule(0, rate)                          # validates rate
    if stream.timestamp is not None and (np.diff(stream.timestamp) < 0).any():
        raise ValueError("the stream is not in time order; build it with shopping_stream()")
    model = copy.deepcopy(model) if copy_model else model
    n = len(stream)
    users, items = stream.user.astype(np.int64), stream.item.astype(np.int64)
    sessions = stream.session if stream.session is not None else np.arange(n)
    stamps = stream.timestamp
    nxt, same = next_items(users, items, sessions)
    arrival = poisson_schedule(n, rate, seed)

    upd_ms, rec_ms = np.zeros(n), np.zeros(n)
    cache_hit = np.full(n, np.nan)
    rank = np.zeros(n, dtype=np.int64)
    repeat = np.zeros(n, dtype=bool)
    shown = [] if keep_lists else None
    pending: dict[int, list] = {}                     # refresh="session": events not yet folded in
    open_session: dict[int, int] = {}
    wall = time.perf_counter()
    for t in range(n):
        u, i = int(users[t]), int(items[t])
        ts = None if stamps is None else int(stamps[t])
        todo = [(u, i, ts)] if refresh == "event" else []
        if refresh == "session":
            if open_session.get(u, sessions[t]) != sessions[t]:
                todo = pending.pop(u, [])
            open_session[u] = sessions[t]
            pending.setdefault(u, []).append((u, i, ts))
        hits0 = _cache_hits(model)                       # counters read outside the timed calls
        t0 = time.perf_counter_ns()
        for u_, i_, ts_ in todo:
            model.update(u_, i_, timestamp=ts_)
        t1 = time.perf_counter_ns() if todo else t0
        top = model.recommend(np.array([u]), k=k, filter_seen=filter_seen)[0][0]
        t2 = time.perf_counter_ns()
        cache_hit[t] = float(_cache_hits(model) > hits0) if not np.isnan(hits0) else np.nan
        upd_ms[t], rec_ms[t] = (t1 - t0) / 1e6, (t2 - t1) / 1e6
        if nxt[t] >= 0:
            pos = np.flatnonzero(top == nxt[t])
            rank[t] = pos[0] + 1 if len(pos) else 0
            repeat[t] = model.seen_set_.contains(u, int(nxt[t]))
        if keep_lists:
            shown.append(tuple(int(x) for x in top))
    wall = time.perf_counter() - wall

    service = upd_ms + rec_ms
    response = fifo_response(arrival, service)
    df = pd.DataFrame({
        "event": np.arange(n), "timestamp": stamps if stamps is not None else np.arange(n),
        "user": users, "item": items, "session": sessions, "arrival_ms": arrival,
        "update_ms": upd_ms, "recommend_ms": rec_ms, "service_ms": service,
        "wait_ms": response - service, "response_ms": response, "violation": response > budget_ms,
        "cache_hit": cache_hit, "next_item": nxt, "next_same_session": same,
        "next_is_repeat": repeat, "next_hit": rank > 0, "next_rank": rank})
    if keep_lists:
        df["shown"] = shown
    return df, summarize(df, budget_ms=budget_ms, k=k, refresh=refresh, rate=rate, wall_s=wall)


def summarize(df: pd.DataFrame, budget_ms: float, **extra) -> dict:
    """Key numbers of a ``simulate`` frame (floats and ints only, ready for ``record``)."""
    has_next = df["next_item"] >= 0
    new_next = has_next & ~df["next_is_repeat"]
    r = df["response_ms"].to_numpy()
    out = {"events": int(len(df)), "users": int(df["user"].nunique()),
           "p50_ms": float(np.percentile(r, 50)), "p95_ms": float(np.percentile(r, 95)),
           "p99_ms": float(np.percentile(r, 99)), "max_ms": float(r.max()),
           "service_p50_ms": float(df["service_ms"].median()),
           "service_p99_ms": float(np.percentile(df["service_ms"], 99)),
           "update_p50_ms": float(df["update_ms"].median()),
           "budget_ms": float(budget_ms), "violations": int(df["violation"].sum()),
           "violation_rate": float(df["violation"].mean()),
           "budget_met": bool(np.percentile(r, 99) <= budget_ms),
           "cache_hit_rate": float(df["cache_hit"].mean()) if df["cache_hit"].notna().any() else float("nan"),
           "with_next": int(has_next.sum()),
           "next_item_hit": float(df.loc[has_next, "next_hit"].mean()) if has_next.any() else float("nan"),
           "next_new_item_hit": float(df.loc[new_next, "next_hit"].mean()) if new_next.any() else float("nan"),
           "next_repeat_share": float(df.loc[has_next, "next_is_repeat"].mean()) if has_next.any() else float("nan")}
    for key, v in extra.items():
        out[key] = v
    return out
