"""The Recommender contract for PureSVD, every accelerator wrapped around it, and composites."""
import numpy as np
import pytest

from recsys_lab.accel import ANNIndex, Batched, Cached, LowRank, Pruned, Quantized
from recsys_lab.models import EASE, Recommender
from recsys_lab.models.sequential import TwoStage
from recsys_lab.models.svd import PureSVD
from tests.accel_helpers import SVD_RANK, svd
from tests.contract import RecommenderContract, planted_blocks


class TestPureSVD(RecommenderContract):
    def make_model(self):
        return svd()

    def test_matches_numpy_svd(self, fitted, data):
        R = data[0].to_csr().toarray()
        _, _, vt = np.linalg.svd(R)
        Q = vt[:SVD_RANK].T
        np.testing.assert_allclose(fitted.score(np.arange(R.shape[0])), R @ Q @ Q.T, atol=1e-5)
        np.testing.assert_allclose(fitted.singular_values_, np.linalg.svd(R, compute_uv=False)[:SVD_RANK],
                                   rtol=1e-5)

    def test_bad_rank(self, data):
        with pytest.raises(ValueError, match="embedding_size"):
            PureSVD(embedding_size=0).fit(data[0])


class TestANNFlat(RecommenderContract):
    def make_model(self):
        return ANNIndex(svd(), backend="flat")


class TestANNHNSW(RecommenderContract):
    def make_model(self):
        return ANNIndex(svd(), backend="hnsw", M=8, ef_search=32)


class TestANNIVF(RecommenderContract):
    def make_model(self):
        return ANNIndex(svd(), backend="ivf", nlist=2, nprobe=2)   # probing every cell: exact


class TestANNIVFPQ(RecommenderContract):
    planted_min_hit = 0.8   # PQ-decoded scores

    def make_model(self):
        return ANNIndex(svd(), backend="ivfpq", nlist=1, nprobe=1, pq_m=5, pq_bits=4)


class TestQuantizedInt8(RecommenderContract):
    def make_model(self):
        return Quantized(svd(), dtype="int8")


class TestQuantizedFp16(RecommenderContract):
    def make_model(self):
        return Quantized(svd(), dtype="fp16")


class TestPruned(RecommenderContract):
    planted_min_hit = 0.8

    def make_model(self):
        return Pruned(svd(), sparsity=0.3)


class TestLowRank(RecommenderContract):
    planted_min_hit = 0.8   # PureSVD's item table has orthonormal columns: any rank-4 cut is a loss

    def make_model(self):
        return LowRank(svd(), rank=4)


class TestCached(RecommenderContract):
    def make_model(self):
        return Cached(svd(), capacity=16)


class TestBatched(RecommenderContract):
    def make_model(self):
        return Batched(svd(), max_batch=4)


class TestCachedANNQuantized(RecommenderContract):
    """Wrappers compose: a cache over an index over int8 tables."""

    def make_model(self):
        return Cached(ANNIndex(Quantized(svd()), backend="hnsw", M=8), capacity=32)


class TestTwoStage(RecommenderContract):
    """A composite of two models: EASE retrieves 20 candidates, PureSVD re-ranks them."""

    def make_model(self):
        return TwoStage(EASE(reg=10.0), svd(), candidates=20)

    def test_candidates_come_first_in_the_rankers_order(self, fitted):
        users = np.arange(15)
        cand = fitted.candidate_items(users)
        top, _ = fitted.recommend(users, k=20)
        assert all(set(a) == set(b) for a, b in zip(top, cand))
        ref = fitted.ranker.score(users, items=cand)
        np.testing.assert_array_equal(top, np.take_along_axis(cand, np.argsort(-ref, 1, kind="stable"), 1))


class TestBatchedCachedTwoStage(RecommenderContract):
    """Wrappers over a composite: one seen set (the ranker's) for the whole chain."""

    def make_model(self):
        return Batched(Cached(TwoStage(EASE(reg=10.0), svd(), candidates=20), capacity=8), max_batch=3)

    def test_one_seen_set_per_chain(self, fitted):
        assert fitted.seen_set_ is fitted.model.model.ranker.seen_set_


def test_two_stage_needs_its_components():
    with pytest.raises(TypeError, match="retriever must be Recommender"):
        TwoStage("EASE", svd())
    with pytest.raises(ValueError, match="candidates must be a positive"):
        TwoStage(EASE(), svd(), candidates=0)


def test_save_load_keeps_every_layer_fitted(tmp_path):
    train, _ = planted_blocks()
    chain = Cached(ANNIndex(Quantized(svd()), backend="flat"), capacity=4).fit(train)
    back = Recommender.load(chain.save(tmp_path / "chain.npz"))
    assert [type(m).__name__ for m in (back, back.model, back.model.model, back.model.model.model)] == \
        ["Cached", "ANNIndex", "Quantized", "PureSVD"]
    assert all(m.is_fitted() for m in (back, back.model, back.model.model, back.model.model.model))
    np.testing.assert_array_equal(back.recommend(np.arange(9), k=4)[0], chain.recommend(np.arange(9), k=4)[0])


def test_wrapping_a_fitted_model_builds_at_once():
    train, _ = planted_blocks()
    model = svd().fit(train)
    acc = Quantized(model)
    assert acc.n_items_ == train.n_items and acc.seen_ is model.seen_
    assert acc.get_config()["model"] == {"class": "PureSVD", "embedding_size": SVD_RANK, "seed": 0}
    acc.recommend([0], k=3)


def test_wrappers_reject_bad_knobs_and_models():
    with pytest.raises(ValueError, match="backend"):
        ANNIndex(backend="lsh")
    with pytest.raises(ValueError, match="dtype"):
        Quantized(dtype="int4")
    with pytest.raises(ValueError, match="sparsity"):
        Pruned(sparsity=1.0)
    with pytest.raises(ValueError, match="capacity"):
        Cached(capacity=0)
    with pytest.raises(TypeError, match="model must be Recommender"):
        Cached("svd")
