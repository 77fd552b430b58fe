"""Splits and filters, checked against plain-Python references."""
import collections

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import (Interactions, compact, filter_rating, k_core, leave_one_out,
                             random_split, split, synthetic_shop, temporal_split)
from recsys_lab.data.splits import split_counts


@pytest.fixture(scope="module")
def shop():
    return synthetic_shop(n_users=300, n_items=120, n_events=6000, seed=7)


@pytest.fixture(scope="module")
def rated():
    """Explicit ratings with repeated pairs and tied timestamps."""
    rng = np.random.default_rng(1)
    n = 3000
    return Interactions(rng.integers(0, 80, n), rng.integers(0, 60, n),
                        np.array([f"u{i:02d}" for i in range(80)]), np.arange(100, 160),
                        rating=rng.integers(1, 6, n), timestamp=rng.integers(0, 500, n),
                        item_info=pd.DataFrame({"title": [f"t{i}" for i in range(60)]}),
                        name="rated")


def pairs(d: Interactions) -> list:
    return list(zip(d.user.tolist(), d.item.tolist()))


def recbole_counts(tot, ratios):
    """RecBole's ``_calcu_split_ids`` (data/dataset/dataset.py), as counts."""
    cnt = [int(ratios[i] * tot) for i in range(len(ratios))]
    cnt[0] = tot - sum(cnt[1:])
    for i in range(1, len(ratios)):
        if cnt[0] <= 1:
            break
        if 0 < ratios[-i] * tot < 1:
            cnt[-i] += 1
            cnt[0] -= 1
    return cnt


def earliest_events(d: Interactions) -> dict:
    best = {}
    for e, (u, i, t) in enumerate(zip(d.user.tolist(), d.item.tolist(), d.timestamp.tolist())):
        if (u, i) not in best or (t, e) < best[(u, i)]:
            best[(u, i)] = (t, e)
    return best


# ---- random ------------------------------------------------------------------------------------
@pytest.mark.parametrize("ratios", [(0.8, 0.1, 0.1), (0.7, 0.3), (0.6, 0.2, 0.2)])
def test_random_split_invariants(shop, ratios):
    parts = random_split(shop, ratios, seed=3)
    assert len(parts) == len(ratios)
    for p in parts:                                                    # one id space
        assert (p.n_users, p.n_items) == (shop.n_users, shop.n_items)
        assert p.user_ids is shop.user_ids or np.array_equal(p.user_ids, shop.user_ids)
    sets = [set(pairs(p)) for p in parts]
    assert sum(len(s) for s in sets) == sum(len(p) for p in parts)     # no pair twice in a part
    for a in range(len(sets)):
        for b in range(a + 1, len(sets)):
            assert not sets[a] & sets[b]
    assert set().union(*sets) == set(pairs(shop))                      # union = the unique pairs
    first = earliest_events(shop)                                      # each pair's earliest event
    for p in parts:
        for u, i, t in zip(p.user.tolist(), p.item.tolist(), p.timestamp.tolist()):
            assert first[(u, i)][0] == t
    per_user = [collections.Counter(p.user.tolist()) for p in parts]
    n_pairs = collections.Counter(u for u, _ in first)
    for u, n in n_pairs.items():
        got = [c[u] for c in per_user]
        assert got == recbole_counts(n, ratios)
        assert got[0] >= 1
        assert all(abs(g - r * n) < 1 + 1e-9 for g, r in zip(got[1:], ratios[1:]))


def test_random_split_seeded(shop):
    a = random_split(shop, seed=5)
    b = random_split(shop, seed=5)
    c = random_split(shop, seed=6)
    for x, y in zip(a, b):
        assert np.array_equal(x.user, y.user) and np.array_equal(x.item, y.item)
    assert set(pairs(a[2])) != set(pairs(c[2]))


def test_random_split_events(rated):
    parts = random_split(rated, (0.5, 0.5), seed=0, unique=False)
    merged = collections.Counter(pairs(parts[0]) + pairs(parts[1]))
    assert merged == collections.Counter(pairs(rated))
    counts = [collections.Counter(p.user.tolist()) for p in parts]
    for u, n in collections.Counter(rated.user.tolist()).items():
        assert [c[u] for c in counts] == recbole_counts(n, (0.5, 0.5))


def test_split_counts_matches_recbole():
    n = np.arange(0, 200)
    for ratios in [(0.8, 0.1, 0.1), (0.7, 0.2, 0.1), (0.9, 0.1), (0.6, 0.2, 0.2)]:
        assert split_counts(n, ratios).tolist() == [recbole_counts(int(t), ratios) for t in n]


@pytest.mark.parametrize("ratios", [(0.5, 0.6), (1.0,), (-0.1, 0.6, 0.5), (0.8, 0.2, 0.0)])
def test_random_split_bad_ratios(shop, ratios):
    with pytest.raises(ValueError, match="ratios"):
        random_split(shop, ratios)


