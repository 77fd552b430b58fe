"""ANNIndex: exact flat search equals brute force; approximate backends measured by overlap@k."""
from dataclasses import dataclass

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.accel import ANNIndex, overlap_at_k
from recsys_lab.models.base import Popularity, Recommender
from recsys_lab.models.capabilities import MultiVectorModel
from tests.accel_helpers import RandomVectors, random_interactions
from tests.contract import RecommenderContract


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
    with pytest.raises(TypeError, match="embedding model"):      # checked at construction, unfitted
        ANNIndex(Popularity())
    with pytest.raises(ValueError, match="pq_m"):
        ANNIndex(RandomVectors(embedding_size=16).fit(train), backend="ivfpq", pq_m=5)


# ---- multi-vector models: ColBERT's retrieval (search each user vector, merge, re-score) -------
@pytest.fixture(scope="module")
def sequential():
    """A TwoTower (V = 1) and a MaxSim late-interaction model (S = 2 segments x m = 2: V = 4),
    trained on the planted blocks with shuffled histories."""
    from recsys_lab.models.sequential import MultiSegmentLateInteraction, TwoTower
    from tests.test_late_interaction import TINY, shuffled_planted
    train, _ = shuffled_planted()
    return train, {"TwoTower": TwoTower(epochs=4, **TINY).fit(train),
                   "MultiSegmentLateInteraction": MultiSegmentLateInteraction(
                       segments=2, vectors_per_segment=2, interaction="maxsim", epochs=4, **TINY).fit(train)}


def assert_same_ranking(items, scores, ref_items, ref_scores, tol=1e-5):
    """Equal scores (within ``tol``) and equal items wherever the reference has no near-tie."""
    np.testing.assert_allclose(scores, ref_scores, rtol=tol, atol=tol)
    gap = np.abs(np.diff(ref_scores, axis=1))
    clear = np.ones_like(ref_scores, dtype=bool)
    clear[:, 1:] &= gap > tol
    clear[:, :-1] &= gap > tol
    np.testing.assert_array_equal(items[clear], ref_items[clear])


@pytest.mark.parametrize("name", ["TwoTower", "MultiSegmentLateInteraction"])
def test_multi_vector_flat_search_is_exact(sequential, name):
    train, models = sequential
    model = models[name]
    V = model.user_vectors(np.arange(5))
    assert V.ndim == 3 and V.shape[1] == (1 if name == "TwoTower" else 4)      # [n, V, d]
    ann = ANNIndex(model, backend="flat")                 # failed before: "too many values to unpack"
    users = np.arange(train.n_users)
    items, scores = ann.recommend(users, k=10)
    ref_items, ref_scores = model.recommend(users, k=10)
    assert_same_ranking(items, scores, ref_items, ref_scores)
    assert overlap_at_k(items, ref_items) == 1.0
    # the operator on the model's vectors is the model's score, for the full catalog and candidates
    np.testing.assert_allclose(ann.score(users[:9]), model.score(users[:9]), rtol=1e-5, atol=1e-5)
    cand = np.arange(20)[None].repeat(9, 0)
    np.testing.assert_allclose(ann.score(users[:9], items=cand), model.score(users[:9], items=cand),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ["TwoTower", "MultiSegmentLateInteraction"])
def test_multi_vector_hnsw_overlap_is_measured(sequential, name):
    train, models = sequential
    model = models[name]
    users = np.arange(train.n_users)
    exact = model.recommend(users, k=10)[0]
    tight = overlap_at_k(ANNIndex(model, backend="hnsw", M=4, ef_search=4).recommend(users, k=10)[0], exact)
    loose = overlap_at_k(ANNIndex(model, backend="hnsw", M=16, ef_search=64).recommend(users, k=10)[0], exact)
    print(f"{name}: overlap@10 HNSW M=4 ef=4 {tight:.3f}, M=16 ef=64 {loose:.3f}")
    assert 0.5 < tight <= loose and loose >= 0.98


