"""The Recommender contract for PureSVD and every accelerator wrapped around it."""
import numpy as np
import pytest

from recsys_lab.accel import ANNIndex, Batched, Cached, LowRank, Pruned, Quantized
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
