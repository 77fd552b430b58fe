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

What it checks: shapes, dtypes, best-first order, filter_seen, recommend agrees with score,
batching equals one-by-one, same seed same result, save/load round trip (and a clear error before
fit), the planted answer; the contract's arguments (``valid=``, candidate ``items=`` for score and
recommend, ``update``/``extend``, explicit -1 padding, users without history) and one validation
of bad arguments (k, users, exclude, update's indices).
"""
from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.data import Interactions
from recsys_lab.eval import evaluate
from recsys_lab.models.base import Recommender


def planted_blocks(n_blocks=4, users_per_block=30, items_per_block=12, n_noise_items=8,
                   per_user=6, seed=0, n_empty_users=0):
    """Users in blocks buy only their block's items: the right answer is known.

    Returns (train, test): each user has ``per_user`` training items and one held-out item,
    all from its own block. A model that learns co-occurrence ranks the block's 6 unseen items
    first, so Hit@6 is 1; noise items are bought by nobody in test. ``n_empty_users`` more user
    ids (the last ones) have no event at all: users without history.
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
    ids_u, ids_i = np.arange(n_users + n_empty_users), np.arange(n_items)
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

    def test_fit_with_valid_and_users_without_history(self):
        """fit(train, valid=...) for every model; users with no event get a full, unseen list."""
        train, test = planted_blocks(n_empty_users=2)
        model = self.make_model()
        assert model.fit(train, valid=test, **self.fit_kwargs) is model
        empty = np.array([train.n_users - 2, train.n_users - 1])
        assert train.to_csr()[empty].nnz == 0
        items, scores = model.recommend(empty, k=5)
        assert items.shape == (2, 5) and (items >= 0).all() and np.isfinite(scores).all()
        assert not np.isnan(model.score(empty)).any()

    def test_bad_valid_is_refused_before_fitting(self, data):
        other, _ = planted_blocks(n_blocks=2)                    # another id space
        with pytest.raises(TypeError, match="valid must be Interactions"):
            self.make_model().fit(data[0], valid="nope")
        with pytest.raises(ValueError, match="share one id space"):
            self.make_model().fit(data[0], valid=other)

    def test_unfitted_model_says_so(self):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().recommend([0], k=3)

    def test_save_before_fit_fails_clearly(self, tmp_path):
        with pytest.raises(RuntimeError, match="not fitted"):
            self.make_model().save(tmp_path / "model.npz")
        assert list(tmp_path.iterdir()) == []                   # nothing written, no temp file

    def test_score_shape_and_dtype(self, fitted, data):
        s = fitted.score(np.array([0, 5, 7]))
        assert s.shape == (3, data[0].n_items) and s.dtype == np.float32
        assert not np.isnan(s).any()

    def test_candidate_scores_equal_the_full_scores(self, fitted, data):
        users = np.array([0, 5, 7, 5])
        rng = np.random.default_rng(0)
        cand = np.stack([rng.choice(data[0].n_items, 9, replace=False) for _ in users])
        full = fitted.score(users)
        got = fitted.score(users, items=cand)
        assert got.shape == (4, 9) and got.dtype == np.float32
        np.testing.assert_allclose(got, np.take_along_axis(full, cand, 1), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fitted.score(users, items=cand[0]), full[:, cand[0]], rtol=1e-5, atol=1e-5)

    def test_recommend_among_candidates(self, fitted, data):
        """Top-k of the candidates only: seen ones masked, the rest by score, explicit padding."""
        seen = data[0].to_csr().toarray() > 0
        users = np.arange(8)
        rng = np.random.default_rng(1)
        cand = np.stack([np.concatenate([rng.choice(np.flatnonzero(seen[u]), 3, replace=False),
                                         rng.choice(np.flatnonzero(~seen[u]), 4, replace=False)])
                         for u in users])                       # 3 seen + 4 unseen per user
        items, scores = fitted.recommend(users, k=6, items=cand)
        ref = fitted.score(users, items=cand)
        for r, u in enumerate(users):                           # the 4 unseen, best first, then -1
            got = items[r, :4]
            assert set(got) == {c for c in cand[r] if not seen[u, c]}
            assert (items[r, 4:] == -1).all() and np.isneginf(scores[r, 4:]).all()
            col = [list(cand[r]).index(c) for c in got]
            np.testing.assert_allclose(scores[r, :4], ref[r, col], rtol=1e-5, atol=1e-5)
            assert (np.diff(scores[r, :4]) <= 0).all()
        with pytest.raises(ValueError, match="larger than the candidate list"):
            fitted.recommend(users, k=8, items=cand)
        with pytest.raises(ValueError, match="repeats"):
            fitted.recommend([0], k=2, items=[3, 3, 4])

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
        # the training events given as ``exclude`` (Interactions or CSR) mask the same items
        np.testing.assert_array_equal(fitted.recommend(users, k=5, filter_seen=False, exclude=data[0])[0], items)

    def test_padding_when_k_exceeds_the_unseen_items(self, fitted, data):
        """k = the catalog: every unseen item once, then item -1 with score -inf, never a seen one."""
        seen = data[0].to_csr().toarray() > 0
        users = np.array([0, 31])
        items, scores = fitted.recommend(users, k=data[0].n_items)
        for r, u in enumerate(users):
            n_unseen = int((~seen[u]).sum())
            assert sorted(items[r, :n_unseen]) == sorted(np.flatnonzero(~seen[u]))
            assert (items[r, n_unseen:] == -1).all() and np.isneginf(scores[r, n_unseen:]).all()

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

    def test_update_and_extend_grow_the_seen_set(self, fitted, data, tmp_path):
        """update(user, item) and extend(events): the item is seen and no longer recommended."""
        model = Recommender.load(fitted.save(tmp_path / "copy.npz"))   # a copy to change
        top = int(model.recommend([3], k=3)[0][0, 0])
        assert model.update(3, top, timestamp=None) is model
        assert model.seen_[3, top] == 1 and top not in model.recommend([3], k=3)[0][0]
        assert fitted.seen_[3, top] == 0                        # the original is untouched
        other = int(model.recommend([4], k=3)[0][0, 0])
        t = data[0]
        events = Interactions([4], [other], t.user_ids, t.item_ids, timestamp=[10**9], name="new")
        assert model.extend(events) is model
        assert model.seen_[4, other] == 1 and other not in model.recommend([4], k=3)[0][0]

    def test_bad_requests_fail_clearly(self, fitted, data):
        n_users, n_items = data[0].n_users, data[0].n_items
        with pytest.raises(ValueError, match="positive"):
            fitted.recommend([0], k=0)
        with pytest.raises(ValueError, match="larger than the catalog"):
            fitted.recommend([0], k=n_items + 1)
        with pytest.raises(IndexError, match="unknown user"):
            fitted.recommend([n_users], k=3)
        for bad in (2.7, 5.0, "5", True, None):                  # never coerced
            with pytest.raises(TypeError, match=f"k must be a positive integer, got {bad!r}"):
                fitted.recommend([0], k=bad)
        with pytest.raises(TypeError, match="integers, got float64 values \\[1.7\\]"):
            fitted.recommend([1.7], k=3)
        with pytest.raises(TypeError, match="integers"):
            fitted.score([True, False])
        with pytest.raises(ValueError, match="exclude has shape"):
            fitted.recommend([0], k=3, exclude=sp.csr_matrix((2, 2)))
        with pytest.raises(TypeError, match="filter_seen"):
            fitted.recommend([0], k=3, filter_seen="no")
        items, scores = fitted.recommend([], k=4)               # no users: empty [0, k] arrays
        assert items.shape == scores.shape == (0, 4) and items.dtype == np.int64
        assert fitted.score([]).shape == (0, n_items)
        with pytest.raises(IndexError, match="unknown item"):
            fitted.update(0, n_items)
        with pytest.raises(TypeError, match="one user"):
            fitted.update([0, 1], 2)
        with pytest.raises(TypeError, match="integers"):
            fitted.update(0.5, 2)
        with pytest.raises(TypeError, match="timestamp"):
            fitted.update(0, 2, timestamp=1.5)
        with pytest.raises(ValueError, match="id space"):
            fitted.extend(planted_blocks(n_blocks=2)[0])

    def test_planted_structure_is_found(self, fitted, data):
        if not self.learns_structure:
            pytest.skip(f"{type(fitted).__name__} does not learn per-user structure")
        hit = evaluate(fitted, data[1], k=6)["hit"].iloc[0]
        assert hit >= self.planted_min_hit, f"Hit@6 {hit:.3f} on planted blocks"
