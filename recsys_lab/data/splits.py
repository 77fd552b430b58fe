"""Train / validation / test splits and filters.

Splits keep the input's id space (``n_users``, ``n_items``, raw ids), so their matrices line up
index by index; filters that drop users or items (``k_core``, ``compact``) re-index to a compact
space and keep ``user_ids``, ``item_ids`` and ``item_info`` aligned.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np
import pandas as pd

from .interactions import Interactions


# ---- helpers ------------------------------------------------------------------------------------
def _time_key(data: Interactions) -> np.ndarray:
    return data.timestamp if data.timestamp is not None else np.arange(len(data))


def _by_user_time(data: Interactions) -> np.ndarray:
    """Event indices sorted by (user, time, event order)."""
    return np.lexsort((np.arange(len(data)), _time_key(data), data.user))


def first_events(data: Interactions) -> np.ndarray:
    """Sorted indices of each (user, item) pair's earliest event (time, then event order)."""
    order = np.lexsort((np.arange(len(data)), _time_key(data), data.item, data.user))
    pair = data.user[order].astype(np.int64) * data.n_items + data.item[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = pair[1:] != pair[:-1]
    return np.sort(order[first])


def _groups(user_sorted: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For user ids sorted ascending: each entry's group (0..n_groups-1), its 0-based position
    inside the group, and the size of each group."""
    n = len(user_sorted)
    start = np.ones(n, dtype=bool)
    start[1:] = user_sorted[1:] != user_sorted[:-1]
    starts = np.flatnonzero(start)
    group = np.cumsum(start) - 1
    return group, np.arange(n) - starts[group], np.diff(np.append(starts, n))


def _parts(data: Interactions, labels: np.ndarray, n_parts: int, names: Sequence[str]):
    return tuple(data.subset(np.flatnonzero(labels == p), name=f"{data.name}/{names[p]}")
                 for p in range(n_parts))


# ---- splits -------------------------------------------------------------------------------------
def split_counts(n: np.ndarray, ratios: Sequence[float]) -> np.ndarray:
    """RecBole's per-user rounding: [len(n), len(ratios)] counts summing to n.

    Part k >= 1 gets floor(ratio_k * n) (1e-9 absorbs float error, e.g. 0.1 * 30); train gets the
    rest. Then, from the last part backwards while train keeps more than one, a part whose
    ratio_k * n lies in (0, 1) gets one from train. So n = 1 -> (1, 0, 0), 2 -> (1, 0, 1),
    3 -> (1, 1, 1), 10 -> (8, 1, 1) for 8:1:1; train always keeps at least one.
    """
    n = np.asarray(n, dtype=np.int64)
    r = np.asarray(ratios, dtype=np.float64)
    cnt = np.floor(np.outer(n, r) + 1e-9).astype(np.int64)
    cnt[:, 0] = n - cnt[:, 1:].sum(1)
    for k in range(len(r) - 1, 0, -1):
        exact = r[k] * n
        bump = (cnt[:, 0] > 1) & (exact > 0) & (exact < 1)
        cnt[bump, k] += 1
        cnt[bump, 0] -= 1
    return cnt


def _check_ratios(ratios) -> np.ndarray:
    r = np.asarray(ratios, dtype=np.float64)
    if r.ndim != 1 or len(r) < 2 or not np.all(r > 0) or not np.isclose(r.sum(), 1.0, atol=1e-6):
        raise ValueError(f"ratios must be >= 2 positive numbers summing to 1 (e.g. (0.8, 0.1, 0.1)), "
                         f"got {tuple(ratios)}")
    return r


def random_split(data: Interactions, ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                 unique: bool = True) -> tuple[Interactions, ...]:
    """Per-user random split by ``ratios`` (RecBole's "RO" split; rounding in :func:`split_counts`).

    ``unique=True`` first keeps each (user, item) pair's earliest event, so a test item is never
    also a training item; ``unique=False`` splits events as they are. Returns one Interactions per
    ratio (train, valid, test for three), in the input's id space.
    """
    r = _check_ratios(ratios)
    idx = first_events(data) if unique else np.arange(len(data))
    rng = np.random.default_rng(seed)
    order = idx[np.lexsort((rng.random(len(idx)), data.user[idx]))]    # users grouped, shuffled
    group, pos, size = _groups(data.user[order])
    bounds = np.cumsum(split_counts(size, r), axis=1)                 # [n_users_present, parts]
    part = (pos[:, None] >= bounds[group]).sum(1)
    labels = np.full(len(data), -1)
    labels[order] = part
    names = ("train", "valid", "test") if len(r) == 3 else [f"part{p}" for p in range(len(r))]
    return _parts(data, labels, len(r), names)


def leave_one_out(data: Interactions, unique: bool = False, valid: bool = True
                  ) -> tuple[Interactions, ...]:
    """Per user by time (timestamp, else event order): last event -> test, second to last ->
    valid, the rest -> train. Users with fewer than 3 events (2 when ``valid=False``) keep all in
    train. ``unique=True`` first keeps each (user, item) pair's earliest event.

    Returns (train, valid, test), or (train, test) when ``valid=False``.
    """
    idx = first_events(data) if unique else np.arange(len(data))
    sub = data.subset(idx)
    order = idx[_by_user_time(sub)]
    group, pos, size = _groups(data.user[order])
    from_end = size[group] - pos                                       # 1 = the latest event
    held = 2 if valid else 1
    labels = np.full(len(data), -1)
    labels[order] = np.where(size[group] > held, np.maximum(0, held + 1 - from_end), 0)
    names = ("train", "valid", "test") if valid else ("train", "test")
    return _parts(data, labels, held + 1, names)


def _to_seconds(t) -> int:
    if isinstance(t, (int, float, np.integer, np.floating)):
        return int(t)
    return int(pd.Timestamp(t).timestamp())


def temporal_split(data: Interactions, cut=0.8) -> tuple[Interactions, ...]:
    """Global time cut: events with time < cut -> train, >= cut -> test.

    ``cut`` in (0, 1) is a quantile of the timestamps (of event order when there are none); an int
    is seconds since the epoch; a datetime or date string is converted. A sequence of increasing
    cuts gives that many + 1 parts, e.g. ``(0.8, 0.9)`` -> (train, valid, test).
    """
    cuts = list(cut) if isinstance(cut, (list, tuple, np.ndarray)) else [cut]
    key = _time_key(data)
    values = []
    for c in cuts:
        if isinstance(c, float) and 0 < c < 1:
            values.append(np.quantile(key, c, method="higher"))
        elif isinstance(c, float) and c in (0.0, 1.0):
            raise ValueError(f"a fraction cut must lie strictly inside (0, 1), got {c}")
        elif data.timestamp is None:
            raise ValueError(f"{data.name}: an absolute cut {c!r} needs timestamps; "
                             "give a fraction in (0, 1) instead")
        else:
            values.append(_to_seconds(c))
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"cuts must increase, got {cuts} -> {values}")
    labels = np.searchsorted(np.asarray(values), key, side="right")
    names = ("train", "valid", "test") if len(values) == 2 else (
        ("train", "test") if len(values) == 1 else [f"part{p}" for p in range(len(values) + 1)])
    return _parts(data, labels, len(values) + 1, names)


SPLITS = {"random": random_split, "loo": leave_one_out, "temporal": temporal_split}


def split(data: Interactions, method: str = "random", **kw) -> tuple[Interactions, ...]:
    """Dispatch to :data:`SPLITS` by name: "random", "loo" or "temporal"."""
    if method not in SPLITS:
        raise ValueError(f"unknown split method {method!r}; known: {sorted(SPLITS)}")
    return SPLITS[method](data, **kw)


# ---- filters ------------------------------------------------------------------------------------
def filter_rating(data: Interactions, threshold: float, compact_ids: bool = False) -> Interactions:
    """Keep events with rating >= threshold and drop the rating (explicit -> implicit).

    The id space is kept unless ``compact_ids`` (then see :func:`compact`).
    """
    if data.rating is None:
        raise ValueError(f"{data.name}: has no ratings to threshold")
    out = replace(data.subset(data.rating >= threshold), rating=None)
    if len(out) == 0:
        raise ValueError(f"{data.name}: no rating >= {threshold} (max is {data.rating.max()})")
    return compact(out) if compact_ids else out


def compact(data: Interactions) -> Interactions:
    """Drop users and items without events and re-index densely (order of the old indices kept,
    so sorted raw ids stay sorted); ``user_ids``, ``item_ids`` and ``item_info`` follow."""
    users, user = np.unique(data.user, return_inverse=True)
    items, item = np.unique(data.item, return_inverse=True)
    info = None if data.item_info is None else data.item_info.iloc[items].reset_index(drop=True)
    return replace(data, user=user, item=item, user_ids=data.user_ids[users],
                   item_ids=data.item_ids[items], item_info=info,
                   _user_index=None, _item_index=None)


def sample_users(splits: Sequence[Interactions], n_users: int, seed: int = 0) -> tuple[Interactions, ...]:
    """The events of a seeded sample of ``n_users`` users (drawn without replacement from the whole
    id space) in each of ``splits``; ids unchanged, so the splits still share one id space. Every
    user when ``n_users`` is at least the number of users."""
    splits = tuple(splits)
    if not splits:
        raise ValueError("sample_users needs at least one split")
    if isinstance(n_users, bool) or not isinstance(n_users, (int, np.integer)) or n_users < 1:
        raise ValueError(f"n_users must be a positive integer, got {n_users!r}")
    n = splits[0].n_users
    if any(s.n_users != n for s in splits):
        raise ValueError(f"the splits do not share one id space (users: {[s.n_users for s in splits]})")
    keep = np.random.default_rng(seed).choice(n, min(int(n_users), n), replace=False)
    return tuple(s.subset(np.isin(s.user, keep)) for s in splits)


def k_core(data: Interactions, user_k: int = 10, item_k: int = 10, distinct: bool = False
           ) -> Interactions:
    """Iteratively drop users with < ``user_k`` and items with < ``item_k`` events until stable
    (RecBole's ``user_inter_num_interval`` / ``item_inter_num_interval``), then :func:`compact`.

    Counts are events; ``distinct=True`` counts distinct (user, item) pairs (the bipartite graph's
    k-core). Raises ValueError when nothing survives.
    """
    keep = np.ones(len(data), dtype=bool)
    counted = np.zeros(len(data), dtype=bool)
    counted[first_events(data) if distinct else slice(None)] = True
    while True:
        c = keep & counted
        ok = ((np.bincount(data.user[c], minlength=data.n_users)[data.user] >= user_k)
              & (np.bincount(data.item[c], minlength=data.n_items)[data.item] >= item_k))
        new = keep & ok
        if new.sum() == keep.sum():
            break
        keep = new
    if not keep.any():
        raise ValueError(f"{data.name}: nothing left after the ({user_k}, {item_k})-core filter")
    return compact(data.subset(keep))