@dataclass(eq=False)
class RandomMultiVectors(Recommender, MultiVectorModel):
    """V = 3 Gaussian vectors per user, some masked out, MaxSim: s(u, i) = max_{k valid} <v_uk, q_i>."""

    seed: int = 0

    def _fit(self, train):
        rng = np.random.default_rng(self.seed)
        self.vectors_ = rng.standard_normal((self.n_users_, 3, 8)).astype(np.float32)
        self.mask_ = rng.random((self.n_users_, 3)) < 0.6
        self.mask_[np.arange(self.n_users_), rng.integers(0, 3, self.n_users_)] = True   # >= 1 valid
        self.items_ = rng.standard_normal((self.n_items_, 8)).astype(np.float32)

    def user_vectors(self, users=None):
        return self.vectors_ if users is None else self.vectors_[self._check_users(users)]

    def user_vector_mask(self, users=None):
        return self.mask_ if users is None else self.mask_[self._check_users(users)]

    def item_vectors(self):
        return self.items_

    def late_interaction(self, vectors, mask, items):
        e = items if items.ndim == 3 else np.broadcast_to(items, (len(vectors), *items.shape))
        logits = np.einsum("nvd,ncd->nvc", vectors, e)
        return np.where(mask[:, :, None], logits, -np.inf).max(1)

    def _score(self, users):
        return self.late_interaction(self.vectors_[users], self.mask_[users], self.items_)


def test_multi_vector_search_equals_a_maxsim_loop(train):
    """Masked vectors take no part; flat search equals brute-force MaxSim over the valid vectors."""
    model = RandomMultiVectors().fit(train)
    assert (~model.mask_).any()                              # some vectors are masked
    users = np.arange(train.n_users)
    seen = train.to_csr()
    ref = []
    for u in users:                                          # naive loop over valid vectors
        s = np.array([max(float(v @ q) for v, ok in zip(model.vectors_[u], model.mask_[u]) if ok)
                      for q in model.items_])
        s[seen[u].indices] = -np.inf
        ref.append(np.argsort(-s, kind="stable")[:10])
    items, _ = ANNIndex(model, backend="flat").recommend(users, k=10)
    np.testing.assert_array_equal(items, np.array(ref))
    approx = ANNIndex(model, backend="hnsw", M=8, ef_search=16).recommend(users, k=10)[0]
    measured = overlap_at_k(approx, items)
    print(f"RandomMultiVectors (V=3, 300 items): overlap@10 HNSW M=8 ef=16 {measured:.3f}")
    assert 0.5 < measured <= 1.0


class TestANNLateInteraction(RecommenderContract):
    """The contract for ColBERT-style retrieval over a multi-vector model (HNSW, V = 4)."""

    @pytest.fixture(scope="class")
    @classmethod
    def data(cls):
        from tests.test_late_interaction import shuffled_planted
        return shuffled_planted()

    def make_model(self):
        from recsys_lab.models.sequential import MultiSegmentLateInteraction
        from tests.test_late_interaction import TINY
        return ANNIndex(MultiSegmentLateInteraction(segments=2, vectors_per_segment=2, epochs=8,
                                                    **{**TINY, "samples_per_user": 6}),
                        backend="hnsw", M=8, ef_search=16)



def _count_exact_calls(ann, monkeypatch):
    calls = []
    score = type(ann)._score
    monkeypatch.setattr(type(ann), "_score", lambda self, users: calls.append(len(users)) or score(self, users))
    return calls


def test_single_user_requests_are_served_by_the_index_not_by_an_exact_finish(train, monkeypatch):
    # the index is asked for 2k + (masked) items, so the k-th kept item seldom ends the searched list;
    # with k + (masked) it ended it on every request whose masked items were all found (PureSVD's
    # seen items score high): each request then fell back to scoring the whole catalog
    from recsys_lab.models.svd import PureSVD
    ann = ANNIndex(PureSVD(embedding_size=64).fit(train), backend="hnsw", ef_search=64)
    calls = _count_exact_calls(ann, monkeypatch)
    for u in range(train.n_users):
        ann.recommend([u], k=10)
    assert len(calls) <= train.n_users // 10


