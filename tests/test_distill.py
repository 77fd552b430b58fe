"""Distilled: the contract, the loss against a numpy reference, and distillation moving the student."""
import numpy as np
import pytest
import torch

from recsys_lab.accel.distill import Distilled, distillation_loss, position_weights
from recsys_lab.data import random_split, synthetic_shop
from recsys_lab.models import EASE, Popularity

from .contract import RecommenderContract

SMALL = dict(embedding_size=8, learning_rate=0.02, batch_size=128, reg=0.01, device="cpu")


class TestDistilled(RecommenderContract):
    planted_min_hit = 0.75   # the teacher's own ceiling on planted blocks is 5/6 (no in-block signal)

    def make_model(self):
        return Distilled(EASE(reg=10.0), epochs=20, **SMALL)


def test_position_weights_match_the_formula():
    k, lam = 7, 2.5
    raw = [np.exp(-r / lam) for r in range(1, k + 1)]
    np.testing.assert_allclose(position_weights(k, lam), np.array(raw) / sum(raw), rtol=1e-6)
    assert (np.diff(position_weights(k, lam)) < 0).all()


def test_loss_matches_numpy_reference():
    train, _, _ = random_split(synthetic_shop(n_users=60, n_items=40, n_events=600, seed=3), seed=0)
    model = Distilled(EASE(reg=5.0), top_k=4, position_decay=3.0, distill_weight=0.7, loss="pointwise",
                      n_negatives=2, epochs=1, **SMALL).fit(train)
    rng = np.random.default_rng(0)
    batch = next(iter(model.batches(train, rng)))
    got = model.compute_loss(model.module_, batch).item()

    u, i, j, top = (t.numpy() for t in batch)
    U = model.module_.user.weight.detach().numpy().astype(np.float64)
    V = model.module_.item.weight.detach().numpy().astype(np.float64)
    logsig = lambda x: -np.logaddexp(0.0, -x)                      # noqa: E731
    w = position_weights(4, 3.0)
    gt, dist, l2 = [], [], []
    for b in range(len(u)):
        eu = U[u[b]]
        gt.append(-logsig(eu @ V[i[b]]) - sum(logsig(-(eu @ V[jj])) for jj in j[b]))
        dist.append(-sum(w[r] * logsig(eu @ V[top[b, r]]) for r in range(4)))
        l2.append(eu @ eu + V[i[b]] @ V[i[b]] + sum(V[jj] @ V[jj] for jj in j[b]))
    want = np.mean(gt) + 0.01 * np.mean(l2) + 0.7 * np.mean(dist)
    assert got == pytest.approx(want, rel=1e-5)
    # the batch's distillation targets are the teacher's top-K for those users
    np.testing.assert_array_equal(top, model.teacher.recommend(u, k=4)[0])


def test_distillation_loss_against_autograd_free_formula():
    s = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    w = torch.tensor([0.5, 0.3, 0.2])
    ref = np.mean([-(w.numpy() * np.log(1 / (1 + np.exp(-row)))).sum() for row in s.numpy()])
    assert distillation_loss(s, w).item() == pytest.approx(ref, rel=1e-6)


@pytest.fixture(scope="module")
def shop():
    return random_split(synthetic_shop(n_users=300, n_items=150, n_events=5000, seed=1), seed=0)


def _overlap(a, b):
    return np.mean([len(set(x) & set(y)) / a.shape[1] for x, y in zip(a, b)])


def test_distillation_pulls_the_student_towards_the_teacher(shop):
    train = shop[0]
    teacher = EASE(reg=100.0).fit(train)
    users = np.arange(train.n_users)
    ref = teacher.recommend(users, k=10)[0]
    kw = dict(embedding_size=8, epochs=10, learning_rate=0.02, batch_size=512, reg=1e-4, device="cpu")
    plain = Distilled(teacher, distill_weight=0.0, **kw).fit(train)
    taught = Distilled(teacher, distill_weight=2.0, **kw).fit(train)
    assert _overlap(taught.recommend(users, k=10)[0], ref) > _overlap(plain.recommend(users, k=10)[0], ref) + 0.1


def test_fitted_teacher_is_not_refitted_and_not_served(shop, monkeypatch):
    train = shop[0]
    teacher = EASE(reg=100.0).fit(train)
    B = teacher.B_
    monkeypatch.setattr(EASE, "fit", lambda *a, **k: pytest.fail("the fitted teacher was refitted"))
    student = Distilled(teacher, embedding_size=4, epochs=1, device="cpu").fit(train)
    assert student.teacher.B_ is B
    assert student.serving_bytes() < teacher.serving_bytes()
    assert student.user_vectors([0, 1]).shape == (2, 4) and student.item_vectors().shape == (train.n_items, 4)


def test_bad_configuration_is_named(shop):
    train = shop[0]
    with pytest.raises(ValueError, match="teacher"):
        Distilled(epochs=1).fit(train)
    with pytest.raises(ValueError, match="student"):
        Distilled(Popularity(), student="neumf", epochs=1).fit(train)
    with pytest.raises(ValueError, match="top_k"):
        Distilled(Popularity(), top_k=0, epochs=1).fit(train)
    with pytest.raises(ValueError, match="larger than the catalog"):
        Distilled(Popularity(), top_k=train.n_items + 1, epochs=1).fit(train)
    with pytest.raises(TypeError, match="unknown parameter"):
        Distilled(Popularity(), temperature=2.0)
    with pytest.raises(TypeError, match="teacher must be Recommender"):
        Distilled("EASE")
