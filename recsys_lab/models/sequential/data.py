"""Next-item data for the sequential models: the leave-one-out split and token windows.

Histories are stored flat: ``items[ptr[u]:ptr[u+1]]`` is user u's sequence in time order. A
window is built for an example ``(u, t)`` = "the first t items of u's history" (predict item t).
"""
from __future__ import annotations

import numpy as np

from ...data.interactions import Interactions


def next_item_split(data: Interactions, min_events: int = 3, dedupe: bool = True):
    """Leave-one-out by time: per user the last event is test, the second-to-last validation.

    ``dedupe`` keeps only the first purchase of each (user, item), so the held-out item is always
    new to the user (masking training items, as full ranking does, can then never hide it).
    Users with fewer than ``min_events`` events stay whole in train. Returns (train, valid, test)
    sharing ``data``'s id space.
    """
    if min_events < 3:
        raise ValueError(f"min_events must be >= 3 (train, valid, test), got {min_events}")
    key = data.timestamp if data.timestamp is not None else np.arange(len(data))
    order = np.lexsort((np.arange(len(data)), key, data.user))          # by user, time, row
    u, i = data.user[order], data.item[order]
    if dedupe:
        pair = u.astype(np.int64) * data.n_items + i
        _, first = np.unique(pair, return_index=True)
        order, u = order[np.sort(first)], u[np.sort(first)]
    n = np.bincount(u, minlength=data.n_users)
    rank_from_end = (np.searchsorted(u, u, side="right") - 1) - np.arange(len(u))  # 0 = last
    held = n[u] >= min_events
    test, valid = held & (rank_from_end == 0), held & (rank_from_end == 1)
    return (data.subset(order[~(test | valid)], name=f"{data.name}-train"),
            data.subset(order[valid], name=f"{data.name}-valid"),
            data.subset(order[test], name=f"{data.name}-test"))



SAMPLES = ("test", "all")


def sampled_next_item_split(data: Interactions, users: int | None, seed: int, sample: str = "test"):
    """``next_item_split`` with a seeded sample of ``users`` test users (all when None).

    ``sample="test"`` (default): only the test split is restricted to the sampled users; train and
    valid keep every user's events, so models learn from all the data and only the evaluation is
    subsampled. ``sample="all"``: train, valid and test all keep only the sampled users' events (a
    smaller data set, e.g. for a fast CI run; its models see less data).
    """
    if sample not in SAMPLES:
        raise ValueError(f"sample must be one of {SAMPLES}, got {sample!r}")
    train, valid, test = next_item_split(data)
    if users is not None and users < data.n_users:
        keep = np.zeros(data.n_users, bool)
        has_test = np.flatnonzero(np.bincount(test.user, minlength=data.n_users))
        keep[np.random.default_rng(seed).choice(has_test, size=min(users, len(test)), replace=False)] = True
        if sample == "all":
            train, valid = (x.subset(keep[x.user]) for x in (train, valid))
        test = test.subset(keep[test.user])
    return train, valid, test


def with_valid(train: Interactions, valid: Interactions) -> Interactions:
    """train + valid events in one Interactions: the history every model reads when it predicts
    the test item under leave-one-out (a sequential model gets the same through ``extend(valid)``)."""
    ts = None if train.timestamp is None else np.r_[train.timestamp, valid.timestamp]
    return Interactions(np.r_[train.user, valid.user], np.r_[train.item, valid.item],
                        train.user_ids, train.item_ids, timestamp=ts, item_info=train.item_info,
                        name=f"{train.name}+valid")

def flat_histories(histories: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """List of per-user item arrays -> (items int64 [N], ptr int64 [n_users + 1])."""
    ptr = np.zeros(len(histories) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum([len(h) for h in histories])
    items = np.concatenate(histories).astype(np.int64) if len(histories) else np.zeros(0, np.int64)
    return items, ptr


def last_window(items: np.ndarray, start: np.ndarray, t: np.ndarray, length: int) -> np.ndarray:
    """Tokens of the last ``length`` items before ``start + t``, right-aligned, item + 1, 0 = pad.

    start, t: int [B]. Returns int64 [B, length].
    """
    p = np.arange(length)                                           # [T]
    idx = (t[:, None] - length + p[None, :])                        # [B, T] offset in the history
    ok = idx >= 0
    return np.where(ok, _gatherable(items)[np.where(ok, start[:, None] + idx, 0)] + 1, 0)


def segment_windows(items: np.ndarray, start: np.ndarray, t: np.ndarray, segments: int,
                    seg_len: int) -> np.ndarray:
    """The last ``segments`` aligned chunks of the first t items, each right-aligned.

    Chunk j holds items ``[j*seg_len, (j+1)*seg_len)`` of the history (counted from its first
    event), so finished chunks never change; the last chunk (the *open* segment) holds 1..seg_len
    items. Slot S-1 is the open segment, earlier slots older chunks; missing chunks are all pad.
    Returns int64 [B, S, seg_len] tokens (item + 1, 0 = pad).
    """
    k = (t - 1) // seg_len                                          # [B] index of the open chunk
    j = k[:, None] - (segments - 1) + np.arange(segments)[None, :]  # [B, S] chunk index per slot
    n_in = np.clip(t[:, None] - j * seg_len, 0, seg_len)            # [B, S] items in each chunk
    p = np.arange(seg_len)[None, None, :]                           # [1, 1, l] right-aligned slot
    off = p - (seg_len - n_in[:, :, None])                          # [B, S, l] offset in chunk
    ok = (off >= 0) & (j[:, :, None] >= 0)
    idx = start[:, None, None] + j[:, :, None] * seg_len + off
    return np.where(ok, _gatherable(items)[np.where(ok, idx, 0)] + 1, 0)


def _gatherable(items: np.ndarray) -> np.ndarray:
    """``items``, or one dummy entry when empty (every index is then masked out anyway)."""
    return items if len(items) else np.zeros(1, np.int64)


def window_histories(tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned windows (item + 1, 0 = pad) [B, L] -> flat (items, ptr) of their items."""
    tokens = np.asarray(tokens, dtype=np.int64)
    real = tokens > 0
    ptr = np.zeros(len(tokens) + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(real.sum(1))
    return tokens[real] - 1, ptr
