"""Top-k of score rows, seen-item masking, and the explicit padding of short lists.

Padding: when fewer than k items can be recommended (a user who has seen all but 3 items asks for
10; a candidate list with seen items), the missing slots hold item -1 with score -inf. A slot
whose score is -inf (masked, or scored -inf by the model) is always padding, never an item, so a
seen item is never returned by ``recommend(filter_seen=True)``.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

PAD_ITEM = -1


def topk(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k of each row: a partition finds the k-th value, then only k are sorted; ties go to the lower index.

    scores: [n, n_items] (NaN counts as -inf). Returns (items int64 [n, k], values float32 [n, k]).
    Ties (equal float32 values) go to the lower item index, the package's one rule
    (:mod:`recsys_lab.ties`), so a row's result never depends on its batch or on the CPU.
    """
    scores = np.asarray(scores)
    n, m = scores.shape
    if not 0 < k <= m:
        raise ValueError(f"k must be in 1..{m} (the number of items), got k={k}")
    s = scores.astype(np.float32, copy=False)
    if np.isnan(s).any():
        s = np.where(np.isnan(s), np.float32(-np.inf), s)
    if k == m:
        items = np.argsort(-s, axis=1, kind="stable")
        return items.astype(np.int64), np.take_along_axis(s, items, 1)
    kth = np.partition(s, m - k, axis=1)[:, m - k:m - k + 1]             # [n, 1] the k-th best value
    take = s >= kth                                                       # top k, plus extra ties
    excess = np.flatnonzero(take.sum(1) > k)
    if len(excess):                                                       # keep the lowest-index ties
        sub, th = s[excess], kth[excess]
        tied = sub == th
        need = k - (sub > th).sum(1, keepdims=True)
        take[excess] = (sub > th) | (tied & (np.cumsum(tied, axis=1) <= need))
    items = np.nonzero(take)[1].reshape(n, k)                            # [n, k] in index order
    vals = np.take_along_axis(s, items, 1)
    order = np.argsort(-vals, axis=1, kind="stable")                      # stable: ties keep index order
    return np.take_along_axis(items, order, 1).astype(np.int64), np.take_along_axis(vals, order, 1)


def mask_rows(scores: np.ndarray, csr: sp.csr_matrix, users: np.ndarray) -> None:
    """Set ``scores[r, j] = -inf`` wherever ``csr[users[r], j]`` is stored (in place)."""
    sub = csr[users]
    rows = np.repeat(np.arange(len(users)), np.diff(sub.indptr))
    scores[rows, sub.indices] = -np.inf


def mask_candidates(scores: np.ndarray, csr: sp.csr_matrix, users: np.ndarray, items: np.ndarray) -> None:
    """Set ``scores[r, c] = -inf`` wherever ``csr[users[r], items[r, c]]`` is stored (in place)."""
    n, c = items.shape
    stored = np.asarray(csr[np.repeat(users, c), items.ravel()]).reshape(n, c) != 0
    scores[stored] = -np.inf


def pad_short_lists(items: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Slots scored -inf become padding: item -1, score -inf (in place; returns both)."""
    items[np.isneginf(scores)] = PAD_ITEM
    return items, scores
