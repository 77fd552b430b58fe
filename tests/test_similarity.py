"""recsys_lab.similarity against scikit-learn, SciPy and naive loops (1e-6), incl. degenerate rows."""
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr
from sklearn.metrics import pairwise_distances
from sklearn.metrics.pairwise import cosine_similarity

from recsys_lab.similarity import METRICS, pairwise, shrunk, similarity_matrix

TOL = 1e-6


def random_ratings(n=40, m=25, density=0.3, integer=True, seed=0):
    """Sparse ratings with the hard cases planted: empty rows, constant rows, disjoint rows."""
    rng = np.random.default_rng(seed)
    mask = rng.random((n, m)) < density
    vals = rng.integers(1, 6, (n, m)).astype(float) if integer else rng.uniform(0.5, 5.0, (n, m))
    X = np.where(mask, vals, 0.0)
    X[0] = 0                                   # empty row
    X[1] = np.where(mask[1], 3.0, 0.0)         # constant row
    X[2] = np.where(mask[2], 0.37, 0.0)        # constant non-representable row
    X[3], X[4] = 0, 0                          # two rows with no overlap
    X[3, :5], X[4, 5:10] = vals[3, :5], vals[4, 5:10]
    X[5] = 0
    X[5, 7] = 4.0                              # a single rating
    return X


def naive_pearson(X):
    n = len(X)
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            both = (X[a] != 0) & (X[b] != 0)
            x, y = X[a, both], X[b, both]
            if both.sum() >= 2 and np.ptp(x) > 0 and np.ptp(y) > 0:
                out[a, b] = pearsonr(x, y)[0]
    return out


def naive_adjusted_cosine(X):
    obs = X != 0
    col_mean = np.array([X[obs[:, j], j].mean() if obs[:, j].any() else 0.0 for j in range(X.shape[1])])
    Z = np.where(obs, X - col_mean, 0.0)
    n = len(X)
    out = np.zeros((n, n))
    for a in range(n):
        for b in range(n):
            both = obs[a] & obs[b]
            num = (Z[a, both] * Z[b, both]).sum()
            den = np.sqrt((Z[a, both] ** 2).sum() * (Z[b, both] ** 2).sum())
            out[a, b] = num / den if den > 1e-12 else 0.0
    return out


def naive_jaccard(X):
    A = X != 0
    inter = A.astype(float) @ A.T.astype(float)
    union = A.sum(1)[:, None] + A.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


def co_rated(X):
    A = (X != 0).astype(float)
    return A @ A.T


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_cosine_equals_sklearn(integer, seed):
    X = random_ratings(integer=integer, seed=seed)
    np.testing.assert_allclose(pairwise(sp.csr_matrix(X), "cosine"), cosine_similarity(X), atol=TOL)


