"""Full-ranking evaluation of a Recommender: every item a candidate, training items masked."""
from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp
from tqdm.auto import tqdm

from ..data.interactions import Interactions
from ..models.arguments import as_indices, check_k
from .metrics import METRICS, coverage, ranking_metrics


def _as_csr(x, shape) -> sp.csr_matrix | None:
    if x is None:
        return None
    m = x.to_csr() if isinstance(x, Interactions) else sp.csr_matrix(x)
    if m.shape != shape:
        raise ValueError(f"matrix shape {m.shape} does not match the model's {shape}; "
                         "splits must share one id space")
    return m


def evaluate(model, test, train=None, k=(10, 20), exclude=None, users=None,
             batch_users: int = 1024, progress: bool = False) -> pd.DataFrame:
    """Full-ranking metrics of ``model`` on ``test``: one row per cutoff in ``k``.

    train:   items to mask (Interactions or CSR); defaults to what the model was fitted on.
    exclude: more items to mask (e.g. the validation split when evaluating on test).
    users:   evaluate these users only (default: every user with a test item).
    Memory is bounded by one chunk of users x items, never users x items.
    Columns: k, recall, precision, ndcg, mrr, hit, coverage, n_users.
    """
    model._check_fitted()
    shape = (model.n_users_, model.n_items_)
    ks = sorted({check_k(x, shape[1]) for x in (k if isinstance(k, (list, tuple, np.ndarray)) else [k])})
    if not ks:
        raise ValueError(f"cutoffs k must be positive integers, got {k}")
    relevant = _as_csr(test, shape)
    mask = _as_csr(train, shape) if train is not None else model.seen_
    extra = _as_csr(exclude, shape)
    if extra is not None:
        mask = (mask + extra).tocsr()
    if users is None:
        users = np.flatnonzero(np.diff(relevant.indptr))
    users = as_indices(users, shape[0], "user")
    if len(users) == 0:
        raise ValueError("no users with test items to evaluate")
    top = np.empty((len(users), ks[-1]), dtype=np.int64)
    chunks = range(0, len(users), batch_users)
    for lo in tqdm(chunks, desc=f"evaluate {model.name}", disable=not progress, leave=False):
        batch = users[lo:lo + batch_users]
        top[lo:lo + batch_users] = model.recommend(batch, k=ks[-1], filter_seen=False, exclude=mask)[0]
    rel = relevant[users]
    rows = []
    for kk in ks:
        m = ranking_metrics(top, rel, kk)
        rows.append({"k": kk, **m, "coverage": coverage(top[:, :kk], shape[1]),
                     "n_users": int((np.diff(rel.indptr) > 0).sum())})
    return pd.DataFrame(rows, columns=["k", *METRICS, "coverage", "n_users"])
