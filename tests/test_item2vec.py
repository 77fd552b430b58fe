"""Item2Vec: basket pairs against a brute-force loop, the SGNS loss by hand, history scoring."""
import itertools

import numpy as np
import pytest

from recsys_lab.data import Interactions
from recsys_lab.models.item2vec import Item2Vec, basket_pairs

from .contract import RecommenderContract

SMALL = dict(embedding_size=8, epochs=5, batch_size=256, learning_rate=0.02, device="cpu", num_threads=1)


def test_basket_pairs_equal_brute_force():
    rng = np.random.default_rng(0)
    baskets, items = rng.integers(0, 6, 40), rng.integers(0, 9, 40)
    t, c = basket_pairs(baskets, items, max_basket=100, rng=rng)
    ref = []                                   # one pair per co-occurrence in a basket
    for b in np.unique(baskets):
        ref += itertools.permutations(set(items[baskets == b].tolist()), 2)
    assert sorted(zip(t.tolist(), c.tolist())) == sorted(ref)


def test_long_baskets_are_capped():
    t, _ = basket_pairs(np.zeros(30, int), np.arange(30), max_basket=5, rng=np.random.default_rng(0))
    assert len(t) == 5 * 4


@pytest.fixture(scope="module")
def shop():
    # sessions: {0,1,2} bought together again and again, {3,4} likewise; users mix sessions
    user = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    item = [0, 1, 2, 3, 4, 0, 1, 2, 0, 1, 2, 3, 4]
    session = [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4]
    return Interactions(user, item, np.arange(5), np.arange(6), session=session)


def test_sgns_loss_by_hand(shop):
    m = Item2Vec(**SMALL).fit(shop)
    W = m.module_.target.weight.detach().numpy().astype(np.float64)
    C = m.module_.context.weight.detach().numpy().astype(np.float64)
    t, c, n = np.array([0, 3]), np.array([1, 4]), np.array([[5, 2], [5, 0]])
    sig = lambda z: 1 / (1 + np.exp(-z))
    ref = np.mean([-np.log(sig(W[a] @ C[b])) - sum(np.log(sig(-W[a] @ C[x])) for x in ns)
                   for a, b, ns in zip(t, c, n)])
    np.testing.assert_allclose(m.compute_loss(m.module_, m.to_tensors(t, c, n)).item(), ref, rtol=1e-5)


def test_users_are_the_mean_of_normalised_history(shop):
    m = Item2Vec(**SMALL).fit(shop)
    W = m.module_.target.weight.detach().numpy()
    Wn = W / np.linalg.norm(W, axis=1, keepdims=True)
    np.testing.assert_allclose(m.user_vectors([1])[0], Wn[[3, 4]].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.score(np.array([1])), Wn[[3, 4]].mean(0, keepdims=True) @ Wn.T, rtol=1e-5, atol=1e-6)


def test_co_purchased_items_are_similar(shop):
    m = Item2Vec(**{**SMALL, "epochs": 60, "n_negatives": 2}).fit(shop)
    top, sims = m.similar_items(0, k=2)
    assert set(top.tolist()) == {1, 2} and (np.diff(sims) <= 0).all()
    with pytest.raises(IndexError, match="unknown item"):
        m.similar_items(99)


def test_bad_config_is_named(shop):
    with pytest.raises(ValueError, match="n_negatives"):
        Item2Vec(n_negatives=0).fit(shop)
    lonely = Interactions([0, 1], [0, 1], np.arange(2), np.arange(2), session=[0, 1])
    with pytest.raises(ValueError, match="baskets"):
        Item2Vec(**SMALL).fit(lonely)


class TestItem2Vec(RecommenderContract):
    planted_min_hit = 0.75          # the block-finding ceiling is 5/6 (see test_torch_models.py)

    def make_model(self):
        return Item2Vec(**SMALL)
