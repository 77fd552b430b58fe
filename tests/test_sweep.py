"""The sweep runner: grid expansion, accuracy equal to evaluate(), the on-disk cache, the backends
(Ray: tests/test_sweep_ray.py; cache integrity: tests/test_sweep_cache.py)."""
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import random_split, synthetic_shop
from recsys_lab.eval import evaluate
from recsys_lab.eval.pareto import pareto_front
from recsys_lab.eval.sweep import data_hash, expand_grid, label, run_spec, run_sweep
from recsys_lab.models import EASE
from recsys_lab.models.base import Recommender
from recsys_lab.models.svd import PureSVD

GRID = [{"model": "Popularity"},
        {"model": "EASE", "params": {"reg": [10.0, 100.0]}},
        {"model": "PureSVD", "params": {"embedding_size": 8},
         "accelerators": [None, {"name": "Quantized", "params": {"dtype": ["int8", "fp16"]}}]}]
QUICK = {"batch_sizes": [1, 8], "n_requests": 10, "warmup": 2}
SPLIT = {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 0}


@pytest.fixture(scope="module")
def data():
    return synthetic_shop(n_users=120, n_items=70, n_events=2400, seed=5)


@pytest.fixture(scope="module")
def serial(data, tmp_path_factory):
    cache = tmp_path_factory.mktemp("sweep-cache")
    return run_sweep(GRID, data=data, split=SPLIT, cache_dir=cache, backend="serial",
                     evaluation=QUICK), cache


ACCURACY = ["label", "batch_size", "ndcg@10", "recall@10", "hit@10", "mrr@10", "coverage"]


def test_grid_expands_to_the_cartesian_product():
    configs = expand_grid(GRID)
    assert [label(c) for c in configs] == [
        "Popularity", "EASE(reg=10.0)", "EASE(reg=100.0)", "PureSVD(embedding_size=8)",
        "PureSVD(embedding_size=8) + Quantized(dtype=int8)", "PureSVD(embedding_size=8) + Quantized(dtype=fp16)"]
    chain = expand_grid([{"model": "PureSVD", "params": {"embedding_size": [4, 8]},
                          "accelerators": [[{"name": "Quantized", "params": {"dtype": ["int8", "fp16"]}},
                                            {"name": "Cached", "params": {"capacity": [10, 100]}}]]}])
    assert len(chain) == 2 * 2 * 2 and all(len(c["accel"]) == 2 for c in chain)
    assert len(expand_grid(GRID + GRID)) == len(configs), "duplicates are run once"


def test_bad_grids_fail_before_any_fit():
    with pytest.raises(ValueError, match="unknown model or accelerator 'EAZE'"):
        expand_grid([{"model": "EAZE"}])
    with pytest.raises(ValueError, match=r"EASE: unknown parameter\(s\) \['lambda'\]"):
        expand_grid([{"model": "EASE", "params": {"lambda": 1.0}}])
    with pytest.raises(ValueError, match="EASE is not an accelerator"):
        expand_grid([{"model": "PureSVD", "accelerators": [{"name": "EASE"}]}])
    with pytest.raises(ValueError, match=r"Quantized: unknown parameter\(s\) \['bits'\]"):
        expand_grid([{"model": "PureSVD", "accelerators": [{"name": "Quantized", "params": {"bits": 4}}]}])
    with pytest.raises(ValueError, match="unknown key"):
        expand_grid([{"model": "EASE", "knobs": {}}])
    with pytest.raises(ValueError, match="backend"):
        run_sweep(GRID, backend="dask")
    with pytest.raises(ValueError, match="unknown preset"):
        run_spec("huge")


def test_data_hash_follows_the_arrays(data):
    a, b = random_split(data, seed=0), random_split(data, seed=0)
    assert data_hash(*a) == data_hash(*b)
    assert data_hash(*a) != data_hash(*random_split(data, seed=1))
    moved = a[0].subset(np.arange(len(a[0])))
    moved.item[0] = (moved.item[0] + 1) % moved.n_items
    assert data_hash(moved, a[1], a[2]) != data_hash(*a)


def test_rows_hold_evaluate_accuracy_and_the_pareto_front(serial, data):
    df, _ = serial
    assert len(df) == 6 * len(QUICK["batch_sizes"]) and not df["cached"].any()
    train, valid, test = random_split(data, **{k: v for k, v in SPLIT.items() if k != "method"})
    for reg in (10.0, 100.0):
        ref = evaluate(EASE(reg=reg).fit(train), test, exclude=valid, k=10).iloc[0]
        rows = df[df["label"] == f"EASE(reg={reg})"]
        np.testing.assert_allclose(rows["ndcg@10"], ref["ndcg"], rtol=1e-12)
        np.testing.assert_allclose(rows["recall@10"], ref["recall"], rtol=1e-12)
        assert set(rows["param.reg"]) == {reg}
    for b, g in df.groupby("batch_size"):
        pd.testing.assert_series_equal(g["pareto"], pareto_front(g, "p99_ms", "ndcg@10"), check_names=False)
    assert (df["p50_ms"] <= df["p99_ms"]).all() and (df["throughput"] > 0).all()
    q = df[df["accel"] == "Quantized"]
    assert set(q["accel.dtype"]) == {"int8", "fp16"}
    bare = df[(df["model"] == "PureSVD") & (df["accel"] == "none")]["serving_mb"].iloc[0]
    assert (q["serving_mb"] > 0).all() and bare > 0


