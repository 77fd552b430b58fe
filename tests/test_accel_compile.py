"""Compiled: torch.compile of the scoring path gives the eager scores; non-torch models refused."""
import numpy as np
import pytest

from recsys_lab.accel import Compiled
from recsys_lab.models.bpr import BPRMF
from recsys_lab.models.neumf import NeuMF
from tests.accel_helpers import svd
from tests.contract import RecommenderContract, planted_blocks


def bpr():
    return BPRMF(embedding_size=8, epochs=30, learning_rate=0.02, batch_size=128, reg=0.01,
                 seed=0, device="cpu")


class TestCompiledBPR(RecommenderContract):
    def make_model(self):
        return Compiled(bpr())

    def test_scores_equal_eager(self, fitted):
        users = np.arange(fitted.n_users_)
        for batch in (users[:1], users[:5], users[:37], users):       # sizes never compiled for
            np.testing.assert_allclose(fitted.score(batch), fitted.model.score(batch), rtol=1e-5, atol=1e-5)
        assert fitted.compile_seconds_ > 0
        assert fitted.get_config()["model"]["class"] == "BPRMF"


class TestCompiledNeuMF(RecommenderContract):
    """A second model, without vectors: the pairwise MLP scoring path is what gets compiled."""

    planted_min_hit = 0.75          # NeuMF's block-finding ceiling (see test_torch_models.py)

    def make_model(self):
        return Compiled(NeuMF(kind="neumf", layers=(16, 8), embedding_size=8, epochs=20, n_negatives=4,
                              learning_rate=0.01, batch_size=128, reg=0.0, seed=0, device="cpu"))

    def test_scores_equal_eager(self, fitted):
        users = np.arange(fitted.n_users_)
        for batch in (users[:1], users[:5], users):
            np.testing.assert_allclose(fitted.score(batch), fitted.model.score(batch), rtol=1e-5, atol=1e-5)


def test_non_torch_models_fail_clearly():
    with pytest.raises(TypeError, match="torch model"):
        Compiled(svd().fit(planted_blocks()[0]))
    with pytest.raises(ValueError, match="mode"):
        Compiled(mode="fastest")