def test_rows_finished_exactly_are_scored_in_bounded_chunks(vectors, train, monkeypatch):
    import recsys_lab.models.base as base
    monkeypatch.setattr(base, "_CHUNK_CELLS", 3 * train.n_items)    # 3 users per exact chunk
    ann = ANNIndex(vectors, backend="ivf", nlist=8, nprobe=1)       # one cell: rows left short
    calls = _count_exact_calls(ann, monkeypatch)
    users = np.arange(train.n_users)
    items, _ = ann.recommend(users, k=train.n_items // 2)
    assert calls and max(calls) <= 3                                 # never users x items at once
    np.testing.assert_array_equal(items, ANNIndex(vectors, backend="flat").recommend(users, k=train.n_items // 2)[0])


@dataclass(eq=False)
class SkewedVectors(RandomVectors):
    """RandomVectors with Zipf item norms (q_i scaled by 1 / rank), as MF gives popular items."""

    def _fit(self, train):
        super()._fit(train)
        rank = np.random.default_rng(self.seed + 1).permutation(self.n_items_) + 1.0
        self.items_table_ = (self.items_table_ / rank[:, None]).astype(np.float32)


def test_norm_ranged_head_certifies_rows_by_cauchy_schwarz_and_those_are_exact(train, monkeypatch):
    model, k, H = SkewedVectors().fit(train), 5, 40
    ann = ANNIndex(model, backend="hnsw", M=4, ef_search=1, exact_head=H)   # a poor index on purpose
    searched = []
    search = ANNIndex.search
    monkeypatch.setattr(ANNIndex, "search", lambda self, v, d: searched.append(len(v)) or search(self, v, d))
    users = np.arange(train.n_users)
    items, _ = ann.recommend(users, k=k)
    ref = brute_force(model, users, k, ann.seen_)
    # the certificate, recomputed here: the k-th unseen item of the H largest norms against
    # ||u|| times the (H+1)-th largest norm
    U, V = model.user_vectors(users), model.item_vectors()
    norm = np.linalg.norm(V, axis=1)
    head = np.argsort(-norm, kind="stable")[:H]
    certified = []
    for u in users:
        s = V[head] @ U[u]
        s[np.isin(head, ann.seen_[u].indices)] = -np.inf
        certified.append(np.sort(s)[-k] > np.linalg.norm(U[u]) * np.sort(norm)[-H - 1] * (1 + 1e-5))
    certified = np.array(certified)
    assert 0.3 < certified.mean() < 1.0                   # both kinds of rows occur
    np.testing.assert_array_equal(items[certified], ref[certified])
    assert sum(searched) == (~certified).sum() == ann.tail_searches_    # only those searched
    plain = ANNIndex(model, backend="hnsw", M=4, ef_search=1).recommend(users, k=k)[0]
    assert overlap_at_k(items, ref) > overlap_at_k(plain, ref)


def test_norm_ranged_head_over_the_whole_catalog_is_exact(vectors, train):
    users = np.arange(train.n_users)
    ann = ANNIndex(vectors, backend="hnsw", M=4, ef_search=1, exact_head=train.n_items)
    np.testing.assert_array_equal(ann.recommend(users, k=7)[0], brute_force(vectors, users, 7, ann.seen_))


def test_norm_ranged_head_masks_seen_and_excluded_items_of_each_row(vectors, train):
    # both masks at once, on a batch that repeats and reorders users: the keys read from the CSR
    # rows must land on the right batch row
    extra = sp.random(train.n_users, train.n_items, density=0.05, format="csr",
                      random_state=np.random.default_rng(2))
    users = np.array([5, 3, 5, 0, train.n_users - 1, 3])
    ann = ANNIndex(vectors, backend="hnsw", M=4, ef_search=1, exact_head=train.n_items)
    items, _ = ann.recommend(users, k=9, exclude=extra)
    np.testing.assert_array_equal(items, brute_force(vectors, users, 9, (ann.seen_ + extra).tocsr()))


class _CountingIndex:
    """A faiss index proxy that counts ``reconstruct_n`` (whole-catalog decodes)."""

    def __init__(self, index):
        self.index, self.decodes = index, 0

    def reconstruct_n(self, *args):
        self.decodes += 1
        return self.index.reconstruct_n(*args)

    def __getattr__(self, name):
        return getattr(self.index, name)


def test_exact_finish_decodes_the_catalog_once_per_call_not_per_chunk(vectors, train, monkeypatch):
    import recsys_lab.models.base as base
    monkeypatch.setattr(base, "_CHUNK_CELLS", train.n_items)         # one user per exact chunk
    ann = ANNIndex(vectors, backend="ivfpq", nlist=8, nprobe=1, pq_m=4)
    calls = _count_exact_calls(ann, monkeypatch)
    ann.index_ = _CountingIndex(ann.index_)
    items, scores = ann.recommend(np.arange(train.n_users), k=train.n_items // 2)
    assert len(calls) > 1 and ann.index_.decodes == 1                  # many chunks, one decode
    ref = ANNIndex(vectors, backend="flat").recommend(np.arange(train.n_users), k=train.n_items // 2)[0]
    assert overlap_at_k(items, ref) > 0.5


def test_norm_ranged_head_needs_a_valid_size_and_an_embedding_model(vectors, train):
    with pytest.raises(ValueError, match="exact_head must be >= 0"):
        ANNIndex(vectors, backend="hnsw", exact_head=-1)
    with pytest.raises(ValueError, match="needs an embedding model"):
        ANNIndex(RandomMultiVectors().fit(train), backend="flat", exact_head=10)
