"""compare(): the standard row equals evaluate() and the latency harness; one percentile helper."""
import math

import numpy as np
import pytest

from recsys_lab.eval import batch_latency, compare, evaluate, latency_summary
from recsys_lab.eval.compare import accuracy_columns
from recsys_lab.models import BPRMF, EASE, Popularity

from .contract import planted_blocks


@pytest.fixture(scope="module")
def split():
    train, test = planted_blocks(seed=3)
    valid = train.subset(np.random.default_rng(0).random(len(train)) < 0.2)
    return train, valid, test


def naive_percentile(values, p):
    """Linear interpolation between closest ranks (numpy's default), by hand."""
    xs = sorted(values)
    rank = p / 100 * (len(xs) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (rank - lo)


def test_latency_summary_is_the_interpolated_percentile():
    ms = [5.0, 1.0, 3.0, 2.0, 100.0, 4.0, 7.5]
    s = latency_summary(ms, prefix="x_")
    for p in (50, 95, 99):
        assert s[f"x_p{p}_ms"] == pytest.approx(naive_percentile(ms, p), rel=1e-12)
    assert s["x_mean_ms"] == pytest.approx(sum(ms) / len(ms))
    with pytest.raises(ValueError, match="no timings"):
        latency_summary([])


def test_batch_latency_counts_and_throughput(split):
    model = Popularity().fit(split[0])
    out = batch_latency(model, batch_size=4, n_requests=12, warmup=2)
    assert out["n_requests"] == 12 and out["batch_size"] == 4
    assert out["throughput"] == pytest.approx(4 * 1e3 / out["mean_ms"])
    assert 0 < out["p50_ms"] <= out["p95_ms"] <= out["p99_ms"]
    for bad in ({"batch_size": 0}, {"n_requests": 0}, {"warmup": -1}):
        with pytest.raises(ValueError, match="must be >= 1"):
            batch_latency(model, **bad)


def test_compare_fits_and_reports_the_standard_row(split):
    train, valid, test = split
    ease = EASE(reg=20.0)
    table = compare({"ease": ease, "pop": Popularity()}, test, train=train, valid=valid, k=(5, 10),
                    batch_size=16, n_requests=20, warmup=2)
    assert list(table["model"]) == ["ease", "pop"] and ease.is_fitted()
    ref = evaluate(EASE(reg=20.0).fit(train, valid=valid), test, exclude=valid, k=(5, 10)).set_index("k")
    row = table.iloc[0]
    for k in (5, 10):
        for m in ("ndcg", "recall", "precision", "hit", "mrr", "coverage"):
            assert row[f"{m}@{k}"] == ref.loc[k, m], (m, k)
    assert set(accuracy_columns([5, 10])) <= set(table.columns)
    assert row["n_users"] == ref.loc[5, "n_users"]
    assert (table["fit_s"] > 0).all() and (table["throughput_batch"] == 16).all()
    assert ((table["p50_ms"] <= table["p95_ms"]) & (table["p95_ms"] <= table["p99_ms"])).all()
    assert (table["throughput"] > 0).all()
    assert row["serving_mb"] == ease.serving_bytes() / 2**20


def test_fitted_models_keep_their_state_and_report_given_fit_seconds(split):
    train, valid, test = split
    pop = Popularity().fit(train)
    table = compare([pop], test, valid=valid, fit_seconds={"Popularity": 1.5}, batch_size=None,
                    n_requests=5, warmup=0)
    assert table.loc[0, "fit_s"] == 1.5 and np.isnan(table.loc[0, "throughput"])
    assert np.isnan(compare([pop], test, n_requests=5, warmup=0, batch_size=None).loc[0, "fit_s"])
    bpr = BPRMF(embedding_size=4, epochs=1, batch_size=256, seed=0, device="cpu").fit(train)
    reported = compare([bpr], test, n_requests=3, warmup=0, batch_size=None).loc[0, "fit_s"]
    assert reported == bpr.fit_seconds_ > 0, "a model's own fit time is reported"


class CountingPopularity(Popularity):
    """Popularity that keeps the users of every recommend call."""

    def recommend(self, users, *args, **kwargs):
        self.calls = getattr(self, "calls", []) + [np.atleast_1d(users).tolist()]
        return super().recommend(users, *args, **kwargs)


def test_latency_users_draws_the_timed_requests_from_them_only(split):
    train, _, test = split
    model = CountingPopularity().fit(train)
    pool = np.array([3, 5])
    compare({"pop": model}, test, latency_users=pool, batch_size=4, n_requests=20, warmup=2)
    timed = model.calls[1:]  # evaluate() asks for all test users in one call first
    # time_calls: the warm-up calls, then every batch timed (warm-up ones included, then dropped)
    assert [len(c) for c in timed] == [1] * (2 + 22) + [4] * (1 + 6)
    assert set(sum(timed, [])) == {3, 5}
    plain = CountingPopularity().fit(train)
    compare({"pop": plain}, test, batch_size=None, n_requests=50, warmup=0)
    assert len(set(sum(plain.calls[1:], []))) > 2, "without latency_users the draw spans all users"


def test_long_form_has_one_row_per_batch_size(split):
    train, _, test = split
    table = compare({"pop": Popularity().fit(train)}, test, batch_sizes=[1, 4], n_requests=6, warmup=1)
    assert table["batch_size"].tolist() == [1, 4] and table["ndcg@10"].nunique() == 1
    assert "throughput_batch" not in table


def test_compare_bad_input(split):
    train, _, test = split
    with pytest.raises(ValueError, match="'ease' is not fitted and no train split"):
        compare({"ease": EASE()}, test)
    with pytest.raises(ValueError, match="both named 'Popularity'"):
        compare([Popularity().fit(train), Popularity().fit(train)], test)
    with pytest.raises(ValueError, match="at least one model"):
        compare({}, test)
    for bad in (0, True, 2.5, "8"):
        with pytest.raises(ValueError, match="batch_size must be a positive integer"):
            compare([Popularity().fit(train)], test, batch_size=bad)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        compare([Popularity().fit(train)], test, k=2.7)