# ---- leave-one-out -------------------------------------------------------------------------------
def _loo_reference(d: Interactions, valid=True):
    """Per user: events sorted by (timestamp, event index) with a Python sort."""
    by_user = collections.defaultdict(list)
    for e, (u, t) in enumerate(zip(d.user.tolist(), d.timestamp.tolist())):
        by_user[u].append((t, e))
    test, val = set(), set()
    for u, ev in by_user.items():
        ev.sort()
        if len(ev) >= (3 if valid else 2):
            test.add(ev[-1][1])
            if valid:
                val.add(ev[-2][1])
    return test, val


def _event_ids(part: Interactions, d: Interactions) -> set:
    """Map a part's events back to event indices of ``d`` via (user, item, time, rating)."""
    key = collections.defaultdict(list)
    for e, k in enumerate(zip(d.user.tolist(), d.item.tolist(), d.timestamp.tolist(), d.rating.tolist())):
        key[k].append(e)
    out = set()
    for k in zip(part.user.tolist(), part.item.tolist(), part.timestamp.tolist(), part.rating.tolist()):
        out.add(key[k].pop(0))
    return out


def test_leave_one_out_latest(rated):
    train, valid, test = leave_one_out(rated)
    ref_test, ref_val = _loo_reference(rated)
    # ties in (user, item, time, rating) are interchangeable, so compare via the sorted keys
    assert sorted(zip(test.user, test.timestamp)) == sorted((rated.user[e], rated.timestamp[e]) for e in ref_test)
    assert sorted(zip(valid.user, valid.timestamp)) == sorted((rated.user[e], rated.timestamp[e]) for e in ref_val)
    assert len(train) + len(valid) + len(test) == len(rated)
    assert collections.Counter(pairs(train) + pairs(valid) + pairs(test)) == collections.Counter(pairs(rated))
    assert np.bincount(test.user, minlength=rated.n_users).max() == 1
    # every train event of a user is no later than its valid and test events
    last_train = np.full(rated.n_users, -1)
    np.maximum.at(last_train, train.user, train.timestamp)
    assert np.all(last_train[valid.user] <= valid.timestamp)
    assert np.all(valid.timestamp[np.argsort(valid.user)] <= test.timestamp[np.argsort(test.user)])


def test_leave_one_out_exact_with_unique_events():
    """Distinct timestamps: the held-out events are exactly the reference's."""
    rng = np.random.default_rng(4)
    n = 500
    d = Interactions(rng.integers(0, 60, n), rng.integers(0, 40, n), np.arange(60), np.arange(40),
                     rating=np.arange(n), timestamp=rng.permutation(n))
    for valid in (True, False):
        parts = leave_one_out(d, valid=valid)
        ref_test, ref_val = _loo_reference(d, valid)
        assert _event_ids(parts[-1], d) == ref_test
        if valid:
            assert _event_ids(parts[1], d) == ref_val
        few = np.bincount(d.user, minlength=60) < (3 if valid else 2)   # keep all in train
        assert np.array_equal(np.bincount(parts[0].user, minlength=60)[few],
                              np.bincount(d.user, minlength=60)[few])


def test_leave_one_out_event_order_and_unique():
    # no timestamps: event order decides; (user 0: items 1, 2, 1, 3) -> test 3, valid 1
    d = Interactions([0, 0, 0, 0, 1, 1], [1, 2, 1, 3, 0, 2], np.arange(2), np.arange(4))
    train, valid, test = leave_one_out(d)
    assert pairs(test) == [(0, 3)] and pairs(valid) == [(0, 1)] and sorted(pairs(train)) == [(0, 1), (0, 2), (1, 0), (1, 2)]
    train, valid, test = leave_one_out(d, unique=True)                 # the repeat of item 1 goes
    assert pairs(test) == [(0, 3)] and pairs(valid) == [(0, 2)] and sorted(pairs(train)) == [(0, 1), (1, 0), (1, 2)]


# ---- temporal ------------------------------------------------------------------------------------
def test_temporal_split(shop):
    train, test = temporal_split(shop, 0.8)
    cut = np.quantile(shop.timestamp, 0.8, method="higher")
    assert train.timestamp.max() < cut <= test.timestamp.min()
    assert len(train) + len(test) == len(shop)
    assert abs(len(train) / len(shop) - 0.8) < 0.01
    a, b, c = split(shop, "temporal", cut=(0.7, 0.9))
    assert a.timestamp.max() < b.timestamp.min() and b.timestamp.max() < c.timestamp.min()
    assert len(a) + len(b) + len(c) == len(shop)
    t = int(np.median(shop.timestamp))
    tr, te = temporal_split(shop, t)
    assert tr.timestamp.max() < t <= te.timestamp.min()
    date = pd.Timestamp(t, unit="s").isoformat()
    tr2, _ = temporal_split(shop, date)
    assert len(tr2) == len(tr)
    with pytest.raises(ValueError, match="increase"):
        temporal_split(shop, (0.9, 0.5))
    with pytest.raises(ValueError, match="inside"):
        temporal_split(shop, 1.0)


