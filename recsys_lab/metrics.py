"""Full-ranking top-K metrics with binary relevance: the pure-numpy kernel, below models and eval.

``recsys_lab.eval`` (evaluate, compare, the sweep) and the training loops' validation
(``validation_ndcg``, early stopping) both score with these functions, so a model never imports
eval and no metric is written twice.

Per user with at least one relevant item, then averaged over those users:
    Hit@K       = 1[any relevant item in the top K]
    Precision@K = hits / K
    Recall@K    = hits / |relevant|
    NDCG@K      = DCG / IDCG,  DCG = sum_{hits at rank r} 1/log2(r+1),  IDCG over min(|relevant|, K)
    MRR@K       = 1 / rank of the first hit (0 if none)
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp

METRICS = ("recall", "precision", "ndcg", "mrr", "hit")
_CHUNK_USERS = 8192


def hit_matrix(top_items: np.ndarray, relevant: sp.csr_matrix) -> np.ndarray:
    """hits[u, r] = 1 if top_items[u, r] is relevant for u; negative ids (padding) never hit."""
    n, k = top_items.shape
    items = np.where(top_items < 0, 0, top_items)
    rows = np.repeat(np.arange(n), k)
    hits = np.asarray(relevant[rows, items.ravel()]).reshape(n, k) > 0
    return hits & (top_items >= 0)


def ranking_metrics(top_items: np.ndarray, relevant: sp.spmatrix, k: int) -> dict[str, float]:
    """Mean Recall/Precision/NDCG/MRR/Hit@k over users with at least one relevant item.

    top_items: int [n_users, >= k] item indices in rank order (a shorter list, e.g. from a
    catalog smaller than k, is scored as is; -1 pads). relevant: CSR [n_users, n_items].
    Duplicate items in a row are counted once (at their first rank).
    """
    k = int(k)
    if k <= 0:
        raise ValueError(f"k must be a positive integer, got {k}")
    top_items = np.asarray(top_items)
    relevant = sp.csr_matrix(relevant)
    if top_items.ndim != 2 or top_items.shape[0] != relevant.shape[0]:
        raise ValueError(f"top_items must be [n_users, k] with n_users={relevant.shape[0]}, "
                         f"got shape {top_items.shape}")
    top = top_items[:, :k]
    n_rel = np.diff(relevant.indptr)
    users = np.flatnonzero(n_rel)
    sums = dict.fromkeys(METRICS, 0.0)
    if len(users) == 0:
        return {m: float("nan") for m in METRICS}
    discount = 1.0 / np.log2(np.arange(2, k + 2))
    ideal = np.concatenate([[0.0], np.cumsum(discount)])                 # ideal[j] = IDCG with j hits
    for lo in range(0, len(users), _CHUNK_USERS):
        u = users[lo:lo + _CHUNK_USERS]
        t = _first_occurrence(top[u])
        hits = hit_matrix(t, relevant[u]).astype(np.float64)            # [n, <=k]
        width = hits.shape[1]
        n_hits = hits.sum(1)
        sums["hit"] += (n_hits > 0).sum()
        sums["precision"] += (n_hits / k).sum()
        sums["recall"] += (n_hits / n_rel[u]).sum()
        dcg = hits @ discount[:width]
        sums["ndcg"] += (dcg / ideal[np.minimum(n_rel[u], k)]).sum()
        first = np.where(n_hits > 0, hits.argmax(1) + 1, np.inf)
        sums["mrr"] += (1.0 / first).sum()
    return {m: float(sums[m] / len(users)) for m in METRICS}


def _first_occurrence(top: np.ndarray) -> np.ndarray:
    """Replace repeated items in a row by -1 so that each item can hit only once."""
    if top.shape[1] < 2:
        return top
    order = np.argsort(top, axis=1, kind="stable")
    s = np.take_along_axis(top, order, 1)
    dup_sorted = np.zeros_like(s, dtype=bool)
    dup_sorted[:, 1:] = (s[:, 1:] == s[:, :-1]) & (s[:, 1:] >= 0)
    if not dup_sorted.any():
        return top
    dup = np.zeros_like(dup_sorted)
    np.put_along_axis(dup, order, dup_sorted, 1)
    return np.where(dup, -1, top)


def coverage(top_items: np.ndarray, n_items: int) -> float:
    """Fraction of the catalog that appears in at least one top-K list."""
    t = np.asarray(top_items).ravel()
    return float(len(np.unique(t[t >= 0])) / n_items)


def validation_ndcg(model, valid, k: int = 10, batch_users: int = 1024) -> float:
    """NDCG@k of ``model`` on ``valid`` (Interactions): full ranking, the model's seen items
    masked, users with a validation item, in blocks of ``batch_users`` (the numbers of
    ``eval.evaluate(model, valid, k=k)``)."""
    relevant = valid.to_csr()
    users = np.flatnonzero(np.diff(relevant.indptr))
    if len(users) == 0:
        raise ValueError("no users with validation items")
    top = np.concatenate([model.recommend(users[lo:lo + batch_users], k=k)[0]
                          for lo in range(0, len(users), batch_users)])
    return ranking_metrics(top, relevant[users], k)["ndcg"]
