"""The Recommender contract suite: one mixin, run against every model and accelerator.

Use it like implicit's test mixin::

    class TestItemKNN(RecommenderContract):
        def make_model(self):
            return ItemKNN(k=20)          # small and fast; seeded if the model is random

Class attributes tune it per model:
    learns_structure  False for baselines that ignore the user (Popularity, Random)
    planted_min_hit   Hit@6 a model must reach on the planted data (default 0.9): the held-out item
                      is one of the user's 6 unseen block items, so a model that learned the
                      blocks reaches 1.0 and one that ignores them about 6/50
    fit_kwargs        extra keyword arguments for fit (e.g. {"valid": ...} is not given here)
"""
from __future__ import annotations

import numpy as np
import pytest

from recsys_lab.data import Interactions
from recsys_lab.eval import evaluate
from recsys_lab.models.base import Recommender


def planted_blocks(n_blocks=4, users_per_block=30, items_per_block=12, n_noise_items=8,
                   per_user=6, seed=0):
    """Users in blocks buy only their block's items: the right answer is known.

    Returns (train, test): each user has ``per_user`` training items and one held-out item,
    all from its own block. A model that learns co-occurrence ranks the block's 6 unseen items
    first, so Hit@6 is 1; noise items are bought by nobody in test.
    """
    rng = np.random.default_rng(seed)
    users, items, test_u, test_i = [], [], [], []
    for b in range(n_blocks):
        block_items = b * items_per_block + np.arange(items_per_block)
        for j in range(users_per_block):
            u = b * users_per_block + j
            chosen = rng.choice(block_items, size=per_user + 1, replace=False)
            users += [u] * per_user
            items += chosen[:per_user].tolist()
            test_u.append(u)
            test_i.append(chosen[-1])
    n_users = n_blocks * users_per_block
    n_items = n_blocks * items_per_block + n_noise_items
    # a little popularity noise: a few users also bought a noise item
    noisy = rng.choice(n_users, size=n_users // 10, replace=False)
    users += noisy.tolist()
    items += (n_blocks * items_per_block + rng.integers(0, n_noise_items, len(noisy))).tolist()
    ids_u, ids_i = np.arange(n_users), np.arange(n_items)
    ts = np.arange(len(users))
    train = Interactions(users, items, ids_u, ids_i, timestamp=ts, name="planted-train")
    test = Interactions(test_u, test_i, ids_u, ids_i, timestamp=len(users) + np.arange(len(test_u)),
                        name="planted-test")
    return train, test


class RecommenderContract:
    learns_structure = True
    planted_min_hit = 0.9
    fit_kwargs: dict = {}

    def make_model(self) -> Recommender:  # pragma: no cover - each subclass provides it
        raise NotImplementedError

    # ---- fixtures -------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        return planted_blocks()

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls, data):
        return cls().make_model().fit(data[0], **cls.fit_kwargs)

    # ---- the contract ---------------------------------------------------------------------
    def test_fit_returns_self(self, data):
        model = self.make_model()
        assert model.fit(data[0], **self.fit_kwargs) is model

    def test_unfitted_model_says_so(self):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().recommend([0], k=3)

    def test_score_shape_and_dtype(self, fitted, data):
        s = fitted.score(np.array([0, 5, 7]))
        assert s.shape == (3, data[0].n_items) and s.dtype == np.float32
        assert not np.isnan(s).any()

    def test_recommend_shapes_order_and_uniqueness(self, fitted):
        items, scores = fitted.recommend(np.arange(10), k=5)
        assert items.shape == scores.shape == (10, 5)
        assert items.dtype == np.int64 and scores.dtype == np.float32
        assert (np.diff(scores, axis=1) <= 0).all(), "scores must be sorted best first"
        assert all(len(set(row)) == 5 for row in items)

    def test_filter_seen(self, fitted, data):
        seen = data[0].to_csr().toarray()
        users = np.arange(data[0].n_users)
        items, _ = fitted.recommend(users, k=5, filter_seen=True)
        assert not np.take_along_axis(seen[users], items, 1).any()

    def test_recommend_agrees_with_score(self, fitted):
        users = np.arange(6)
        items, scores = fitted.recommend(users, k=4, filter_seen=False)
        np.testing.assert_allclose(np.take_along_axis(fitted.score(users), items, 1), scores, rtol=1e-5)

    def test_batch_equals_one_by_one(self, fitted):
        users = np.array([3, 0, 11, 7, 3])
        items, scores = fitted.recommend(users, k=6)
        for r, u in enumerate(users):
            one_items, one_scores = fitted.recommend([u], k=6)
            np.testing.assert_allclose(one_scores[0], scores[r], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(one_items[0], items[r])

    def test_same_seed_same_result(self, fitted, data):
        again = self.make_model().fit(data[0], **self.fit_kwargs)
        users = np.arange(data[0].n_users)
        np.testing.assert_array_equal(again.recommend(users, k=5)[0], fitted.recommend(users, k=5)[0])

    def test_save_load_round_trip(self, fitted, tmp_path):
        path = fitted.save(tmp_path / "model.npz")
        loaded = Recommender.load(path)
        assert type(loaded) is type(fitted)
        assert loaded.get_config() == fitted.get_config()
        users = np.arange(12)
        a, b = fitted.recommend(users, k=5), loaded.recommend(users, k=5)
        np.testing.assert_array_equal(a[0], b[0])
        np.testing.assert_allclose(a[1], b[1], rtol=1e-6)

    def test_bad_requests_fail_clearly(self, fitted, data):
        n_items = data[0].n_items
        with pytest.raises(ValueError, match="positive"):
            fitted.recommend([0], k=0)
        with pytest.raises(ValueError, match="larger than the catalog"):
            fitted.recommend([0], k=n_items + 1)
        with pytest.raises(IndexError, match="unknown user"):
            fitted.recommend([data[0].n_users], k=3)

    def test_planted_structure_is_found(self, fitted, data):
        if not self.learns_structure:
            pytest.skip(f"{type(fitted).__name__} does not learn per-user structure")
        hit = evaluate(fitted, data[1], k=6)["hit"].iloc[0]
        assert hit >= self.planted_min_hit, f"Hit@6 {hit:.3f} on planted blocks"
