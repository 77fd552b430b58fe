"""BPR-MF: the loss and its gradient by hand (numpy) against torch autograd; negative sampling."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_lab.models.bpr import BPRMF, bpr_loss
from recsys_lab.models.sampling import NegativeSampler, positive_pairs

from .contract import planted_blocks


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def hand_bpr(u, vi, vj, reg):
    """One triplet: L = -log s(x) + reg(|u|^2+|vi|^2+|vj|^2), x = u.(vi - vj); dL/d(u, vi, vj)."""
    x = u @ (vi - vj)
    g = -(1 - sigmoid(x))                                       # dL/dx
    loss = -np.log(sigmoid(x)) + reg * (u @ u + vi @ vi + vj @ vj)
    return loss, g * (vi - vj) + 2 * reg * u, g * u + 2 * reg * vi, -g * u + 2 * reg * vj


def hand_pointwise(u, vi, vj, reg):
    """L = -log s(u.vi) - log s(-u.vj) + reg(...)."""
    a, b = u @ vi, u @ vj
    loss = -np.log(sigmoid(a)) - np.log(sigmoid(-b)) + reg * (u @ u + vi @ vi + vj @ vj)
    du = -(1 - sigmoid(a)) * vi + sigmoid(b) * vj + 2 * reg * u
    return loss, du, -(1 - sigmoid(a)) * u + 2 * reg * vi, sigmoid(b) * u + 2 * reg * vj


@pytest.mark.parametrize("pointwise,hand", [(False, hand_bpr), (True, hand_pointwise)])
def test_loss_and_gradient_equal_autograd(pointwise, hand):
    rng = np.random.default_rng(0)
    u, vi, vj = rng.normal(size=(3, 4))
    reg = 0.1
    t = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in (u, vi, vj)]
    loss = bpr_loss(t[0][None], t[1][None], t[2][None, None], reg, pointwise=pointwise)
    loss.backward()
    ref = hand(u, vi, vj, reg)
    np.testing.assert_allclose(loss.item(), ref[0], rtol=1e-12)
    for tensor, grad in zip(t, ref[1:]):
        np.testing.assert_allclose(tensor.grad.numpy(), grad, rtol=1e-10)


def test_model_loss_is_the_batch_mean_of_the_hand_formula():
    """The model's own compute_loss on its own embedding tables equals the numpy mean."""
    train, _ = planted_blocks()
    model = BPRMF(embedding_size=4, epochs=1, reg=0.05, device="cpu", num_threads=1).fit(train)
    U = model.module_.user.weight.detach().numpy().astype(np.float64)
    V = model.module_.item.weight.detach().numpy().astype(np.float64)
    u, i, j = np.array([0, 1, 2]), np.array([3, 4, 5]), np.array([[9], [10], [11]])
    loss = model.compute_loss(model.module_, model.to_tensors(u, i, j))
    ref = np.mean([hand_bpr(U[a], V[b], V[c[0]], 0.05)[0] for a, b, c in zip(u, i, j)])
    np.testing.assert_allclose(loss.item(), ref, rtol=1e-5)


def test_score_is_dot_product_of_exported_vectors():
    train, _ = planted_blocks()
    model = BPRMF(embedding_size=8, epochs=2, device="cpu", num_threads=1).fit(train)
    users = np.array([0, 7, 42])
    np.testing.assert_allclose(model.score(users), model.user_vectors(users) @ model.item_vectors().T,
                               rtol=1e-5, atol=1e-6)
    assert model.item_vectors().shape == (train.n_items, 8)


def test_pairwise_and_pointwise_both_learn_the_blocks():
    from recsys_lab.eval import evaluate
    train, test = planted_blocks()
    for loss in ("bpr", "pointwise"):
        m = BPRMF(embedding_size=8, epochs=30, learning_rate=0.02, batch_size=128, reg=0.01,
                  loss=loss, device="cpu", num_threads=1).fit(train)
        assert evaluate(m, test, k=5)["hit"].iloc[0] >= 0.75, loss


def test_bad_config_is_named():
    train, _ = planted_blocks()
    with pytest.raises(ValueError, match="loss"):
        BPRMF(loss="hinge").fit(train)
    with pytest.raises(ValueError, match="n_negatives"):
        BPRMF(n_negatives=0).fit(train)


# ---- negative sampling ----------------------------------------------------------------------
def random_csr(seed=0, shape=(50, 30), density=0.4):
    m = sp.random(*shape, density=density, format="csr", random_state=seed)
    m.data[:] = 1
    return m


def test_negatives_are_never_positives():
    seen = random_csr()
    sampler = NegativeSampler(seen)
    users = np.repeat(np.arange(50), 20)
    neg = sampler.sample(users, np.random.default_rng(0), n_neg=3)
    dense = seen.toarray()
    assert neg.shape == (len(users), 3)
    assert not dense[users[:, None], neg].any()


def test_is_positive_matches_the_dense_matrix():
    seen = random_csr(1)
    users, items = np.meshgrid(np.arange(50), np.arange(30), indexing="ij")
    got = NegativeSampler(seen).is_positive(users.ravel(), items.ravel()).reshape(50, 30)
    np.testing.assert_array_equal(got, seen.toarray() > 0)


