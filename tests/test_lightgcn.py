"""Graph propagation: the normalised adjacency and one LightGCN layer by hand; NGCF/GAT pieces."""
import numpy as np
import pytest
import scipy.sparse as sp
import torch

from recsys_lab.models.lightgcn import (GATAggregator, LightGCN, LightGCNModule, NGCF, normalized_adjacency,
                                        propagate, to_torch_sparse)

from .contract import planted_blocks

# 2 users x 2 items: u0 bought i0 and i1, u1 bought i1. Nodes: u0, u1, i0, i1.
R = sp.csr_matrix(np.array([[1, 1], [0, 1]], dtype=np.float32))


def test_normalized_adjacency_on_four_nodes_by_hand():
    # degrees: u0 2, u1 1, i0 1, i1 2 -> A_hat[v, n] = 1 / sqrt(deg v * deg n) on each edge
    s = np.sqrt
    hand = np.array([[0, 0, 1 / s(2 * 1), 1 / s(2 * 2)],
                     [0, 0, 0, 1 / s(1 * 2)],
                     [1 / s(1 * 2), 0, 0, 0],
                     [1 / s(2 * 2), 1 / s(1 * 2), 0, 0]])
    np.testing.assert_allclose(normalized_adjacency(R).toarray(), hand, rtol=1e-6)


def test_lightgcn_layers_by_hand():
    A = normalized_adjacency(R).toarray().astype(np.float64)
    module = LightGCNModule(2, 2, dim=3, n_layers=2)
    E0 = module.embedding.weight.detach().numpy().astype(np.float64)
    U, V = module(to_torch_sparse(normalized_adjacency(R), "cpu"))
    mean = (E0 + A @ E0 + A @ A @ E0) / 3                              # 1/(L+1) sum_l A^l E0
    np.testing.assert_allclose(U.detach().numpy(), mean[:2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(V.detach().numpy(), mean[2:], rtol=1e-5, atol=1e-6)


def test_isolated_node_has_zero_row():
    A = normalized_adjacency(sp.csr_matrix(np.array([[1, 0], [0, 0]], dtype=np.float32))).toarray()
    assert not A[1].any() and not A[:, 3].any()


def test_propagate_gradient_equals_autograd_of_dense():
    A = normalized_adjacency(sp.random(6, 5, density=0.5, random_state=0, format="csr"))
    x = torch.randn(11, 4, dtype=torch.float32, requires_grad=True)
    w = torch.randn(11, 4)
    (propagate(to_torch_sparse(A, "cpu"), x) * w).sum().backward()
    xd = x.detach().clone().requires_grad_(True)
    (torch.tensor(A.toarray()) @ xd * w).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), xd.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gat_weights_sum_to_one_and_match_numpy():
    A = normalized_adjacency(R)
    adj = to_torch_sparse(A, "cpu")
    torch.manual_seed(0)
    gat = GATAggregator(3)
    e = torch.randn(4, 3)
    dst = torch.repeat_interleave(torch.arange(4), adj.crow_indices().diff())
    src = adj.col_indices()
    alpha = gat.weights(e, dst, src).detach().numpy()
    np.testing.assert_allclose(np.bincount(dst.numpy(), alpha), 1.0, rtol=1e-6)
    h = (e @ gat.W.weight.T).detach().numpy()
    a_d, a_s = gat.a_dst.detach().numpy(), gat.a_src.detach().numpy()
    ref = np.zeros(len(src))
    for v in range(4):                                             # per destination node, a softmax
        k = np.flatnonzero(dst.numpy() == v)
        z = h[v] @ a_d + h[src.numpy()[k]] @ a_s
        z = np.where(z > 0, z, 0.2 * z)
        ref[k] = np.exp(z) / np.exp(z).sum()
    np.testing.assert_allclose(alpha, ref, rtol=1e-5)
    out = gat(e, adj, dst).detach().numpy()
    dense = np.zeros((4, 4))
    dense[dst.numpy(), src.numpy()] = ref
    np.testing.assert_allclose(out, dense @ e.numpy(), rtol=1e-5, atol=1e-6)


def test_scores_are_dot_products_of_propagated_embeddings():
    train, _ = planted_blocks()
    m = LightGCN(embedding_size=8, epochs=2, n_layers=2, device="cpu", num_threads=1).fit(train)
    with torch.no_grad():
        U, V = m.module_(m._adj)
    np.testing.assert_allclose(m.score(np.arange(5)), (U[:5] @ V.T).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(m.item_vectors(), V.numpy(), rtol=1e-6)


def test_ngcf_concatenates_layers():
    train, _ = planted_blocks()
    m = NGCF(embedding_size=4, epochs=1, n_layers=2, device="cpu", num_threads=1).fit(train)
    assert m.user_vectors().shape == (train.n_users, 12)


def test_bad_graph_config_is_named():
    train, _ = planted_blocks()
    with pytest.raises(ValueError, match="aggregation"):
        NGCF(aggregation="max").fit(train)
    with pytest.raises(ValueError, match="n_layers"):
        LightGCN(n_layers=-1).fit(train)


def test_ngcf_attention_learns_the_blocks():
    from recsys_lab.eval import evaluate
    train, test = planted_blocks()
    m = NGCF(embedding_size=8, epochs=20, n_layers=1, aggregation="gat", learning_rate=0.02,
             batch_size=128, reg=0.01, device="cpu", seed=0, num_threads=1).fit(train)
    again = NGCF(**m.get_config()).fit(train)
    np.testing.assert_array_equal(m.score(np.arange(10)), again.score(np.arange(10)))
    assert evaluate(m, test, k=5)["hit"].iloc[0] >= 0.75


def test_int32_csr_gives_the_int64_products_bit_for_bit():
    """to_torch_sparse stores int32 indices (the faster CPU kernel): the same A @ x exactly."""
    A = normalized_adjacency(sp.random(40, 30, density=0.3, random_state=1, format="csr"))
    adj = to_torch_sparse(A, "cpu")
    assert adj.crow_indices().dtype == torch.int32 and adj.col_indices().dtype == torch.int32
    wide = torch.sparse_csr_tensor(adj.crow_indices().long(), adj.col_indices().long(), adj.values(),
                                   adj.shape, check_invariants=True)
    x = torch.randn(70, 16, generator=torch.Generator().manual_seed(0))
    assert torch.equal(adj @ x, wide @ x)
    np.testing.assert_allclose((adj @ x).numpy(), A @ x.numpy(), rtol=1e-5, atol=1e-6)
