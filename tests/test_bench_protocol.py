"""benchmarks/recbole_protocol.py: the two general protocols and the sequential (SASRec) entry."""
from __future__ import annotations

import json
import sys
import warnings
from functools import partial
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
recbole_protocol = pytest.importorskip("recbole_protocol")


@pytest.fixture(scope="module")
def ml_dir(tmp_path_factory):
    """A GroupLens u.data: 60 users x 40 items, ratings 1-5, 20-35 events per user."""
    rng = np.random.default_rng(0)
    rows = [(u, i, int(rng.integers(1, 6)), int(rng.integers(0, 10**6)))
            for u in range(1, 61) for i in rng.choice(np.arange(1, 41), int(rng.integers(20, 36)), replace=False)]
    d = tmp_path_factory.mktemp("ml")
    (d / "u.data").write_text("".join(f"{u}\t{i}\t{r}\t{t}\n" for u, i, r, t in rows))
    return d, rows


def run(ml_dir, tmp_path, *args):
    out = tmp_path / "out.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)                   # not the official u.data
        recbole_protocol.main([str(ml_dir), "--no-implicit", "--json", str(out), *args])
    return json.loads(out.read_text())


def test_quickstart_keeps_every_rating_and_recbole_filters(ml_dir, tmp_path):
    d, rows = ml_dir
    quick = run(d, tmp_path, "--models", "pop", "--protocol", "quickstart")
    assert quick["dataset"]["n_interactions"] == len(rows) and quick["dataset"]["protocol"] == "quickstart"
    rec = run(d, tmp_path, "--models", "pop")
    n_pos = sum(r >= 3 for _, _, r, _ in rows)
    assert rec["dataset"]["protocol"] == "recbole" and rec["dataset"]["n_interactions"] <= n_pos < len(rows)
    for out in (quick, rec):
        assert 0 < out["pop"]["ndcg@10"] <= 1 and "environment" in out


def test_sasrec_runs_leave_one_out(ml_dir, tmp_path):
    d, rows = ml_dir
    out = run(d, tmp_path, "--models", "sasrec", "--protocol", "quickstart")
    res = out["sasrec"]
    assert "leave-one-out" in res["protocol"]
    assert res["dataset"]["test_users"] == 60                          # one test event per user
    assert res["config"]["loss"] == "ce" and 0 <= res["ndcg@10"] <= res["hit@10"] <= 1
    assert set(res["baselines"]) == {"pop", "itemknn"}


def test_unknown_model_fails_before_work(ml_dir, tmp_path):
    with pytest.raises(SystemExit, match="unknown model 'nope'"):
        run(ml_dir[0], tmp_path, "--models", "pop,nope")


def test_grids_span_the_issue_10_axes():
    itemknn = recbole_protocol.MODELS["itemknn"][1]
    axes = {(p["neighbourhood"], p["k"], p["shrink"], p["shrink_form"]) for p in itemknn}
    assert {n for n, *_ in axes} == {"target", "source"}
    assert {(n, 250, 10.0, f) for n in ("target", "source") for f in ("koren", "recbole")} <= axes
    assert len(axes) == len(itemknn)                                   # no duplicate grid point
    assert not any(sh == 0 and f == "recbole" for _, _, sh, f in axes)  # same as koren at 0
    bpr = recbole_protocol.MODELS["bpr"][1]
    assert 5e-4 in {p["learning_rate"] for p in bpr}
    for name in ("bpr", "neumf", "lightgcn", "ngcf"):                  # early stopping on all users
        factory, candidates = recbole_protocol.MODELS[name]
        assert factory(**candidates[0]).valid_users is None


def test_itemknn_reports_both_neighbourhoods(ml_dir, tmp_path):
    out = run(ml_dir[0], tmp_path, "--models", "itemknn")["itemknn"]
    by = out["by_neighbourhood"]
    assert list(by) == ["target", "source"]
    grid = out["grid"]
    for n, res in by.items():                                          # each: its own best on valid
        mine = [r for r in grid if r["params"]["neighbourhood"] == n]
        assert res["params"]["neighbourhood"] == n
        assert res["valid_ndcg@10"] == max(r["valid_ndcg@10"] for r in mine)
        assert 0 <= res["ndcg@10"] <= res["hit@10"] <= 1
    assert out["valid_ndcg@10"] == max(r["valid_ndcg@10"] for r in grid)
    chosen = by[out["params"]["neighbourhood"]]
    assert chosen["params"] == out["params"] and chosen["ndcg@10"] == out["ndcg@10"]


def test_parallel_grid_gives_the_sequential_results_and_timings(ml_dir, tmp_path):
    d = ml_dir[0]
    one = run(d, tmp_path, "--models", "pop,ease")
    two = run(d, tmp_path, "--models", "pop,ease", "--jobs", "2", "--threads", "1")
    for name in ("pop", "ease"):
        for key in ("ndcg@10", "recall@10", "params", "valid_ndcg@10"):
            assert one[name][key] == two[name][key], (name, key)
        assert [r["valid_ndcg@10"] for r in one[name]["grid"]] == [r["valid_ndcg@10"] for r in two[name]["grid"]]
        t = two[name]["timing"]
        assert t["configs"] == len(two[name]["grid"]) and t["fit_seconds"] >= 0
    assert two["timing"]["jobs"] == 2 and two["timing"]["wall_seconds"] > 0
    assert len(two["environment"]["load_average_at_start"]) == 3
    with pytest.raises(SystemExit, match="--jobs, --threads and --valid-every"):
        run(d, tmp_path, "--models", "pop", "--jobs", "0")


def test_learned_model_timing_counts_epochs_and_validations(ml_dir, tmp_path, monkeypatch):
    factory, _ = recbole_protocol.MODELS["bpr"]
    monkeypatch.setitem(recbole_protocol.MODELS, "bpr", (partial(factory, epochs=4, embedding_size=8),
                                                         [{"learning_rate": 1e-3}]))
    for every in (1, 2):                                               # patience 10: no early stop
        out = run(ml_dir[0], tmp_path, "--models", "bpr", "--valid-every", str(every))
        row, t = out["bpr"]["grid"][0], out["bpr"]["timing"]
        assert row["epochs"] == t["epochs"] == 4 and row["validations"] == t["validations"] == 4 // every
        assert t["train_seconds_per_epoch"] > 0 and t["seconds_per_validation"] > 0
        assert out["timing"]["valid_every"] == every


def test_synthetic_ml1m_preset_has_the_stated_size():
    """ML-1M's size after the protocol's filtering (834,449 there): each pair once, 10-core."""
    train, valid, test, info = recbole_protocol.protocol_splits("synthetic-ml1m", 2020,
                                                                **recbole_protocol.PROTOCOLS["recbole"])
    assert (info["n_users"], info["n_items"], info["n_interactions"]) == (6000, 3000, 833_870)
    assert info["rating_threshold"] is None and len(train) + len(valid) + len(test) == 833_870
