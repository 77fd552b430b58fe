"""evaluate() against a dense brute-force reference, and the latency harness's report."""
import numpy as np
import pytest

from recsys_lab.data import Interactions
from recsys_lab.eval import evaluate, measure_latency, ranking_metrics
from recsys_lab.models import Popularity, Random

from .contract import planted_blocks


def brute_force(model, test, masks, k):
    """Dense scores, masked with -inf, full argsort with index tiebreak, then the metrics."""
    rel = test.to_csr()
    users = np.flatnonzero(np.diff(rel.indptr))
    s = model.score(users).astype(np.float64)
    for m in masks:
        s[m.to_csr()[users].toarray() > 0] = -np.inf
    order = np.lexsort((np.tile(np.arange(s.shape[1]), (len(users), 1)), -s), axis=1)[:, :k]
    return ranking_metrics(order, rel[users], k)


@pytest.mark.parametrize("model", [Popularity(), Random(seed=4)], ids=lambda m: m.name)
def test_evaluate_equals_brute_force(model):
    train, test = planted_blocks(seed=2)
    rng = np.random.default_rng(0)
    valid = train.subset(rng.random(len(train)) < 0.2)
    model.fit(train)
    df = evaluate(model, test, exclude=valid, k=(3, 10), batch_users=7)
    for _, row in df.iterrows():
        want = brute_force(model, test, [train, valid], int(row.k))
        for m, v in want.items():
            assert row[m] == pytest.approx(v), (row.k, m)


def test_evaluate_chunking_does_not_change_results():
    train, test = planted_blocks(seed=5)
    model = Random(seed=1).fit(train)
    a = evaluate(model, test, k=(5, 20), batch_users=1)
    b = evaluate(model, test, k=(5, 20), batch_users=10_000)
    assert a.equals(b)


def test_evaluate_explicit_train_mask_replaces_the_fitted_one():
    train, test = planted_blocks()
    model = Popularity().fit(train)
    # masking nothing but the test items themselves: no test item can be recommended
    df = evaluate(model, test, train=test, k=5)
    assert df["hit"].iloc[0] == 0.0


def test_evaluate_bad_input():
    train, test = planted_blocks()
    model = Popularity().fit(train)
    with pytest.raises(ValueError, match="larger than the catalog"):
        evaluate(model, test, k=train.n_items + 1)
    with pytest.raises(ValueError, match="positive"):
        evaluate(model, test, k=0)
    other = Interactions([0], [0], np.arange(3), np.arange(4))
    with pytest.raises(ValueError, match="share one id space"):
        evaluate(model, other)
    empty_users = Interactions([], [], train.user_ids, train.item_ids)
    with pytest.raises(ValueError, match="no users with test items"):
        evaluate(model, empty_users)


def test_measure_latency_reports_everything():
    train, _ = planted_blocks()
    row = measure_latency(Popularity().fit(train), k=5, n_requests=30, warmup=3, batch_sizes=(1, 8))
    for key in ("p50_ms", "p95_ms", "p99_ms", "throughput_b1", "throughput_b8", "serving_mb",
                "peak_request_mb", "threads", "device", "cpu"):
        assert key in row
    assert 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"]
    model = Popularity().fit(train)
    seen = model.seen_
    want = model.counts_.nbytes + seen.data.nbytes + seen.indices.nbytes + seen.indptr.nbytes
    assert measure_latency(model, n_requests=5, batch_sizes=(1,))["serving_mb"] * 2**20 == pytest.approx(want)
