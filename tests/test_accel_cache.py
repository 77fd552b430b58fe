"""Cached: LRU behaviour against a reference simulation, invalidation (never stale), Zipf stream."""
from collections import OrderedDict

import numpy as np
import pytest

from recsys_lab.accel import ANNIndex, Cached, Quantized, zipf_requests
from recsys_lab.models.seen import csr_insert
from tests.accel_helpers import svd
from tests.contract import planted_blocks


@pytest.fixture()
def model():
    return svd().fit(planted_blocks()[0])


def reference_lru(stream, capacity):
    """Hits of an LRU cache of ``capacity`` keys over ``stream`` (plain OrderedDict loop)."""
    cache, hits = OrderedDict(), 0
    for key in stream:
        if key in cache:
            hits += 1
            cache.move_to_end(key)
        else:
            cache[key] = True
            if len(cache) > capacity:
                cache.popitem(last=False)
    return hits


@pytest.mark.parametrize("capacity", [1, 5, 20])
def test_hit_counts_match_a_reference_lru(model, capacity):
    stream = zipf_requests(model.n_users_, 400, exponent=1.1, seed=3)
    cache = Cached(model, capacity=capacity)
    for u in stream:
        cache.recommend([u], k=5)
    assert cache.results.hits == reference_lru(stream.tolist(), capacity)
    assert cache.results.hits + cache.results.misses == len(stream)
    assert cache.stats()["results_hit_rate"] == pytest.approx(cache.results.hits / len(stream))
    assert len(cache.results.data) == min(capacity, len(set(stream.tolist())))


def test_cached_results_equal_the_model(model):
    cache = Cached(model, capacity=50)
    users = np.array([4, 9, 4, 100, 9, 4])
    for _ in range(2):
        items, scores = cache.recommend(users, k=7)
        ref_items, ref_scores = model.recommend(users, k=7)
        np.testing.assert_array_equal(items, ref_items)
        np.testing.assert_array_equal(scores, ref_scores)
    assert cache.results.hits == 6    # the second pass is all hits
    # keys carry k and filter_seen
    np.testing.assert_array_equal(cache.recommend([4], k=3, filter_seen=False)[0],
                                  model.recommend([4], k=3, filter_seen=False)[0])


def test_never_stale_after_update(model):
    """After update(u, i) the answer is the model's on the grown history, not the cached one."""
    cache = Cached(model, capacity=50)
    u = 7
    first, _ = cache.recommend([u], k=5)
    item = int(first[0, 0])
    R = model.seen_.toarray()
    cache.update(u, item)
    after, scores = cache.recommend([u], k=5)
    assert item not in after[0]
    # independent reference: fold the grown history into PureSVD, r_u Q Q^T, mask, sort
    R[u, item] = 1
    s = R[u] @ model.item_factors_ @ model.item_factors_.T
    s[R[u] > 0] = -np.inf
    np.testing.assert_array_equal(after[0], np.argsort(-s, kind="stable")[:5])
    np.testing.assert_allclose(scores[0], np.sort(s)[::-1][:5], rtol=1e-5)
    # other users' entries survive the invalidation
    cache.recommend([8], k=5)
    cache.update(u, int(after[0, 0]))
    hits = cache.results.hits
    cache.recommend([8], k=5)
    assert cache.results.hits == hits + 1


def test_history_changed_behind_the_cache_is_a_miss(model):
    cache = Cached(model, capacity=50)
    old, _ = cache.recommend([3], k=5)
    model.seen_ = csr_insert(model.seen_, 3, int(old[0, 0]))   # not through cache.update
    new, _ = cache.recommend([3], k=5)
    assert old[0, 0] not in new[0]
    assert cache.results.hits == 0 and cache.results.misses == 2


def test_update_refreshes_every_layer_of_a_chain(model):
    inner = Quantized(model)
    cache = Cached(ANNIndex(inner, backend="flat"), capacity=10)
    top, _ = cache.recommend([5], k=3)
    cache.update(5, int(top[0, 0]))
    np.testing.assert_array_equal(cache.recommend([5], k=3)[0], inner.recommend([5], k=3)[0])
    assert top[0, 0] not in cache.recommend([5], k=3)[0]


