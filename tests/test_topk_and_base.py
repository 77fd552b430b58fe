"""topk, masking and the base-class plumbing (the contract suite covers each model)."""
import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.models.base import Recommender, mask_rows, topk


@pytest.mark.parametrize("seed", range(5))
def test_topk_matches_full_sort_with_index_tiebreak(seed):
    rng = np.random.default_rng(seed)
    s = rng.integers(0, 6, size=(20, 50)).astype(np.float32)   # many ties
    s[rng.random(s.shape) < 0.05] = np.nan
    for k in (1, 7, 49, 50):
        items, vals = topk(s, k)
        key = np.where(np.isnan(s), -np.inf, s)
        want = np.lexsort((np.tile(np.arange(50), (20, 1)), -key), axis=1)[:, :k]
        np.testing.assert_array_equal(items, want)
        np.testing.assert_array_equal(vals, np.take_along_axis(key, want, 1))


def test_topk_rows_do_not_depend_on_batch():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 3, size=(8, 30)).astype(np.float32)
    together = topk(s, 5)[0]
    alone = np.vstack([topk(s[i:i + 1], 5)[0] for i in range(8)])
    np.testing.assert_array_equal(together, alone)


@pytest.mark.parametrize("k", [0, -1, 31])
def test_topk_rejects_bad_k(k):
    with pytest.raises(ValueError, match="k must be in 1..30"):
        topk(np.zeros((2, 30)), k)


def test_mask_rows():
    s = np.zeros((2, 4), dtype=np.float32)
    csr = sp.csr_matrix(np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 0]]))
    mask_rows(s, csr, np.array([2, 0]))
    assert np.isneginf(s).tolist() == [[False, False, True, False], [True, False, False, True]]


def test_load_refuses_unknown_class(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, __meta__=np.array('{"class": "os.system", "config": {}}'))
    with pytest.raises(ValueError, match="unknown model class"):
        Recommender.load(path)
