"""Synthetic data: a scalable shop-session generator and a tiny planted-structure set.

``synthetic_shop`` is what cost-vs-scale curves use: every array is drawn in one vectorised numpy
pass (no Python loop over users or events), so millions of events take seconds.
``planted_interactions`` is the contract suite's sanity set: the right answer is known exactly.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .interactions import Interactions

_DAY = 86_400


def synthetic_shop(n_users: int = 1000, n_items: int = 500, n_events: int = 20_000,
                   n_categories: int = 20, seed: int = 0, scale: float = 1.0,
                   popularity_exponent: float = 1.0, categories_per_user: int = 3,
                   focus: float = 0.9, session_length: float = 4.0, days: int = 90,
                   start: str = "2024-01-01") -> Interactions:
    """Shop sessions with Zipf item popularity and category-focused users.

    Generative story (all draws from ``np.random.default_rng(seed)``):

    - item i has a category (every category non-empty), a popularity weight
      :math:`w_i = r_i^{-a}` for a random rank :math:`r_i \\in 1..n` (Zipf with
      ``a = popularity_exponent``), a price = lognormal category base x lognormal item factor;
    - user u prefers ``categories_per_user`` categories (drawn by popularity, Gumbel top-k) with
      Dirichlet(1) weights, and an activity level ~ lognormal(0, 1); events are split
      multinomially by activity, every user getting at least one when ``n_events >= n_users``;
    - a user's events form sessions of geometric length (mean ``session_length``); a session stays
      in one category, a preferred one with probability ``focus``, else any category by its total
      popularity; each event draws an item of that category with probability proportional to
      :math:`w_i`;
    - sessions start uniformly over ``days`` days from ``start``; events in a session are about a
      minute apart; a user's timestamps strictly increase, and the log is sorted by time.

    ``scale`` multiplies ``n_users``, ``n_items`` and ``n_events`` (the cost-vs-scale knob).
    Returns Interactions (raw ids 0..n-1, no rating, timestamp and session set) with ``item_info``
    columns ``title`` ("Category 3 item 17"), ``category`` and ``price``.
    """
    n_users, n_items, n_events = (max(1, int(round(x * scale))) for x in (n_users, n_items, n_events))
    if not (n_categories >= 1 and categories_per_user >= 1 and 0 <= focus <= 1
            and session_length >= 1 and days > 0 and popularity_exponent >= 0):
        raise ValueError("need n_categories >= 1, categories_per_user >= 1, 0 <= focus <= 1, "
                         "session_length >= 1, days > 0, popularity_exponent >= 0")
    rng = np.random.default_rng(seed)
    n_cat = min(n_categories, n_items)

    # items: category, Zipf weight, price, title
    cat = rng.permutation(np.concatenate([np.arange(n_cat), rng.integers(n_cat, size=n_items - n_cat)]))
    weight = (rng.permutation(n_items) + 1.0) ** -popularity_exponent
    by_cat = np.argsort(cat, kind="stable")                           # items grouped by category
    lo = np.searchsorted(cat[by_cat], np.arange(n_cat))               # [n_cat] first slot
    hi = np.append(lo[1:], n_items)                                   # [n_cat] one past last
    cum = np.cumsum(weight[by_cat])
    cum_lo = np.where(lo > 0, cum[lo - 1], 0.0)
    cat_weight = cum[hi - 1] - cum_lo                                 # [n_cat] total popularity
    base_price = np.exp(rng.normal(np.log(12.0), 0.8, size=n_cat))
    price = np.maximum(0.5, np.round(base_price[cat] * np.exp(rng.normal(0, 0.4, n_items)), 2))
    rank_in_cat = np.empty(n_items, dtype=np.int64)
    rank_in_cat[by_cat] = np.arange(n_items) - lo[cat[by_cat]]
    titles = [f"Category {c} item {j}" for c, j in zip(cat.tolist(), rank_in_cat.tolist())]

    # users: preferred categories (Gumbel top-k by popularity) with Dirichlet weights, activity
    m = min(categories_per_user, n_cat)
    keys = np.log(cat_weight) + rng.gumbel(size=(n_users, n_cat))
    pref = np.argsort(-keys, axis=1)[:, :m]                            # [n_users, m]
    pref_cdf = np.cumsum(rng.dirichlet(np.ones(m), size=n_users), axis=1)   # [n_users, m]
    activity = rng.lognormal(0.0, 1.0, size=n_users)
    activity /= activity.sum()
    floor = 1 if n_events >= n_users else 0
    counts = floor + rng.multinomial(n_events - floor * n_users, activity)
    user = np.repeat(np.arange(n_users), counts)                       # [n_events], user-major
    first = np.concatenate([[0], np.cumsum(counts)[:-1]])[counts > 0]

    # sessions: a new one at each user's first event, else with probability 1 / session_length
    new = rng.random(n_events) < 1.0 / session_length
    new[first] = True
    sess = np.cumsum(new) - 1                                          # [n_events] session id
    n_sess = int(sess[-1]) + 1
    s_user = user[new]                                                 # [n_sess]
    pick = (rng.random(n_sess)[:, None] > pref_cdf[s_user]).sum(1).clip(max=m - 1)
    s_cat = pref[s_user, pick]
    other = rng.random(n_sess) >= focus
    s_cat[other] = np.searchsorted(np.cumsum(cat_weight) / cat_weight.sum(),
                                   rng.random(int(other.sum())), side="right").clip(max=n_cat - 1)

    # items: inverse-CDF draw inside the session's category
    c = s_cat[sess]
    t = cum_lo[c] + rng.random(n_events) * cat_weight[c]
    slot = np.clip(np.searchsorted(cum, t, side="right"), lo[c], hi[c] - 1)
    item = by_cat[slot]

    # time: session starts uniform over the window, sorted within each user; ~1 min between clicks
    s_start = rng.integers(0, days * _DAY, size=n_sess)
    s_start = s_start[np.lexsort((s_start, s_user))]                   # users' sessions in order
    gap = np.where(new, 0, 1 + rng.exponential(60.0, n_events).astype(np.int64))
    within = np.cumsum(gap) - np.cumsum(gap)[new][sess]                # offset inside the session
    ts = s_start[sess] + within
    idx = np.arange(n_events)
    span = np.int64(days * _DAY + 10 * _DAY + n_events)
    ts = np.maximum.accumulate(ts - idx + user * span) - user * span + idx   # strictly increasing per user
    ts = ts + int(pd.Timestamp(start).timestamp())

    order = np.argsort(ts, kind="stable")                              # the log, in time order
    info = pd.DataFrame({"title": titles, "category": cat, "price": price})
    return Interactions(user[order], item[order], np.arange(n_users), np.arange(n_items),
                        timestamp=ts[order], item_info=info, name="synthetic", session=sess[order])


def planted_interactions(n_blocks: int = 4, users_per_block: int = 20, items_per_block: int = 10,
                         seen: float = 0.5, seed: int = 0, return_test: bool = False):
    """Block-diagonal data where the right answer is known.

    User ``u`` is in block ``u // users_per_block``, item ``i`` in block ``i // items_per_block``.
    Each user interacts (once each, in random order, timestamps increasing) with
    ``n_seen = round(seen * items_per_block)`` (clipped to ``1..items_per_block-1``) distinct random
    items of its own block and with nothing else.

    The right answer: for every user, the ``items_per_block - n_seen`` unseen items of its own
    block. A model that learned the structure ranks them above every item of another block, so
    ``recommend(users, k=items_per_block - n_seen, filter_seen=True)`` returns exactly them
    (Recall@k = 1). ``return_test=True`` returns ``(train, test)`` with those items as ``test``,
    in the same id space; ``item_info`` has ``title`` and ``category`` (= block).
    """
    if n_blocks < 1 or users_per_block < 1 or items_per_block < 2:
        raise ValueError("need n_blocks >= 1, users_per_block >= 1 and items_per_block >= 2")
    rng = np.random.default_rng(seed)
    n_users, n_items = n_blocks * users_per_block, n_blocks * items_per_block
    n_seen = int(np.clip(round(seen * items_per_block), 1, items_per_block - 1))
    perm = np.argsort(rng.random((n_users, items_per_block)), axis=1)      # [n_users, items_per_block]
    block_items = perm + (np.arange(n_users) // users_per_block)[:, None] * items_per_block
    users = np.repeat(np.arange(n_users), items_per_block).reshape(n_users, items_per_block)
    ts = 1_700_000_000 + 60 * np.arange(n_users * items_per_block).reshape(n_users, items_per_block)
    info = pd.DataFrame({"title": [f"Block {i // items_per_block} item {i % items_per_block}"
                                   for i in range(n_items)],
                         "category": np.arange(n_items) // items_per_block})
    full = Interactions(users.ravel(), block_items.ravel(), np.arange(n_users), np.arange(n_items),
                        timestamp=ts.ravel(), item_info=info, name="planted")
    in_train = np.zeros((n_users, items_per_block), dtype=bool)
    in_train[:, :n_seen] = True
    train = full.subset(in_train.ravel(), name="planted")
    if not return_test:
        return train
    return train, full.subset(~in_train.ravel(), name="planted/test")
