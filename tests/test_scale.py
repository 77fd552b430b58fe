"""The scale grid: predicted costs, predicted skips (never run), chunked evaluation at 10^6 items,
and rows that equal an independent computation on the same split."""
import tracemalloc

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import Interactions
from recsys_lab.eval import evaluate, measure_latency
from recsys_lab.experiments.scale import ScaleConfig, combine, curves, plan, run_scale
from recsys_lab.experiments.scale_cost import exponents, shop_size, wrapper_cost
from recsys_lab.experiments.scale_task import shop_splits
from recsys_lab.models import EASE, ItemKNN, LightGCN, Popularity, PureSVD, Random, Recommender, TwoTower
from recsys_lab.models.cost import CostEstimate, human_bytes, train_csr_bytes

TINY = dict(sizes=(200,), eval_users=60, n_requests=20, warmup=2, throughput_batch=16,
            ef_search=(8, 64), nprobe=(2,))


def peak_bytes(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def fit_peak(model, train) -> int:
    """Peak bytes numpy allocates while ``model`` fits (the training CSR included)."""
    return peak_bytes(lambda: model.fit(train))


@pytest.fixture(scope="module")
def shop():
    return shop_splits(3000, 1500, 60_000, 0, 200)


def test_default_estimate_is_the_training_csr_and_one_pass():
    est = Recommender.estimate_cost(Popularity(), 10, 20, 1000)
    assert isinstance(est, CostEstimate)
    assert est.memory_bytes == train_csr_bytes(10, 1000) + 4 * 20 == 24 * 1000 + 8 * 11 + 80
    assert est.seconds > 0 and est.exceeds(memory_bytes=1e9, seconds=1e9) == []


@pytest.mark.parametrize("model", [Popularity(), EASE(), ItemKNN(k=50), PureSVD(embedding_size=32)],
                         ids=lambda m: m.name)
def test_predicted_memory_bounds_the_measured_peak(shop, model):
    train = shop[0]
    est = model.estimate_cost(train.n_users, train.n_items, len(train))
    measured = fit_peak(model, train)
    assert measured <= est.memory_bytes, (human_bytes(measured), human_bytes(est.memory_bytes))
    assert measured >= est.memory_bytes / 8, "a bound far above the truth predicts nothing"


def test_ease_memory_is_its_dense_matrices(shop):
    train = shop[0]
    n = train.n_items
    measured = fit_peak(EASE(), train)
    assert 0.8 * 20 * n * n <= measured <= EASE().estimate_cost(train.n_users, n, len(train)).memory_bytes


def test_predictions_grow_as_the_analytic_costs():
    def at(model, n):
        s = shop_size(n)
        return model.estimate_cost(s["n_users"], n, s["n_events"])
    ease = [at(EASE(), n) for n in (10**4, 10**5)]
    assert ease[1].memory_bytes / ease[0].memory_bytes == pytest.approx(100, rel=0.01)     # n^2
    assert ease[1].seconds / ease[0].seconds == pytest.approx(1000, rel=0.05)            # n^3
    svd = [at(PureSVD(), n).seconds for n in (10**4, 10**5)]
    assert 8 < svd[1] / svd[0] < 12                                                       # linear
    knn = [at(ItemKNN(), n).seconds for n in (10**5, 10**6)]
    assert knn[1] / knn[0] == pytest.approx(100, rel=0.05)                                # n^2 blocks


def test_ease_at_a_million_items_is_predicted_and_skipped_with_its_estimate(capsys):
    tasks, skipped = plan(ScaleConfig(sizes=(10**6,), families=("EASE", "PureSVD")))
    assert [t["family"] for t in tasks] == ["PureSVD"]
    (row,) = skipped
    assert row["status"] == "skipped" and row["family"] == "EASE"
    assert row["est_memory_mb"] == pytest.approx(20 * 1e12 / 2**20, rel=1e-3)             # 20 n^2 bytes
    assert row["reason"].startswith("EASE at 10^6 items needs 18.2 TiB for the dense 10^6 x 10^6 Gram matrix")
    assert row["reason"].endswith(": skipped")
    assert row["reason"] in capsys.readouterr().out


def test_a_model_beyond_the_budget_is_skipped_not_run(monkeypatch, capsys):
    def refuse(self, train):
        raise AssertionError("a skipped model was fitted")
    monkeypatch.setattr(EASE, "_fit", refuse)
    monkeypatch.setattr(LightGCN, "_fit", refuse)
    cfg = ScaleConfig(**TINY, families=("Popularity", "EASE", "LightGCN"), memory_budget_gb=0.0005,
                      fit_budget_s=0.05)                                  # 0.5 MiB, 50 ms
    rows = run_scale(cfg, backend="serial")
    by = rows.set_index("family")
    assert by.loc["Popularity", "status"] == "ok"
    assert by.loc["EASE", "status"] == "skipped" and "for the dense" in by.loc["EASE", "reason"]
    assert by.loc["LightGCN", "status"] == "skipped" and "to fit" in by.loc["LightGCN", "reason"]
    assert by.loc["EASE", "est_memory_mb"] > 0.0005 * 1024 and by.loc["LightGCN", "est_fit_s"] > 0.05
    out = capsys.readouterr().out
    assert "EASE at 200 items needs" in out and "LightGCN at 200 items needs" in out


def test_evaluate_and_measure_latency_stay_chunked_at_a_million_items():
    n_items, n_users = 10**6, 100
    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(n_users), 5)
    train = Interactions(users, rng.integers(0, n_items, users.size), np.arange(n_users), np.arange(n_items))
    test = Interactions(np.arange(n_users), rng.integers(0, n_items, n_users), np.arange(n_users),
                        np.arange(n_items))
    model = Random(seed=0).fit(train)          # distinct float scores (integer ties make np.partition slow)
    dense = n_users * n_items * 4                                         # users x items float32: 400 MB
    peak = peak_bytes(lambda: evaluate(model, test, k=10))
    assert peak < dense / 10, human_bytes(peak)
    batch = 32                                                            # a dense batch: 128 MB
    peak = peak_bytes(lambda: measure_latency(model, n_requests=3, warmup=1, batch_sizes=(batch,)))
    assert peak < batch * n_items * 4 / 4, human_bytes(peak)


