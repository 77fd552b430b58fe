"""The tie rule (recsys_lab.ties) pinned with planted ties: neighbours, recommendations, ANN merges.

Every tie below is planted so that it is exact on every CPU (identical rows, small integers) or
exists only up to float noise (the same cosine reached by different arithmetic); either way the
lower index must win.
"""
import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.accel import ANNIndex
from recsys_lab.data import Interactions
from recsys_lab.models import ItemKNN, UserKNN
from recsys_lab.models.base import topk
from recsys_lab.similarity import _top_positive, similarity_matrix
from recsys_lab.ties import TIE_GRID, best_first, snap
from tests.accel_helpers import RandomVectors


def test_snap_merges_float_noise_and_keeps_real_differences():
    a = np.sqrt(3) / 4
    noisy = a + np.array([0.0, 1e-16, -2e-16, 3e-16])
    assert len(np.unique(snap(noisy))) == 1
    assert snap(a) != snap(a + 2 * TIE_GRID)
    assert np.float32(snap(a)) == snap(a)                     # grid points are exact in float32


def test_neighbours_tied_up_to_noise_go_to_the_lower_index():
    # row 0 = (1, 1, 1); rows 1..3 each share one coordinate with it at different scales, so
    # each cosine is 1/sqrt(3) reached by different arithmetic (equal only up to rounding)
    X = np.array([[1, 1, 1, 0], [3, 0, 0, 0], [0, 7, 0, 0], [0, 0, 0.1, 0], [0, 0, 0, 1]], float)
    for k in (1, 2):
        S = similarity_matrix(X, "cosine", k=k)
        assert S[0].indices.tolist() == [1, 2][:k]
    # the same pruning on a matrix perturbed by noise at 1e-15: still the lower indices
    rng = np.random.default_rng(0)
    s = np.full((6, 8), 0.433013) + rng.normal(0, 1e-15, (6, 8))
    r, c = _top_positive(snap(s), 3)
    assert (c.reshape(6, 3) == [0, 1, 2]).all()


@pytest.mark.parametrize("neighbourhood", ["target", "source"])
def test_itemknn_with_planted_exact_ties_keeps_lower_indexed_neighbours(neighbourhood):
    # items 1, 2, 3 are identical columns: each is tied with the others for item 0's neighbourhood
    X = np.array([[1, 1, 1, 1, 0], [1, 1, 1, 1, 0], [0, 1, 1, 1, 1], [1, 0, 0, 0, 1]])
    u, i = np.nonzero(X)
    data = Interactions(u, i, np.arange(4), np.arange(5))
    sim = ItemKNN(k=2, use_ratings=False, neighbourhood=neighbourhood).fit(data).sim_
    nbrs = sim.T.tocsr() if neighbourhood == "target" else sim   # row t: N_k(t)
    assert nbrs[1].indices.tolist() == [2, 3]                     # item 1: items 2 and 3 tie at 1.0
    assert nbrs[0].indices.tolist() == [1, 2]                     # item 0: 1, 2, 3 tie; keep 1, 2
    users = UserKNN(k=1, use_ratings=False, neighbourhood=neighbourhood).fit(data).sim_
    nbrs = users if neighbourhood == "target" else users.T.tocsr()
    assert nbrs[0].indices.tolist() == [1]                        # users 0 and 1 identical; 2 ties below


def test_recommend_breaks_score_ties_by_item_index():
    s = np.array([[1, 3, 3, 2, 3, 0]], np.float32)
    items, vals = topk(s, 4)
    assert items.tolist() == [[1, 2, 4, 3]] and vals.tolist() == [[3, 3, 3, 2]]
    order = best_first(np.array([[2.0, 5.0, 5.0, 1.0]]), np.array([[9, 7, 3, 1]]))
    assert order.tolist() == [[2, 1, 0, 3]]                   # the 5.0 tie: item 3 before item 7


def test_ann_merge_breaks_ties_by_item_index():
    n_users, n_items = 20, 40
    u = np.repeat(np.arange(n_users), 2)
    i = np.tile([0, 1], n_users)
    data = Interactions(u, i, np.arange(n_users), np.arange(n_items))
    model = RandomVectors(embedding_size=4).fit(data)
    V = model.items_table_
    V[10:20] = V[30]                                          # items 10..19 and 30: identical vectors
    V[:] = np.round(V * 4) / 4                                # exact in float32: ties are exact
    model.users_table_[:] = np.round(model.users_table_ * 4) / 4
    exact = model.recommend(np.arange(n_users), k=15)[0]
    items, _ = ANNIndex(model, backend="flat").recommend(np.arange(n_users), k=15)
    np.testing.assert_array_equal(items, exact)
    for row in items:                                         # within the tied group: index order
        tied = [x for x in row if 10 <= x < 20 or x == 30]
        assert tied == sorted(tied)