@pytest.mark.parametrize("integer", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_pearson_equals_scipy_on_co_rated_items(integer, seed):
    X = random_ratings(integer=integer, seed=seed)
    got = pairwise(sp.csr_matrix(X), "pearson")
    np.testing.assert_allclose(got, naive_pearson(X), atol=TOL)
    assert got[0].max() == got[1].max() == got[2].max() == got[5].max() == 0     # defined zeros
    assert got[3, 4] == 0


@pytest.mark.parametrize("integer", [True, False])
def test_adjusted_cosine_equals_naive_loop(integer):
    X = random_ratings(integer=integer, seed=3)
    np.testing.assert_allclose(pairwise(sp.csr_matrix(X), "adjusted_cosine"), naive_adjusted_cosine(X), atol=TOL)


def test_jaccard_equals_sklearn_and_naive_loop():
    X = random_ratings(seed=4)
    got = pairwise(sp.csr_matrix(X), "jaccard")
    np.testing.assert_allclose(got, naive_jaccard(X), atol=TOL)
    A = X != 0
    nonempty = A.any(1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = 1 - pairwise_distances(A[nonempty], metric="jaccard")
    np.testing.assert_allclose(got[np.ix_(nonempty, nonempty)], ref, atol=TOL)


@pytest.mark.parametrize("metric", METRICS)
def test_shrinkage_and_no_nan(metric):
    X = random_ratings(seed=5)
    base, shrink = pairwise(X, metric), 3.0
    n = co_rated(X)
    got = pairwise(X, metric, shrink=shrink)
    np.testing.assert_allclose(got, base * n / (n + shrink), atol=TOL)
    np.testing.assert_allclose(shrunk(base, n, shrink), got, atol=TOL)
    assert np.isfinite(got).all() and np.abs(got).max() <= 1 + 1e-12


def test_recbole_shrink_form_is_an_additive_denominator():
    X = random_ratings(seed=8)
    norm = np.linalg.norm(X, axis=1)
    shrink = 3.0
    want = np.zeros((len(X), len(X)))                              # naive loop: a.b / (|a| |b| + s)
    for a in range(len(X)):
        for b in range(len(X)):
            if norm[a] and norm[b]:
                want[a, b] = X[a] @ X[b] / (norm[a] * norm[b] + shrink)
    got = pairwise(X, "cosine", shrink=shrink, shrink_form="recbole")
    np.testing.assert_allclose(got, want, atol=TOL)
    np.testing.assert_allclose(pairwise(X, "cosine", shrink_form="recbole"), cosine_similarity(X), atol=TOL)
    S = similarity_matrix(X, "cosine", k=3, shrink=shrink, shrink_form="recbole", max_block_cells=7 * 40)
    np.testing.assert_allclose(S.data, want[S.nonzero()], atol=TOL)
    # hand value: a = (1, 1, 1, 1, 0, ..., 0), b = (0, 1, ..., 1) with 16 ones: a.b = 3, |a| |b| = 8
    a, b = np.zeros(17), np.zeros(17)
    a[:4], b[1:] = 1, 1
    assert pairwise(np.stack([a, b]), "cosine", shrink=2.0, shrink_form="recbole")[0, 1] == pytest.approx(3 / 10)
    assert pairwise(np.stack([a, b]), "cosine", shrink=2.0)[0, 1] == pytest.approx(3 / 8 * 3 / 5)   # Koren


@pytest.mark.parametrize("metric", METRICS)
@pytest.mark.parametrize("k", [None, 1, 4, 100])
def test_chunked_topk_matrix_equals_pruned_dense_reference(metric, k):
    X = sp.csr_matrix(random_ratings(n=50, m=30, integer=False, seed=6))
    dense = pairwise(X, metric)
    np.fill_diagonal(dense, 0.0)
    for cells, jobs in ((30, 1), (7 * 50, 2), (7 * 50, 1), (1 << 22, 1)):   # 1, 7, all rows per chunk
        S = similarity_matrix(X, metric, k=k, max_block_cells=cells, n_jobs=jobs)
        assert S.shape == (50, 50) and S.dtype == np.float32 and np.isfinite(S.data).all()
        assert (S.diagonal() == 0).all()
        for r in range(50):
            row = S[r]
            ref = dense[r][dense[r] != 0] if k is None else dense[r][dense[r] > 0]   # pruning keeps > 0
            want = np.sort(ref)[::-1][: (len(ref) if k is None else k)]
            np.testing.assert_allclose(np.sort(row.data)[::-1], want, atol=TOL)
            np.testing.assert_allclose(row.data, dense[r, row.indices], atol=TOL)


def test_include_self_and_dense_input():
    X = random_ratings(seed=7)
    S = similarity_matrix(X, "cosine", include_self=True)
    np.testing.assert_allclose(S.toarray(), cosine_similarity(X), atol=TOL)


def test_item_item_for_10k_items_in_bounded_memory():
    rng = np.random.default_rng(0)
    n_users, n_items, nnz = 3000, 10_000, 60_000
    X = sp.csr_matrix((np.ones(nnz), (rng.integers(0, n_users, nnz), rng.integers(0, n_items, nnz))),
                      shape=(n_users, n_items))
    items = X.T.tocsr()
    tracemalloc.start()
    S = similarity_matrix(items, "cosine", k=20, max_block_cells=1 << 20)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert S.shape == (n_items, n_items) and S.getnnz(1).max() <= 20
    assert peak < 120 * 2**20, f"peak {peak / 2**20:.0f} MB: a dense 10k x 10k float64 is 763 MB"
    # spot-check a few rows against sklearn
    rows = rng.choice(n_items, 5, replace=False)
    ref = cosine_similarity(items[rows], items)
    for r, i in enumerate(rows):
        ref[r, i] = 0
        got = S[i]
        np.testing.assert_allclose(got.data, ref[r, got.indices], atol=TOL)
        assert got.nnz == min(20, (ref[r] > 0).sum())
        if got.nnz:
            assert got.data.min() >= np.sort(ref[r])[::-1][got.nnz - 1] - TOL


def test_bad_input_fails_clearly():
    X = random_ratings()
    with pytest.raises(ValueError, match="unknown similarity 'cosin'"):
        pairwise(X, "cosin")
    with pytest.raises(ValueError, match="k \\(neighbours\\)"):
        similarity_matrix(X, k=0)
    with pytest.raises(ValueError, match="shrink"):
        similarity_matrix(X, shrink=-1)
    with pytest.raises(ValueError, match="unknown shrink_form 'Koren'"):
        similarity_matrix(X, shrink_form="Koren")
    with pytest.raises(ValueError, match="similarity='jaccard' takes shrink_form='koren'"):
        pairwise(X, "jaccard", shrink=1.0, shrink_form="recbole")
    with pytest.raises(ValueError, match="NaN"):
        pairwise(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="no rows"):
        pairwise(np.zeros((0, 3)))