@pytest.fixture(scope="module")
def tiny_rows():
    return run_scale(ScaleConfig(**TINY, families=("Popularity", "PureSVD")), backend="serial", verbose=False)


def test_rows_equal_an_independent_run_on_the_same_split(tiny_rows):
    size = shop_size(200)
    train, valid, test, users = shop_splits(size["n_users"], 200, size["n_events"], 0, 60)
    rel = test.subset(np.isin(test.user, users))
    for family, model in (("Popularity", Popularity()), ("PureSVD", PureSVD(embedding_size=64, seed=0))):
        ref = evaluate(model.fit(train), rel, k=10, exclude=valid).iloc[0]
        row = tiny_rows[(tiny_rows.family == family) & (tiny_rows.variant == "exact")].iloc[0]
        assert row["ndcg@10"] == pytest.approx(ref["ndcg"], abs=1e-12)
        assert row["recall@10"] == pytest.approx(ref["recall"], abs=1e-12)
        assert row["evaluated_users"] == len(users) == 60
        assert row["overlap@10"] == 1.0 and row["train_events"] == len(train)


def test_rows_carry_estimates_measurements_and_every_knob(tiny_rows):
    svd = tiny_rows[tiny_rows.family == "PureSVD"]
    assert list(svd["variant"]) == ["exact", "HNSW", "HNSW", "norm-ranged HNSW", "norm-ranged HNSW",
                                    "IVF-PQ", "int8"]
    assert list(svd["knob"]) == ["", "ef_search=8", "ef_search=64", "ef_search=8", "ef_search=64", "nprobe=2", ""]
    assert (tiny_rows["status"] == "ok").all()
    for col in ("fit_s", "est_fit_s", "fit_rss_mb", "est_memory_mb", "serving_mb", "p50_ms", "p99_ms",
                "throughput", "rss_peak_mb"):
        assert tiny_rows[col].notna().all() and (tiny_rows[col] >= 0).all(), col
    hnsw = svd[svd.variant == "HNSW"]
    assert (hnsw["index_build_s"] > 0).all() and hnsw["est_index_fit_s"].notna().all()
    assert hnsw["index_build_s"].nunique() == 1, "one index, its search knob swept"
    assert ((svd["overlap@10"] > 0) & (svd["overlap@10"] <= 1)).all()
    picked = curves(tiny_rows)
    assert set(picked["label"]) == {"Popularity", "PureSVD", "PureSVD + HNSW", "PureSVD + norm-ranged HNSW",
                                    "PureSVD + IVF-PQ", "PureSVD + int8"}


