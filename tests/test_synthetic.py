"""The synthetic shop generator and the planted-structure data set."""
import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import Interactions, planted_interactions, synthetic_shop
from recsys_lab.models.base import topk


def _same(a: Interactions, b: Interactions) -> bool:
    return all(np.array_equal(getattr(a, f), getattr(b, f))
               for f in ("user", "item", "timestamp", "session")) and a.item_info.equals(b.item_info)


@pytest.fixture(scope="module")
def shop():
    return synthetic_shop(seed=0)


def test_shape_and_determinism(shop):
    assert (shop.n_users, shop.n_items, len(shop)) == (1000, 500, 20_000)
    assert shop.rating is None and shop.name == "synthetic"
    assert shop.user_counts().min() >= 1                             # every user shops
    assert _same(shop, synthetic_shop(seed=0))
    other = synthetic_shop(seed=1)
    assert not np.array_equal(shop.item, other.item)
    big = synthetic_shop(n_users=100, n_items=50, n_events=1000, scale=3)
    assert (big.n_users, big.n_items, len(big)) == (300, 150, 3000)


def test_item_info(shop):
    info = shop.item_info
    assert list(info.columns) == ["title", "category", "price"] and len(info) == shop.n_items
    assert (info["price"] > 0).all()
    assert set(info["category"]) == set(range(20))                   # no empty category
    for title, cat in zip(info["title"], info["category"]):
        c, j = title.removeprefix("Category ").split(" item ")
        assert int(c) == cat
    # titles number the items of a category 0..size-1
    j = info["title"].str.split(" item ").str[1].astype(int)
    assert (j.groupby(info["category"]).apply(lambda s: sorted(s) == list(range(len(s))))).all()


def test_power_law_popularity(shop):
    counts = np.sort(shop.item_counts())[::-1]
    top = counts[: shop.n_items // 10].sum() / counts.sum()
    assert top > 0.4                                                   # uniform would give 0.1
    # log-log rank/frequency slope of the head is clearly negative (Zipf-like)
    head = counts[:100]
    slope = np.polyfit(np.log(np.arange(1, 101)), np.log(head), 1)[0]
    assert slope < -0.5


def test_users_focus_on_few_categories(shop):
    cat = shop.item_info["category"].to_numpy()[shop.item]
    df = pd.DataFrame({"user": shop.user, "cat": cat})
    active = df.groupby("user").filter(lambda g: len(g) >= 20)
    share = active.groupby("user")["cat"].apply(lambda c: c.value_counts().iloc[:3].sum() / len(c))
    assert share.mean() > 0.8                                         # random choice would be ~0.3
    # sessions stay in one user and one category
    s = pd.DataFrame({"session": shop.session, "user": shop.user, "cat": cat})
    assert (s.groupby("session")[["user", "cat"]].nunique() == 1).all().all()


def test_time_order(shop):
    assert np.all(np.diff(shop.timestamp) >= 0)                        # the log is in time order
    order = np.lexsort((np.arange(len(shop)), shop.user))
    same_user = np.diff(shop.user[order]) == 0
    assert np.all(np.diff(shop.timestamp[order])[same_user] > 0)      # strictly increasing per user
    sess_of_user = shop.session[order]
    assert np.all(np.diff(sess_of_user)[same_user] >= 0)               # sessions follow in time
    start = pd.Timestamp("2024-01-01").timestamp()
    assert start <= shop.timestamp.min() and shop.timestamp.max() < start + 100 * 86_400


def test_one_million_events():
    big = synthetic_shop(scale=50, seed=2)
    assert (len(big), big.n_users, big.n_items) == (1_000_000, 50_000, 25_000)
    assert np.all(np.diff(big.timestamp) >= 0)
    assert big.item.max() < big.n_items and big.user.max() < big.n_users


def test_bad_options():
    with pytest.raises(ValueError, match="focus"):
        synthetic_shop(focus=1.5)


# ---- planted -------------------------------------------------------------------------------------
def test_planted_structure():
    train, test = planted_interactions(n_blocks=3, users_per_block=5, items_per_block=6, seen=0.5,
                                       return_test=True)
    assert (train.n_users, train.n_items) == (15, 18) and (test.n_users, test.n_items) == (15, 18)
    assert np.all(train.user // 5 == train.item // 6) and np.all(test.user // 5 == test.item // 6)
    assert np.all(train.user_counts() == 3) and np.all(test.user_counts() == 3)
    both = train.to_csr() + test.to_csr()
    assert both.max() == 1 and both.nnz == 15 * 6                      # disjoint, covers each block
    assert _same(train, planted_interactions(n_blocks=3, users_per_block=5, items_per_block=6))
    assert train.item_info["category"].tolist() == [i // 6 for i in range(18)]


def test_planted_right_answer_is_learnable():
    """An item-item co-occurrence scorer (numpy) recovers exactly the documented answer."""
    train, test = planted_interactions(return_test=True, seed=3)
    x = train.to_csr().toarray()
    scores = x @ (x.T @ x)                                               # [n_users, n_items]
    scores[x > 0] = -np.inf                                              # filter seen
    k = 10 - 5
    top, _ = topk(scores, k)
    truth = test.to_csr().toarray()
    assert all(truth[u, top[u]].all() for u in range(train.n_users))
