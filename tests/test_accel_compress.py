"""Quantized, Pruned and LowRank against numpy references (tables) and torch (linear layers)."""
import copy

import numpy as np
import pytest
import torch
from torch import nn

from recsys_lab.accel import LowRank, Pruned, Quantized, embedding_bytes
from recsys_lab.accel.tables import module_bytes
from recsys_lab.models.base import Popularity
from tests.accel_helpers import RandomVectors, random_interactions, svd, tiny_mlp
from tests.contract import planted_blocks


@pytest.fixture(scope="module")
def train():
    return random_interactions(n_users=60, n_items=80, per_user=10)


@pytest.fixture(scope="module")
def vectors(train):
    return RandomVectors(embedding_size=32).fit(train)


def int8_reference(x):
    """Row by row: s = max|x| / 127, q = round(x / s), x_hat = s q."""
    out, scales = np.empty_like(x), np.empty(len(x))
    for r, row in enumerate(x):
        s = max(abs(v) for v in row) / 127.0
        scales[r] = s
        out[r] = [round(v / s) * s for v in row]
    return out, scales


# ---- Quantized ---------------------------------------------------------------------------------
def test_int8_scores_match_numpy_dequantisation(vectors, train):
    acc = Quantized(vectors, dtype="int8")
    U_hat, su = int8_reference(vectors.user_vectors().astype(np.float64))
    V_hat, sv = int8_reference(vectors.item_vectors().astype(np.float64))
    users = np.arange(train.n_users)
    ref = np.array([[U_hat[u] @ V_hat[i] for i in range(train.n_items)] for u in users])
    np.testing.assert_allclose(acc.score(users), ref, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(acc.user_vectors(users), U_hat, rtol=1e-6, atol=1e-6)
    # error bound of round-to-nearest: half a quantisation step per entry
    assert (np.abs(vectors.item_vectors() - acc.item_vectors()) <= sv[:, None] / 2 + 1e-6).all()


def test_int8_memory_is_d_plus_4_bytes_per_row(vectors, train):
    d = vectors.embedding_size
    acc = Quantized(vectors, dtype="int8")
    rows = train.n_users + train.n_items
    assert acc.embedding_bytes() == rows * (d + 4)
    assert embedding_bytes(vectors) == rows * 4 * d
    assert embedding_bytes(vectors) / acc.embedding_bytes() == pytest.approx(4 * d / (d + 4))
    assert Quantized(vectors, dtype="fp16").embedding_bytes() == rows * 2 * d


def test_fp16_matches_numpy_half(vectors):
    acc = Quantized(vectors, dtype="fp16")
    U = vectors.user_vectors().astype(np.float16).astype(np.float64)
    V = vectors.item_vectors().astype(np.float16).astype(np.float64)
    np.testing.assert_allclose(acc.score(np.arange(5)), U[:5] @ V.T, rtol=1e-4, atol=1e-4)


def test_int8_keeps_the_ranking(vectors, train):
    users = np.arange(train.n_users)
    exact = vectors.recommend(users, k=10)[0]
    approx = Quantized(vectors).recommend(users, k=10)[0]
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, exact)]) >= 0.95


