"""Batched: chunked recommend equals the model; the serving simulation against a reference queue."""
import numpy as np
import pytest

from recsys_lab.accel import Batched, batch_curve, poisson_arrivals, summarize_serving
from tests.accel_helpers import svd
from tests.contract import planted_blocks


@pytest.fixture(scope="module")
def model():
    return svd().fit(planted_blocks()[0])


def test_chunked_recommend_equals_the_model(model):
    users = np.arange(model.n_users_)
    a = Batched(model, max_batch=7).recommend(users, k=5)
    b = model.recommend(users, k=5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def reference_queue(t, service_s, B, wait):
    """Event-by-event replay with the recorded per-batch service times: returns dispatch times."""
    n, i, free, out, b = len(t), 0, 0.0, np.empty(len(t)), 0
    while i < n:
        now = max(free, t[i])
        # wait for the batch to fill, at most until the oldest request's deadline
        while True:
            waiting = [j for j in range(i, n) if t[j] <= now][:B]
            if len(waiting) == B or now >= t[i] + wait:
                break
            later = [x for x in t[i:n] if x > now]
            now = min(t[i] + wait, later[0]) if later else t[i] + wait
            now = max(now, free)
        j = i + len(waiting)
        out[i:j] = now
        free, i, b = now + service_s[b], j, b + 1
    return out


@pytest.mark.parametrize("B,wait_ms,rate", [(1, 0.0, 500), (8, 2.0, 2000), (64, 5.0, 20000)])
def test_serving_simulation_matches_a_reference_queue(model, B, wait_ms, rate):
    t = poisson_arrivals(300, rate, seed=1)
    users = np.random.default_rng(0).integers(0, model.n_users_, 300)
    log = Batched(model, max_batch=B, max_wait_ms=wait_ms).serve(t, users, k=5)
    assert (log["batch"] <= B).all() and (log["latency_ms"] >= log["service_ms"]).all()
    starts = np.flatnonzero(np.r_[True, np.diff(log["dispatch_s"].to_numpy()) != 0])
    service = log["service_ms"].to_numpy()[starts] / 1e3
    np.testing.assert_allclose(log["dispatch_s"], reference_queue(t, service, B, wait_ms / 1e3), atol=1e-12)
    np.testing.assert_array_equal(np.diff(np.r_[starts, len(t)]), log["batch"].to_numpy()[starts])
    summary = summarize_serving(log)
    assert summary["p50_ms"] <= summary["p99_ms"] and summary["mean_batch"] <= B
    if B == 1:
        assert (log["batch"] == 1).all()


def test_burst_fills_whole_batches(model):
    log = Batched(model, max_batch=4, max_wait_ms=1.0).serve(np.zeros(10), np.arange(10), k=3)
    assert log["batch"].tolist() == [4] * 4 + [4] * 4 + [2] * 2
    assert (log["wait_ms"].iloc[:4] == 0).all()


def test_batch_curve_and_inputs(model):
    curve = batch_curve(model, batch_sizes=(1, 4, 16), repeats=2)
    assert curve["batch"].tolist() == [1, 4, 16]
    np.testing.assert_allclose(curve["throughput_ups"], curve["batch"] / (curve["latency_ms"] / 1e3))
    arrivals = poisson_arrivals(20_000, 100.0, seed=0)
    assert np.diff(arrivals).mean() == pytest.approx(0.01, rel=0.03)
    with pytest.raises(ValueError, match="sorted"):
        Batched(model).serve([0.2, 0.1], [0, 1])
    with pytest.raises(ValueError, match="max_batch"):
        Batched(max_batch=0)
