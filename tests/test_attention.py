"""Attention pooling (article §4.3): weights sum to 1 and equal numpy; the pooled model on the contract."""
import numpy as np
import pytest
import torch

from recsys_lab.models.attention import AttentionPooling, attention_pool, attention_weights
from recsys_lab.models.base import Recommender
from recsys_lab.models.bpr import BPRMF

from .contract import RecommenderContract, planted_blocks

BASE = dict(embedding_size=8, epochs=30, learning_rate=0.02, batch_size=128, reg=0.01, device="cpu", num_threads=1)


def test_weights_sum_to_one_and_equal_torch_softmax():
    rng = np.random.default_rng(0)
    u, V = rng.normal(size=4), rng.normal(size=(6, 4))
    for tau in (0.5, 1.0, 4.0):
        alpha = attention_weights(u, V, tau)
        ref = torch.softmax(torch.tensor(V @ u / tau), 0).numpy()       # independent softmax
        np.testing.assert_allclose(alpha, ref, rtol=1e-12)
        assert alpha.sum() == pytest.approx(1.0)
    alpha, pooled = attention_pool(u, V)
    np.testing.assert_allclose(pooled, sum(a * v for a, v in zip(alpha, V)))


def test_softmax_is_stable_for_large_scores():
    alpha = attention_weights(np.array([1000.0]), np.array([[1.0], [0.999]]))
    assert np.isfinite(alpha).all() and alpha.sum() == pytest.approx(1.0)


def test_large_tau_is_the_history_mean():
    train, _ = planted_blocks()
    base = BPRMF(**BASE).fit(train)
    m = AttentionPooling(base=base, tau=1e9).fit(train)
    hist = train.to_csr()[3].indices
    np.testing.assert_allclose(m.user_vectors([3])[0], base.item_vectors()[hist].mean(0), rtol=1e-5, atol=1e-6)
    items, alpha = m.explain(3)
    assert sorted(items) == sorted(hist) and alpha.sum() == pytest.approx(1.0)


def test_bad_base_is_named():
    train, _ = planted_blocks()
    with pytest.raises(TypeError, match="base"):
        AttentionPooling(base=None).fit(train)


class TestAttentionPooling(RecommenderContract):
    planted_min_hit = 0.75          # the block-finding ceiling is 5/6 (see test_torch_models.py)

    def make_model(self):
        return AttentionPooling(base=BPRMF(**BASE), tau=1.0)

    def test_save_load_keeps_the_base(self, fitted, tmp_path):
        loaded = Recommender.load(fitted.save(tmp_path / "m.npz"))   # the nested base comes back fitted
        assert type(loaded.base) is BPRMF and loaded.base.is_fitted()
        np.testing.assert_array_equal(loaded.base.item_vectors(), fitted.base.item_vectors())