def test_update_requantises_the_user_row():
    """PureSVD folds a new item in; the int8 row of that user follows, others stay."""
    train, _ = planted_blocks()
    model = svd().fit(train)
    acc = Quantized(model)
    before = acc.user_vectors(np.arange(train.n_users)).copy()
    item = int(np.flatnonzero(model.seen_[3].toarray().ravel() == 0)[0])
    acc.update(3, item)
    assert model.seen_[3, item] == 1
    ref, _ = int8_reference(model.user_vectors([3]).astype(np.float64))
    np.testing.assert_allclose(acc.user_vectors([3]), ref, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(np.delete(acc.user_vectors(np.arange(train.n_users)), 3, 0),
                                  np.delete(before, 3, 0))
    assert item not in acc.recommend([3], k=10)[0]


@pytest.fixture(scope="module")
def mlp():
    train, _ = planted_blocks()
    return tiny_mlp().fit(train)


def test_dynamic_int8_quantises_linear_layers(mlp):
    acc = Quantized(mlp, dtype="int8")
    kinds = {type(m).__name__ for m in acc.module_.modules()}
    assert "Linear" in kinds and not any(isinstance(m, nn.Linear) and type(m) is nn.Linear
                                         for m in acc.module_.modules())
    # reference: torch's own dynamic-quantised module on the same weights
    with torch.no_grad():
        users = torch.arange(mlp.n_users_)
        ref = mlp.score_users(acc.module_, users).numpy()
        fp32 = mlp.score(np.arange(mlp.n_users_))
    np.testing.assert_allclose(acc.score(np.arange(mlp.n_users_)), ref, rtol=1e-6)
    assert np.abs(acc.score(np.arange(mlp.n_users_)) - fp32).max() < 0.05 * np.abs(fp32).max()
    assert acc.embedding_bytes() < module_bytes(mlp.module_)
    with pytest.raises(TypeError, match="torch module"):
        acc.item_vectors()


def test_models_without_tables_or_modules_are_refused(train):
    with pytest.raises(TypeError, match="embedding model"):
        Quantized(Popularity().fit(train))


# ---- Pruned ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sparsity", [0.25, 0.5, 0.8])
def test_pruning_zeroes_the_smallest_magnitudes(vectors, train, sparsity):
    acc = Pruned(vectors, sparsity=sparsity)
    for table, dense in ((acc.items_, vectors.item_vectors()), (acc.users_, vectors.user_vectors())):
        order = np.argsort(np.abs(dense).ravel())                      # reference: sort by |w|
        n_prune = int(np.floor(sparsity * dense.size))
        ref = dense.ravel().copy()
        ref[order[:n_prune]] = 0
        np.testing.assert_array_equal(table.toarray(), ref.reshape(dense.shape))
    assert acc.sparsity_ == pytest.approx(sparsity, abs=0.01)
    users = np.arange(train.n_users)
    np.testing.assert_allclose(acc.score(users), acc.users_.toarray() @ acc.items_.toarray().T,
                               rtol=1e-5, atol=1e-5)


def test_pruned_tables_are_smaller_past_half_sparsity(vectors):
    assert Pruned(vectors, sparsity=0.8).embedding_bytes() < embedding_bytes(vectors)
    assert Pruned(vectors, sparsity=0.2).embedding_bytes() > embedding_bytes(vectors)


def test_pruning_linear_layers_is_global_magnitude(mlp):
    acc = Pruned(mlp, sparsity=0.6)
    w_ref = torch.cat([m.weight.detach().abs().ravel() for m in mlp.module_.modules()
                       if isinstance(m, nn.Linear)])
    t = w_ref.sort().values[int(0.6 * len(w_ref)) - 1]
    w = torch.cat([m.weight.detach().ravel() for m in acc.module_.modules() if isinstance(m, nn.Linear)])
    assert (w == 0).float().mean().item() == pytest.approx(0.6, abs=1e-3)
    assert torch.equal(w != 0, w_ref > t)
    assert all(p.abs().sum() > 0 for p in mlp.module_.parameters())    # the original is untouched


# ---- LowRank -----------------------------------------------------------------------------------
@pytest.mark.parametrize("rank", [4, 16, 32])
def test_low_rank_is_eckart_young_on_the_item_table(vectors, train, rank):
    acc = LowRank(vectors, rank=rank)
    U, V = vectors.user_vectors().astype(np.float64), vectors.item_vectors().astype(np.float64)
    p, s, qt = np.linalg.svd(V, full_matrices=False)
    V_r = (p[:, :rank] * s[:rank]) @ qt[:rank]                          # best rank-r approximation
    users = np.arange(train.n_users)
    np.testing.assert_allclose(acc.score(users), U @ V_r.T, rtol=1e-4, atol=1e-3)
    assert acc.item_vectors().shape == (train.n_items, rank)
    assert acc.explained_ == pytest.approx((s[:rank] ** 2).sum() / (s ** 2).sum())
    if rank == 32:
        np.testing.assert_allclose(acc.score(users), vectors.score(users), rtol=1e-4, atol=1e-3)


def test_low_rank_splits_linear_layers(mlp):
    acc = LowRank(mlp, rank=4)
    first = acc.module_.mlp[0]
    assert isinstance(first, nn.Sequential) and first[0].weight.shape == (4, 16)
    W = mlp.module_.mlp[0].weight.detach()
    u, s, vt = torch.linalg.svd(W, full_matrices=False)
    np.testing.assert_allclose((first[1].weight @ first[0].weight).detach().numpy(),
                               (u[:, :4] * s[:4] @ vt[:4]).numpy(), atol=1e-5)
    # reference: the original architecture with every Linear weight replaced by its rank-4 SVD cut
    ref = copy.deepcopy(mlp.module_)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.Linear):
                u, s, vt = torch.linalg.svd(m.weight, full_matrices=False)
                m.weight.copy_(u[:, :4] * s[:4] @ vt[:4])
        expected = mlp.score_users(ref, torch.arange(6)).numpy()
    np.testing.assert_allclose(acc.score(np.arange(6)), expected, rtol=1e-4, atol=1e-4)
    with pytest.raises(TypeError, match="wider than rank"):
        LowRank(mlp, rank=16)
    with pytest.raises(ValueError, match="rank"):
        LowRank(RandomVectors(embedding_size=8).fit(planted_blocks()[0]), rank=9)