def test_temporal_split_without_timestamps():
    d = Interactions(np.zeros(10), np.arange(10), np.arange(1), np.arange(10))
    train, test = temporal_split(d, 0.7)
    assert train.item.tolist() == list(range(7)) and test.item.tolist() == [7, 8, 9]
    with pytest.raises(ValueError, match="timestamps"):
        temporal_split(d, 5)


def test_split_dispatch(shop):
    a = split(shop, "random", seed=1)
    b = random_split(shop, seed=1)
    assert all(np.array_equal(x.item, y.item) for x, y in zip(a, b))
    assert len(split(shop, "loo")) == 3
    with pytest.raises(ValueError, match="loo") as e:
        split(shop, "kfold")
    assert "kfold" in str(e.value) and "temporal" in str(e.value)


# ---- filters -------------------------------------------------------------------------------------
def test_filter_rating(rated):
    out = filter_rating(rated, 3)
    assert out.rating is None and (out.n_users, out.n_items) == (rated.n_users, rated.n_items)
    keep = [(u, i, t) for u, i, t, r in zip(rated.user.tolist(), rated.item.tolist(),
                                            rated.timestamp.tolist(), rated.rating.tolist()) if r >= 3]
    assert list(zip(out.user.tolist(), out.item.tolist(), out.timestamp.tolist())) == keep
    small = filter_rating(rated, 5, compact_ids=True)
    assert small.user_counts().min() >= 1 and small.item_counts().min() >= 1
    with pytest.raises(ValueError, match="no ratings"):
        filter_rating(filter_rating(rated, 3), 3)


def _kcore_reference(triples, uk, ik):
    rows = list(triples)
    while True:
        uc = collections.Counter(u for u, _ in rows)
        ic = collections.Counter(i for _, i in rows)
        new = [(u, i) for u, i in rows if uc[u] >= uk and ic[i] >= ik]
        if len(new) == len(rows):
            return new
        rows = new


@pytest.mark.parametrize("uk, ik", [(10, 10), (20, 5), (3, 30)])
def test_k_core(shop, uk, ik):
    core = k_core(shop, uk, ik)
    assert core.user_counts().min() >= uk and core.item_counts().min() >= ik
    again = k_core(core, uk, ik)                                       # a fixed point
    assert np.array_equal(again.user, core.user) and np.array_equal(again.item, core.item)
    raw = list(zip(shop.user_ids[shop.user].tolist(), shop.item_ids[shop.item].tolist()))
    ref = _kcore_reference(raw, uk, ik)
    assert list(zip(core.user_ids[core.user].tolist(), core.item_ids[core.item].tolist())) == ref
    assert core.n_users == len({u for u, _ in ref}) and core.n_items == len({i for _, i in ref})
    # item_info follows the items
    titles = shop.item_info.set_index(shop.item_ids)["title"]
    assert core.item_info["title"].tolist() == titles.loc[core.item_ids].tolist()
    assert np.all(np.diff(core.user_ids) > 0) and np.all(np.diff(core.item_ids) > 0)


def test_k_core_distinct(rated):
    core = k_core(rated, 25, 25, distinct=True)
    m = core.to_csr()
    assert np.diff(m.indptr).min() >= 25 and np.bincount(m.indices, minlength=core.n_items).min() >= 25
    assert len(k_core(core, 25, 25, distinct=True)) == len(core)
    with pytest.raises(ValueError, match="nothing left"):
        k_core(rated, 10_000, 1)


def test_compact_keeps_raw_ids(rated):
    sub = rated.subset(np.isin(rated.user, [3, 50]) & (rated.item < 10))
    c = compact(sub)
    assert c.n_users == 2 and list(c.user_ids) == ["u03", "u50"]
    assert np.array_equal(c.user_ids[c.user], sub.user_ids[sub.user])
    assert np.array_equal(c.item_ids[c.item], sub.item_ids[sub.item])
    assert c.item_info["title"].tolist() == [f"t{i}" for i in np.unique(sub.item)]


# ---- user samples ------------------------------------------------------------------------------
def test_sample_users_keeps_the_same_seeded_users_in_every_split(shop):
    from recsys_lab.data import sample_users

    parts = random_split(shop, (0.8, 0.1, 0.1), seed=0)
    small = sample_users(parts, 50, seed=3)
    keep = set(np.random.default_rng(3).choice(shop.n_users, 50, replace=False).tolist())
    for whole, part in zip(parts, small):
        assert part.n_users == whole.n_users and part.n_items == whole.n_items  # ids unchanged
        assert set(part.user.tolist()) <= keep
        assert sorted(pairs(part)) == sorted(p for p in pairs(whole) if p[0] in keep)
    assert all(len(a) == len(b) for a, b in zip(sample_users(parts, 10**6), parts)), "all users"
    with pytest.raises(ValueError, match="n_users must be a positive integer, got 0"):
        sample_users(parts, 0)
    with pytest.raises(ValueError, match="do not share one id space"):
        sample_users([parts[0], compact(parts[1])], 10)
