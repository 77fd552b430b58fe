"""Metrics against a naive per-user reference written straight from protocol.md."""
import math

import numpy as np
import pytest
import scipy.sparse as sp

from recsys_lab.eval import coverage, ranking_metrics


def naive_metrics(top_items, relevant_sets, k):
    """One user at a time, one rank at a time: the definitions, nothing vectorised."""
    sums = {m: 0.0 for m in ("recall", "precision", "ndcg", "mrr", "hit")}
    n = 0
    for row, rel in zip(top_items, relevant_sets):
        if not rel:
            continue
        n += 1
        seen, hits, dcg, first = set(), 0, 0.0, None
        for rank, item in enumerate(row[:k], start=1):
            if item < 0 or item in seen:
                continue
            seen.add(item)
            if item in rel:
                hits += 1
                dcg += 1 / math.log2(rank + 1)
                first = first or rank
        idcg = sum(1 / math.log2(r + 1) for r in range(1, min(len(rel), k) + 1))
        sums["hit"] += hits > 0
        sums["precision"] += hits / k
        sums["recall"] += hits / len(rel)
        sums["ndcg"] += dcg / idcg
        sums["mrr"] += 1 / first if first else 0.0
    return {m: v / n for m, v in sums.items()}


def random_case(rng, n_users, n_items, width, p_rel=0.05, p_empty=0.2, dup=False):
    rel = (rng.random((n_users, n_items)) < p_rel)
    rel[rng.random(n_users) < p_empty] = False                     # users without relevant items
    rel[0] = False
    rel[1, :3] = True                                              # at least one user with items
    if dup:                                                        # rows may repeat items
        top = rng.integers(0, n_items, size=(n_users, width))
    else:
        top = np.argsort(rng.random((n_users, n_items)), axis=1)[:, :width]
    return top, sp.csr_matrix(rel), [set(np.flatnonzero(r)) for r in rel]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 5, 10, 40])
def test_matches_naive_reference(seed, k):
    rng = np.random.default_rng(seed)
    top, rel, sets = random_case(rng, n_users=60, n_items=40, width=max(k, 10), dup=seed % 2 == 1)
    got = ranking_metrics(top, rel, k)
    want = naive_metrics(top, sets, k)
    for m in want:
        assert got[m] == pytest.approx(want[m], abs=1e-12), m


def test_k_larger_than_catalog_scores_the_short_list():
    """A catalog of 5 items cannot fill a top-10: the list is scored as is, precision over k."""
    rng = np.random.default_rng(1)
    top, rel, sets = random_case(rng, n_users=30, n_items=5, width=5, p_rel=0.4)
    got = ranking_metrics(top, rel, 10)
    want = naive_metrics(top, sets, 10)
    assert got == pytest.approx(want)
    assert got["recall"] == pytest.approx(1.0)  # every relevant item is somewhere in the 5


def test_padding_and_hand_values():
    # user 0: relevant {2, 5}; ranked [5, 1, 2, -1] -> hits at ranks 1 and 3
    top = np.array([[5, 1, 2, -1], [0, 1, 2, 3]])
    rel = sp.csr_matrix(np.array([[0, 0, 1, 0, 0, 1], [0, 0, 0, 0, 0, 0]]))
    m = ranking_metrics(top, rel, 4)
    dcg = 1 + 1 / math.log2(4)
    idcg = 1 + 1 / math.log2(3)
    assert m == pytest.approx({"recall": 1.0, "precision": 0.5, "ndcg": dcg / idcg, "mrr": 1.0, "hit": 1.0})


def test_ties_in_ranked_lists_count_once():
    top = np.array([[3, 3, 3, 1]])
    rel = sp.csr_matrix(np.array([[0, 1, 0, 1]]))
    m = ranking_metrics(top, rel, 4)
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["ndcg"] == pytest.approx((1 + 1 / math.log2(5)) / (1 + 1 / math.log2(3)))


def test_bad_arguments():
    rel = sp.csr_matrix(np.eye(3))
    with pytest.raises(ValueError, match="k must be a positive"):
        ranking_metrics(np.zeros((3, 2), int), rel, 0)
    with pytest.raises(ValueError, match="n_users=3"):
        ranking_metrics(np.zeros((2, 2), int), rel, 1)


def test_no_relevant_users_gives_nan():
    m = ranking_metrics(np.zeros((2, 2), int), sp.csr_matrix((2, 4)), 2)
    assert all(math.isnan(v) for v in m.values())


def test_coverage():
    assert coverage(np.array([[0, 1], [1, 2], [-1, 2]]), 10) == pytest.approx(0.3)