def test_uniform_negatives_are_uniform_over_unseen_items():
    seen = random_csr(2, shape=(1, 30), density=0.3)
    neg = NegativeSampler(seen).sample(np.zeros(60000, int), np.random.default_rng(0)).ravel()
    freq = np.bincount(neg, minlength=30) / len(neg)
    unseen = seen.toarray()[0] == 0
    np.testing.assert_allclose(freq[unseen], 1 / unseen.sum(), atol=0.01)
    assert freq[~unseen].sum() == 0


def test_popularity_negatives_follow_count_to_the_alpha():
    seen = sp.csr_matrix((np.ones(6), ([0, 1, 1, 2, 2, 2], [0, 0, 1, 0, 1, 2])), shape=(4, 3))
    sampler = NegativeSampler(seen, distribution="popularity", alpha=0.75)
    neg = sampler.sample(np.full(100000, 3), np.random.default_rng(0)).ravel()   # user 3 saw nothing
    p = np.array([3, 2, 1]) ** 0.75
    np.testing.assert_allclose(np.bincount(neg, minlength=3) / len(neg), p / p.sum(), atol=0.01)


def test_positive_pairs_are_the_stored_entries():
    seen = random_csr(3)
    u, i = positive_pairs(seen)
    np.testing.assert_array_equal(np.stack(seen.nonzero()), np.stack([u, i]))


def test_bitmap_and_sorted_keys_give_the_same_positives_and_draws(monkeypatch):
    """The packed-bitmap lookup is a speed-up only: the same answers, so the same negatives."""
    import recsys_lab.models.sampling as sampling
    seen = random_csr(4, shape=(70, 45), density=0.5)
    fast = NegativeSampler(seen)
    monkeypatch.setattr(sampling, "BITMAP_MAX_CELLS", 0)               # force the searchsorted path
    slow = NegativeSampler(seen)
    assert fast.bitmap is not None and slow.bitmap is None
    users, items = np.meshgrid(np.arange(70), np.arange(45), indexing="ij")
    np.testing.assert_array_equal(fast.is_positive(users.ravel(), items.ravel()),
                                  slow.is_positive(users.ravel(), items.ravel()))
    np.testing.assert_array_equal(fast.is_positive(users.ravel(), items.ravel()).reshape(70, 45),
                                  seen.toarray() > 0)
    who = np.repeat(np.arange(70), 9)
    for n_neg in (1, 4):
        np.testing.assert_array_equal(fast.sample(who, np.random.default_rng(7), n_neg),
                                      slow.sample(who, np.random.default_rng(7), n_neg))


def test_bpr_loss_equals_the_einsum_form():
    """The mul-sum negative scores are the einsum's, value and gradient (float64, no noise)."""
    g = torch.Generator().manual_seed(0)
    eu, ei, ej = (torch.randn(*s, generator=g, dtype=torch.float64, requires_grad=True)
                  for s in ((32, 8), (32, 8), (32, 3, 8)))
    for pointwise in (False, True):
        got = bpr_loss(eu, ei, ej, 0.01, pointwise=pointwise)
        grads = torch.autograd.grad(got, (eu, ei, ej))
        pos, neg = (eu * ei).sum(-1), torch.einsum("bd,bnd->bn", eu, ej)
        fit = (-torch.nn.functional.logsigmoid(pos) - torch.nn.functional.logsigmoid(-neg).sum(-1)
               if pointwise else -torch.nn.functional.logsigmoid(pos[:, None] - neg).mean(-1))
        ref = fit.mean() + 0.01 * (eu.pow(2).sum(-1) + ei.pow(2).sum(-1) + ej.pow(2).sum((-2, -1))).mean()
        torch.testing.assert_close(got, ref, rtol=1e-12, atol=0)
        for a, b in zip(grads, torch.autograd.grad(ref, (eu, ei, ej))):
            torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-14)


# ---- validating every few epochs (TorchRecommender.valid_every) -----------------------------
def test_valid_every_validates_on_its_epochs_and_counts_patience_in_validations():
    from recsys_lab.eval import evaluate
    train, test = planted_blocks()
    cfg = dict(embedding_size=8, epochs=12, learning_rate=0.02, batch_size=64, device="cpu",
               num_threads=1, seed=3)
    every = BPRMF(valid_every=3, patience=1, **cfg).fit(train, valid=test)
    h = every.history_
    validated = h["epoch"][h["valid_ndcg@10"].notna()].tolist()
    assert validated == [e for e in h["epoch"] if e % 3 == 0] and len(validated) >= 1
    assert every.best_epoch_ in validated
    assert every.best_epoch_ == int(h.loc[h["valid_ndcg@10"].idxmax(), "epoch"])
    stale = 0                                                          # stop after patience + 1
    for v, best in zip(h["valid_ndcg@10"].dropna(), h["best"].dropna()):
        stale = 0 if best else stale + 1
    assert stale == 2 or len(h) == cfg["epochs"]
    restored = evaluate(every, test, k=10)["ndcg"].iloc[0]
    assert restored == pytest.approx(h["valid_ndcg@10"].max(), abs=1e-12)   # best weights kept
    # every epoch: the same run as without the knob
    a = BPRMF(valid_every=1, patience=2, **cfg).fit(train, valid=test).history_
    b = BPRMF(patience=2, **cfg).fit(train, valid=test).history_
    np.testing.assert_array_equal(a["valid_ndcg@10"], b["valid_ndcg@10"])
    for bad in (0, 1.5):
        with pytest.raises((TypeError, ValueError), match="valid_every"):  # 1.5: the type check
            BPRMF(valid_every=bad, **cfg).fit(train, valid=test)