def test_exponents_are_the_log_log_slopes():
    n = np.array([1e3, 1e4, 1e5, 1e6])
    rows = pd.DataFrame({"family": "F", "variant": "exact", "knob": "", "status": "ok", "n_items": n,
                         "fit_s": 3.0 * n**2.5, "est_fit_s": 2.0 * n**3,
                         "p99_ms": np.r_[1.0, 1.0, 10.0, 100.0]})
    rows.loc[3, "status"] = "skipped"                                     # not measured: not fitted
    ex = exponents(rows, {"fit_s": "est_fit_s", "p99_ms": None}).set_index("metric")
    assert ex.loc["fit_s", "slope"] == pytest.approx(2.5)
    assert ex.loc["fit_s", "analytic_slope"] == pytest.approx(3.0)
    assert ex.loc["fit_s", "sizes"] == 3
    ref = np.polyfit(np.log10(n[:3]), np.log10([1.0, 1.0, 10.0]), 1)[0]
    assert ex.loc["p99_ms", "slope"] == pytest.approx(ref)
    assert ex.loc["p99_ms", "slope_last"] == pytest.approx(1.0)


def test_wrapper_costs_and_bad_configs():
    hnsw = wrapper_cost({"name": "ANNIndex", "params": {"backend": "hnsw", "M": 32}}, 10, 10**6, 64)
    assert hnsw.memory_bytes == 2 * 10**6 * (4 * 64 + 9 * 32)
    with pytest.raises(ValueError, match="no cost formula"):
        wrapper_cost({"name": "Pruned", "params": {}}, 10, 100, 8)
    with pytest.raises(ValueError, match="unknown famil"):
        ScaleConfig(families=("EASY",))
    with pytest.raises(ValueError, match="budgets must be positive"):
        ScaleConfig(fit_budget_s=0)
    with pytest.raises(ValueError, match="at least 10 items"):
        ScaleConfig(sizes=(5,))
    with pytest.raises(ValueError, match="n_requests must be a positive integer"):
        ScaleConfig(n_requests=0)
    with pytest.raises(ValueError, match="unknown variant"):
        ScaleConfig(variants=("HNSWW",))


def test_variants_option_runs_only_the_named_accelerators():
    tasks, _ = plan(ScaleConfig(sizes=(10**3,), families=("Popularity", "PureSVD"), variants=("int8",)),
                    verbose=False)
    assert [(t["family"], list(t["variants"])) for t in tasks] == [("Popularity", ["exact"]),
                                                                   ("PureSVD", ["exact", "int8"])]


def test_two_tower_and_lightgcn_estimates_follow_their_epochs():
    one, two = TwoTower(epochs=1), TwoTower(epochs=2)
    assert two.estimate_cost(1000, 500, 9000).seconds == pytest.approx(
        2 * one.estimate_cost(1000, 500, 9000).seconds)
    assert LightGCN(epochs=4).estimate_cost(100, 50, 900).seconds == pytest.approx(
        4 * LightGCN(epochs=1).estimate_cost(100, 50, 900).seconds)


def test_combine_prefers_live_rows_and_fills_the_rest_from_the_record():
    def row(n, family, status="ok", variant="exact", knob="", **kw):
        return {"n_items": n, "family": family, "variant": variant, "knob": knob, "status": status, **kw}
    live = pd.DataFrame([row(10, "A", fit_s=1.0), row(10, "B", "skipped"), row(10, "C", "skipped")])
    rec = pd.DataFrame([row(10, "A", fit_s=9.0), row(10, "B", fit_s=2.0), row(100, "A", fit_s=3.0)])
    out = combine(live, rec, source="json").set_index(["n_items", "family"])
    assert out.loc[(10, "A"), "fit_s"] == 1.0 and out.loc[(10, "A"), "source"] == "live"
    assert out.loc[(10, "B"), "fit_s"] == 2.0 and out.loc[(10, "B"), "source"] == "json"   # live budget skipped it
    assert out.loc[(10, "C"), "status"] == "skipped" and out.loc[(100, "A"), "source"] == "json"
    assert len(out) == 4
