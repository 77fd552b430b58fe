"""The shared torch loop (seeding, early stopping, checkpoints) and the contract for every torch model."""
import numpy as np
import pytest
import torch

from recsys_lab.eval import evaluate
from recsys_lab.models.base import Recommender
from recsys_lab.models.bpr import BPRMF
from recsys_lab.models.lightgcn import NGCF, LightGCN
from recsys_lab.models.neumf import NeuMF
from recsys_lab.models.torch_base import TorchRecommender, resolve_device

from .contract import RecommenderContract, planted_blocks

# Hit@5 ceiling on planted_blocks for a model that finds the block but has no signal inside it:
# the held-out item is uniform among the block's 6 unseen items, so 5/6 = 0.83 (+- 0.03 at 120 users).
PLANTED_HIT = 0.75
# one torch thread: tiny models gain nothing from more, and 2 threads on a busy CI box spin-wait
SMALL = dict(embedding_size=8, learning_rate=0.02, batch_size=128, reg=0.01, device="cpu", num_threads=1)


class TestBPRMF(RecommenderContract):
    planted_min_hit = PLANTED_HIT

    def make_model(self):
        return BPRMF(epochs=30, **SMALL)


class TestBPRMFPointwise(RecommenderContract):
    planted_min_hit = PLANTED_HIT

    def make_model(self):
        return BPRMF(epochs=30, loss="pointwise", n_negatives=2, **SMALL)


# ---- the shared loop ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data():
    train, test = planted_blocks()
    valid_train, valid = planted_blocks(seed=1)     # same id space, other held-out items
    return train, test, valid


def test_history_has_one_row_per_epoch(data):
    m = BPRMF(epochs=4, **SMALL).fit(data[0])
    assert list(m.history_["epoch"]) == [1, 2, 3, 4]
    assert m.history_["loss"].notna().all() and len(m.epoch_seconds_) == 4
    assert "valid_ndcg@10" not in m.history_ and m.fit_seconds_ > 0


def test_loss_goes_down(data):
    h = BPRMF(epochs=10, **SMALL).fit(data[0]).history_["loss"]
    assert h.iloc[-1] < h.iloc[0]


def test_early_stopping_restores_the_best_epoch(data):
    train, test, _ = data
    # a large learning rate overfits fast; patience 1 stops soon after the best epoch
    m = BPRMF(epochs=40, patience=1, **{**SMALL, "learning_rate": 0.1, "reg": 0.0}).fit(train, valid=test)
    h = m.history_
    best = h["valid_ndcg@10"].max()
    assert len(h) < 40 and h["valid_ndcg@10"].iloc[-1] < best
    assert m.best_epoch_ == int(h.loc[h["valid_ndcg@10"].idxmax(), "epoch"])
    now = evaluate(m, test, k=10)["ndcg"].iloc[0]
    assert now == pytest.approx(best, abs=1e-12)          # the restored weights give the best score


def test_validation_on_a_user_sample(data):
    train, test, _ = data
    cfg = dict(epochs=3, patience=5, **SMALL)
    sampled = BPRMF(valid_users=20, **cfg)
    sample = sampled._valid_sample(test)
    assert len(np.unique(sample.user)) == 20 and set(np.unique(sample.user)) <= set(test.user)
    assert np.array_equal(sample.user, sampled._valid_sample(test).user)   # seeded: same users
    m = sampled.fit(train, valid=test)
    score = float(evaluate(m, sample, k=10)["ndcg"].iloc[0])   # the best weights, on the sample
    assert m.history_["valid_ndcg@10"].max() == pytest.approx(score, abs=1e-12)
    assert BPRMF(valid_users=10**6, **cfg)._valid_sample(test) is test
    with pytest.raises(ValueError, match="valid_users"):
        BPRMF(valid_users=0, **cfg).fit(train, valid=test)


def test_fit_does_not_touch_global_rng_or_threads(data):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    threads = torch.get_num_threads()
    BPRMF(epochs=1, **{**SMALL, "num_threads": 1 if threads > 1 else 2}).fit(data[0])
    assert torch.equal(torch.rand(3), expected) and torch.get_num_threads() == threads


def test_different_seeds_differ(data):
    a = BPRMF(epochs=2, seed=0, **SMALL).fit(data[0]).item_vectors()
    b = BPRMF(epochs=2, seed=1, **SMALL).fit(data[0]).item_vectors()
    assert not np.allclose(a, b)


def test_checkpoint_round_trip_with_weights_only(data, tmp_path):
    m = BPRMF(epochs=3, **SMALL).fit(data[0])
    path = m.save_checkpoint(tmp_path / "bpr.pt")
    raw = torch.load(path, weights_only=True)               # loads without executing code
    assert raw["class"] == "BPRMF"
    back = TorchRecommender.load_checkpoint(path)
    assert type(back) is BPRMF and back.get_config() == m.get_config()
    users = np.arange(20)
    np.testing.assert_array_equal(back.score(users), m.score(users))
    np.testing.assert_array_equal(back.recommend(users, k=5)[0], m.recommend(users, k=5)[0])


def test_npz_holds_module_tensors_as_arrays(data, tmp_path):
    m = BPRMF(epochs=1, **SMALL).fit(data[0])
    path = m.save(tmp_path / "bpr.npz")
    with np.load(path, allow_pickle=False) as f:
        np.testing.assert_array_equal(f["module__item.weight"], m.item_vectors())
    assert isinstance(Recommender.load(path), BPRMF)


def test_serving_bytes_counts_parameters(data):
    m = BPRMF(epochs=1, **SMALL).fit(data[0])
    emb = (data[0].n_users + data[0].n_items) * 8 * 4
    assert emb <= m.serving_bytes() <= emb + m.seen_.data.nbytes * 4 + 1024


def test_bad_arguments_are_named(data):
    with pytest.raises(ValueError, match="device"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            BPRMF(device="cuda").fit(data[0])
    assert resolve_device("auto").type in ("cpu", "cuda")
    for bad in (dict(epochs=0), dict(batch_size=-1), dict(learning_rate=0), dict(patience=-1)):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BPRMF(**bad).fit(data[0])
    with pytest.raises(TypeError, match="valid"):
        BPRMF(epochs=1).fit(data[0], valid="nope")


class TestLightGCN(RecommenderContract):
    planted_min_hit = PLANTED_HIT

    def make_model(self):
        return LightGCN(epochs=20, n_layers=2, **SMALL)


class TestNGCF(RecommenderContract):
    planted_min_hit = PLANTED_HIT

    def make_model(self):
        return NGCF(epochs=20, n_layers=1, **SMALL)


class TestNeuMF(RecommenderContract):
    planted_min_hit = PLANTED_HIT

    def make_model(self):
        return NeuMF(kind="neumf", layers=(16, 8), epochs=20, n_negatives=4,
                     **{**SMALL, "learning_rate": 0.01, "reg": 0.0})
