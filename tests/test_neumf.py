"""NeuMF: the BCE loss by hand, the GMF branch as a weighted dot product, scoring = pair forward."""
import numpy as np
import pytest
import torch

from recsys_lab.models.neumf import NeuMF

from .contract import planted_blocks


@pytest.fixture(scope="module")
def fitted():
    train, _ = planted_blocks()
    return {kind: NeuMF(kind=kind, embedding_size=4, layers=(8, 4), epochs=1, batch_size=128,
                        device="cpu", num_threads=1).fit(train) for kind in ("gmf", "mlp", "neumf")}


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


def test_gmf_is_a_weighted_dot_product(fitted):
    m = fitted["gmf"].module_
    P, Q = m.gmf_user.weight.detach().numpy(), m.gmf_item.weight.detach().numpy()
    h, b = m.predict.weight.detach().numpy()[0], m.predict.bias.item()
    ref = (P[[0, 3]] * h) @ Q.T + b                                  # h^T (p_u * q_i) + b
    np.testing.assert_allclose(fitted["gmf"].score(np.array([0, 3])), ref, rtol=1e-5, atol=1e-6)


def test_mlp_tower_by_hand(fitted):
    m = fitted["mlp"].module_
    x = np.concatenate([m.mlp_user.weight[2].detach().numpy(), m.mlp_item.weight[5].detach().numpy()])
    for layer in m.tower:
        if isinstance(layer, torch.nn.Linear):
            x = np.maximum(layer.weight.detach().numpy() @ x + layer.bias.detach().numpy(), 0)
    ref = m.predict.weight.detach().numpy()[0] @ x + m.predict.bias.item()
    np.testing.assert_allclose(fitted["mlp"].score(np.array([2]))[0, 5], ref, rtol=1e-5, atol=1e-6)


def test_bce_loss_by_hand(fitted):
    model = fitted["neumf"]
    u, i, j = np.array([0, 1]), np.array([2, 3]), np.array([[7, 8], [9, 10]])
    loss = model.compute_loss(model.module_, model.to_tensors(u, i, j)).item()
    s = model.score(u)                                               # logits of every item
    pos = s[np.arange(2), i]
    neg = np.take_along_axis(s, j, 1)
    ref = (-np.log(sigmoid(pos)).sum() - np.log(1 - sigmoid(neg)).sum()) / 2
    np.testing.assert_allclose(loss, ref, rtol=1e-5)


def test_neumf_fuses_both_branches(fitted):
    m = fitted["neumf"].module_
    assert m.predict.in_features == 4 + 4                            # GMF d + last MLP width


def test_bad_config_is_named():
    train, _ = planted_blocks()
    for bad, word in [(dict(kind="deep"), "kind"), (dict(n_negatives=0), "n_negatives"),
                      (dict(layers=(8, 0)), "layers")]:
        with pytest.raises(ValueError, match=word):
            NeuMF(**bad).fit(train)


def literal_logits(m, u, i):
    """The source's form, pair by pair: sigma^-1 y = h^T [p_u * q_i ; MLP([p'_u ; q'_i])] + b."""
    parts = []
    if m.kind in ("gmf", "neumf"):
        parts.append(m.gmf_user(u) * m.gmf_item(i))
    if m.kind in ("mlp", "neumf"):
        parts.append(m.tower(torch.cat([m.mlp_user(u), m.mlp_item(i)], -1)))
    return m.predict(torch.cat(parts, -1)).squeeze(-1)


@pytest.mark.parametrize("kind", ["gmf", "mlp", "neumf"])
def test_factored_scoring_equals_the_literal_pair_forward(fitted, kind):
    """score_all (GMF as a matmul, first MLP layer split per user and item, blocks of users)
    and the broadcasting forward give the literal concatenation's logits."""
    model = fitted[kind]
    m = model.module_.eval()
    users = torch.arange(model.n_users_)
    u, i = torch.meshgrid(users, torch.arange(model.n_items_), indexing="ij")
    with torch.no_grad():
        ref = literal_logits(m, u, i)
        torch.testing.assert_close(m.score_all(users), ref, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(m(users[:, None], torch.arange(model.n_items_)[None, :]), ref,
                                   rtol=1e-5, atol=1e-6)


def test_one_pass_loss_equals_two_passes_and_dropout_keeps_the_literal_form():
    train, _ = planted_blocks()
    g = torch.Generator().manual_seed(1)
    u = torch.randint(0, train.n_users, (16,), generator=g)
    i = torch.randint(0, train.n_items, (16,), generator=g)
    j = torch.randint(0, train.n_items, (16, 3), generator=g)
    for dropout in (0.0, 0.3):
        model = NeuMF(embedding_size=4, layers=(8, 4), epochs=1, batch_size=128, dropout=dropout,
                      reg=0.01, device="cpu", num_threads=1).fit(train)
        m = model.module_.train()
        torch.manual_seed(5)
        got = model.compute_loss(m, (u, i, j))
        grads = torch.autograd.grad(got, list(m.parameters()))
        torch.manual_seed(5)                                         # the same dropout masks
        logits = literal_logits(m, u[:, None].expand(-1, 4), torch.cat([i[:, None], j], 1))
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        ref = (bce(logits[:, 0], torch.ones(16), reduction="sum")
               + bce(logits[:, 1:], torch.zeros(16, 3), reduction="sum")) / 16
        ref = ref + 0.01 * sum(e.pow(2).sum() for e in m.embeddings(u, i)) / 16
        torch.testing.assert_close(got, ref, rtol=1e-5, atol=1e-6)
        for a, b in zip(grads, torch.autograd.grad(ref, list(m.parameters()))):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
