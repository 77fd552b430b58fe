"""ANNIndex: exact flat search equals brute force; approximate backends measured by overlap@k."""
import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.accel import ANNIndex, overlap_at_k
from recsys_lab.models.base import Popularity
from tests.accel_helpers import RandomVectors, random_interactions


@pytest.fixture(scope="module")
def train():
    return random_interactions()


@pytest.fixture(scope="module")
def vectors(train):
    return RandomVectors(embedding_size=16).fit(train)


def brute_force(model, users, k, mask):
    """Reference: numpy loop over users, -inf on masked items, argsort."""
    U, V = model.user_vectors(users), model.item_vectors()
    out = []
    for r, u in enumerate(users):
        s = V @ U[r]
        s[mask[u].indices] = -np.inf
        out.append(np.argsort(-s, kind="stable")[:k])
    return np.array(out)


def test_flat_equals_brute_force(vectors, train):
    ann = ANNIndex(vectors, backend="flat")
    users = np.arange(train.n_users)
    items, scores = ann.recommend(users, k=10)
    np.testing.assert_array_equal(items, brute_force(vectors, users, 10, train.to_csr()))
    np.testing.assert_array_equal(items, vectors.recommend(users, k=10)[0])
    U, V = vectors.user_vectors(users), vectors.item_vectors()
    np.testing.assert_allclose(scores, np.einsum("nd,nkd->nk", U, V[items]), rtol=1e-5, atol=1e-5)


def test_flat_with_exclude_equals_brute_force(vectors, train):
    rng = np.random.default_rng(1)
    extra = sp.random(train.n_users, train.n_items, density=0.05, format="csr", random_state=rng)
    mask = (train.to_csr() + extra).tocsr()
    users = np.arange(50)
    items, _ = ANNIndex(vectors, backend="flat").recommend(users, k=10, filter_seen=False, exclude=mask)
    np.testing.assert_array_equal(items, brute_force(vectors, users, 10, mask))


def test_overlap_at_k_against_set_loop():
    rng = np.random.default_rng(0)
    a = np.stack([rng.permutation(30)[:10] for _ in range(40)])      # top-k lists: no repeats
    e = np.stack([rng.permutation(30)[:10] for _ in range(40)])
    a[:, 0] = -1                                           # padding never counts
    ref = np.mean([len(set(x[x >= 0]) & set(y)) / 10 for x, y in zip(a, e)])
    assert overlap_at_k(a, e) == pytest.approx(ref)
    assert overlap_at_k(e, e) == 1.0
    with pytest.raises(ValueError, match="k="):
        overlap_at_k(a, e, k=11)


@pytest.mark.parametrize("backend,knobs", [("hnsw", {"M": 16, "ef_search": 200}),
                                           ("ivf", {"nlist": 4, "nprobe": 4})])
def test_generous_settings_are_near_exact(vectors, train, backend, knobs):
    users = np.arange(train.n_users)
    exact = vectors.recommend(users, k=10)[0]
    approx = ANNIndex(vectors, backend=backend, **knobs).recommend(users, k=10)[0]
    assert overlap_at_k(approx, exact) >= (1.0 if backend == "ivf" else 0.98)


def test_ivf_probe_knob_trades_recall(vectors, train):
    users = np.arange(train.n_users)
    exact = vectors.recommend(users, k=10)[0]
    ann = ANNIndex(vectors, backend="ivf", nlist=7, nprobe=1)
    low = overlap_at_k(ann.recommend(users, k=10)[0], exact)
    high = overlap_at_k(ann.set_params(nprobe=7).recommend(users, k=10)[0], exact)
    assert low < high == 1.0


def test_ivfpq_scores_are_decoded_inner_products(vectors, train):
    ann = ANNIndex(vectors, backend="ivfpq", nlist=2, nprobe=2, pq_m=4)
    decoded = np.stack([ann.index_.reconstruct(i) for i in range(train.n_items)])
    users = np.arange(8)
    np.testing.assert_allclose(ann.score(users), vectors.user_vectors(users) @ decoded.T, rtol=1e-4, atol=1e-4)


def test_heavy_users_still_get_k_unseen_items(vectors, train):
    """A user who has seen all but 12 items: the index must search deep enough (or finish exactly)."""
    seen = np.ones((train.n_users, train.n_items), dtype=np.float32)
    seen[:, :12] = 0
    model = RandomVectors(embedding_size=16).fit(train)
    model.seen_ = sp.csr_matrix(seen)
    for backend in ("flat", "hnsw", "ivf"):
        items, scores = ANNIndex(model, backend=backend, nlist=4, nprobe=1).recommend([0, 1], k=10)
        assert (items < 12).all() and np.isfinite(scores).all()


def test_needs_an_embedding_model(train):
    with pytest.raises(TypeError, match="embedding model"):
        ANNIndex(Popularity().fit(train))
    with pytest.raises(ValueError, match="pq_m"):
        ANNIndex(RandomVectors(embedding_size=16).fit(train), backend="ivfpq", pq_m=5)
