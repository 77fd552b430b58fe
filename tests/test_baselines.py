"""The contract suite on the baselines, plus what each baseline promises."""
import numpy as np

from recsys_lab.models import Popularity, Random

from .contract import RecommenderContract, planted_blocks


class TestPopularity(RecommenderContract):
    learns_structure = False

    def make_model(self):
        return Popularity()


class TestRandom(RecommenderContract):
    learns_structure = False

    def make_model(self):
        return Random(seed=3)


def test_popularity_ranks_by_training_count():
    train, _ = planted_blocks()
    counts = np.bincount(train.item, minlength=train.n_items)   # every (user, item) is unique here
    items, scores = Popularity().fit(train).recommend([0], k=train.n_items, filter_seen=False)
    np.testing.assert_array_equal(scores[0], counts[items[0]])
    np.testing.assert_array_equal(items[0], np.lexsort((np.arange(train.n_items), -counts)))


def test_random_differs_between_seeds_and_users():
    train, _ = planted_blocks()
    a = Random(seed=0).fit(train).recommend([0, 1], k=10, filter_seen=False)[0]
    b = Random(seed=1).fit(train).recommend([0, 1], k=10, filter_seen=False)[0]
    assert not np.array_equal(a, b) and not np.array_equal(a[0], a[1])