def test_user_vector_cache(model):
    cache = Cached(model, capacity=4)
    np.testing.assert_array_equal(cache.user_vectors([1, 2, 1]), model.user_vectors([1, 2, 1]))
    cache.user_vectors([1])
    assert cache.vectors.hits == 1 and cache.vectors.misses == 3    # [1, 2, 1] were all looked up first
    cache.invalidate()
    assert not cache.results.data and not cache.vectors.data


def test_exclude_bypasses_the_cache(model):
    cache = Cached(model, capacity=4)
    cache.recommend([1], k=3, exclude=model.seen_)
    assert cache.results.hits == cache.results.misses == 0


def test_zipf_frequencies_follow_the_law():
    n_users, s = 50, 1.1
    stream = zipf_requests(n_users, 200_000, exponent=s, seed=0, shuffle_ranks=False)
    p = np.arange(1, n_users + 1) ** -s
    freq = np.bincount(stream, minlength=n_users) / len(stream)
    np.testing.assert_allclose(freq, p / p.sum(), atol=3e-3)
    np.testing.assert_array_equal(zipf_requests(50, 100, seed=4), zipf_requests(50, 100, seed=4))
    assert zipf_requests(50, 10_000, seed=1).max() < 50
    with pytest.raises(ValueError, match="n_users"):
        zipf_requests(0, 10)


def test_csr_insert_matches_scipy_assignment():
    import scipy.sparse as sp
    m = sp.random(6, 9, density=0.3, format="csr", random_state=0, dtype=np.float32)
    for row, col in [(0, 0), (2, 8), (5, 3), (3, 4)]:
        ref = m.tolil()
        ref[row, col] = 1.0
        m = csr_insert(m, row, col)
        np.testing.assert_array_equal(m.toarray(), ref.toarray())
        assert m.has_sorted_indices


def test_update_rejects_unknown_ids(model):
    cache = Cached(model)
    with pytest.raises(IndexError, match="unknown user"):
        cache.update(model.n_users_, 0)
    with pytest.raises(IndexError, match="unknown item"):
        cache.update(0, -1)


def reference_fifo(stream, capacity):
    """Hits of a FIFO cache: a hit does not renew the entry (plain list loop)."""
    order, hits = [], 0
    for key in stream:
        if key in order:
            hits += 1
        else:
            order.append(key)
            if len(order) > capacity:
                order.pop(0)
    return hits


def test_lru_and_fifo_are_two_policies():
    """The eviction rule is the class: LRU renews on a hit, FIFO does not (was one class doing both)."""
    from recsys_lab.accel.cache import FIFO, LRU
    lru, fifo = LRU(2), FIFO(2)
    for c in (lru, fifo):
        c.put("a", 1)
        c.put("b", 2)
        assert c.get("a") == 1                            # a hit on the oldest entry ...
        c.put("c", 3)                                     # ... then one eviction
    assert list(lru.data) == ["a", "c"] and list(fifo.data) == ["b", "c"]
    stream = zipf_requests(40, 600, exponent=1.1, seed=5).tolist()
    for cls, ref in ((LRU, reference_lru), (FIFO, reference_fifo)):
        c = cls(7)
        for key in stream:
            if c.get(key) is None:
                c.put(key, True)
        assert c.hits == ref(stream, 7)
    assert reference_lru(stream, 7) != reference_fifo(stream, 7)      # the stream tells them apart
    with pytest.raises(TypeError):
        LRU(3, policy="fifo")                             # no policy flag inside LRU any more
    with pytest.raises(ValueError, match="capacity"):
        FIFO(0)


def test_cached_policy_selects_the_class(model):
    from recsys_lab.accel.cache import FIFO, LRU
    assert type(Cached(model, policy="fifo").results) is FIFO
    assert type(Cached(model).results) is LRU
    with pytest.raises(ValueError, match="policy"):
        Cached(model, policy="random")