def test_second_run_hits_the_cache_without_fitting(serial, data, monkeypatch):
    df, cache = serial
    monkeypatch.setattr(Recommender, "fit", lambda *a, **k: pytest.fail("a cached configuration was refitted"))
    again = run_sweep(GRID, data=data, split=SPLIT, cache_dir=cache, backend="serial", evaluation=QUICK)
    assert again["cached"].all()
    pd.testing.assert_frame_equal(again.drop(columns="cached"), df.drop(columns="cached"))
    files = sorted(cache.glob("*.json"))
    assert len(files) == 6 and all(json.loads(f.read_text())["key"] == f.stem for f in files)
    for f in (cache / "models").glob("*.npz"):              # fitted models: plain arrays, no pickle
        with np.load(f, allow_pickle=False) as z:
            assert z.files


def test_new_accelerator_reuses_the_fitted_base_model(serial, data, monkeypatch):
    _, cache = serial
    grid = [{"model": "PureSVD", "params": {"embedding_size": 8},
             "accelerators": [{"name": "LowRank", "params": {"rank": 4}}]}]
    monkeypatch.setattr(PureSVD, "fit", lambda *a, **k: pytest.fail("the base model was refitted"))
    df = run_sweep(grid, data=data, split=SPLIT, cache_dir=cache, backend="serial", evaluation=QUICK)
    assert not df["cached"].any() and (df["accel"] == "LowRank").all()


def test_a_changed_split_is_a_different_key(serial, data):
    df, cache = serial
    other = run_sweep([{"model": "Popularity"}], data=data, split={**SPLIT, "seed": 1}, cache_dir=cache,
                      backend="serial", evaluation=QUICK)
    assert not other["cached"].any() and other["key"].iloc[0] not in set(df["key"])


def test_process_backend_matches_serial(serial, data):
    df, _ = serial
    par = run_sweep(GRID, data=data, split=SPLIT, cache_dir=None, backend="process", n_jobs=2,
                    evaluation=QUICK)
    pd.testing.assert_frame_equal(par[ACCURACY], df[ACCURACY])
    assert (par["threads"] == max(1, (os.cpu_count() or 1) // 2)).all() and not par["cached"].any()


def test_progress_bars_cover_the_tasks(data, capsys):
    run_sweep(GRID[:2], data=data, split=SPLIT, cache_dir=None, backend="serial", evaluation=QUICK,
              progress=True)
    err = capsys.readouterr().err
    assert "sweep (serial)" in err and "3/3" in err, err[-500:]


@pytest.mark.parametrize("code", [
    # the accelerators use eval's latency harness, never the sweep (nor the experiments above them)
    "import recsys_lab.accel; bad = [m for m in sys.modules if m.startswith(('recsys_lab.eval.sweep', "
    "'recsys_lab.experiments'))]",
    # eval, compare and the sweep load no accelerator until a grid is resolved
    "import recsys_lab.eval, recsys_lab.eval.sweep; from recsys_lab.eval import compare, run_sweep; "
    "bad = [m for m in sys.modules if m.startswith('recsys_lab.accel')]",
], ids=["accel", "eval"])
def test_import_layers(code):
    out = subprocess.run([sys.executable, "-c", f"import sys; {code}; print(bad)"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_preset_spec_runs(tmp_path):
    df = run_spec("smoke", backend="serial", cache_dir=tmp_path, evaluation=QUICK)
    assert set(df["model"]) == {"Popularity", "EASE", "ItemKNN"} and df["pareto"].any()


def test_distilled_student_wraps_the_fitted_teacher(data):
    from recsys_lab.accel.distill import Distilled
    student = {"embedding_size": 4, "epochs": 2, "batch_size": 256, "device": "cpu"}
    grid = [{"model": "EASE", "params": {"reg": 10.0},
             "accelerators": [{"name": "Distilled", "params": student}]}]
    df = run_sweep(grid, data=data, split=SPLIT, cache_dir=None, backend="serial", evaluation=QUICK)
    train, valid, test = random_split(data, **{k: v for k, v in SPLIT.items() if k != "method"})
    ref = Distilled(EASE(reg=10.0).fit(train), **student).fit(train, valid=valid)
    want = evaluate(ref, test, exclude=valid, k=10).iloc[0]["ndcg"]
    np.testing.assert_allclose(df["ndcg@10"], want, rtol=1e-9)
    assert (df["label"] == "EASE(reg=10.0) + Distilled(batch_size=256, device=cpu, embedding_size=4, epochs=2)").all()
