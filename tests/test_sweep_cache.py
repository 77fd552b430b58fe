"""Sweep cache integrity: planted, malformed and stale files are named, ignored and recomputed."""
import json
import re

import numpy as np
import pytest

import recsys_lab.fileio as fileio
from recsys_lab.data import synthetic_shop
from recsys_lab.eval.sweep import SweepCacheWarning, run_sweep
from recsys_lab.models.base import Recommender

GRID = [{"model": "EASE", "params": {"reg": [10.0, 100.0]}},
        {"model": "PureSVD", "params": {"embedding_size": 8},
         "accelerators": [None, {"name": "Quantized", "params": {"dtype": "int8"}}]}]
QUICK = {"batch_sizes": [1], "n_requests": 5, "warmup": 1}
SPLIT = {"method": "random", "ratios": [0.8, 0.1, 0.1], "seed": 0}
TARGET = "EASE(reg=10.0)"


@pytest.fixture(scope="module")
def data():
    return synthetic_shop(n_users=120, n_items=70, n_events=2400, seed=5)


def sweep(data, cache):
    return run_sweep(GRID, data=data, split=SPLIT, cache_dir=cache, backend="serial", evaluation=QUICK)


@pytest.fixture
def swept(data, tmp_path):
    return sweep(data, tmp_path), tmp_path


def result_file(cache, df, label):
    return cache / f"{df.loc[df['label'] == label, 'key'].iloc[0]}.json"


def count_fits(monkeypatch):
    fits = []
    real = Recommender.fit

    def fit(self, *a, **k):
        fits.append(type(self).__name__)
        return real(self, *a, **k)
    monkeypatch.setattr(Recommender, "fit", fit)
    return fits


def model_class(npz):
    with np.load(npz, allow_pickle=False) as z:
        return json.loads(str(z["__meta__"]))["class"]


def assert_recomputed(again, df, label):
    """``label`` was measured again (same accuracy as the first run); every other row came from the cache."""
    row = again[again["label"] == label]
    assert not row["cached"].any()
    np.testing.assert_array_equal(row["ndcg@10"], df.loc[df["label"] == label, "ndcg@10"])
    assert again.loc[again["label"] != label, "cached"].all()


def test_a_planted_score_is_detected_and_recomputed(swept, data):
    df, cache = swept
    path = result_file(cache, df, TARGET)
    text = path.read_text()
    planted = re.sub(r'"ndcg@10":\s*[-+0-9.eE]+', '"ndcg@10": 0.999', text)
    assert planted != text
    path.write_text(planted)                                  # a top score, with no hash updated
    with pytest.warns(SweepCacheWarning, match=re.escape(str(path))):
        again = sweep(data, cache)
    assert (again["ndcg@10"] < 0.999).all()
    assert_recomputed(again, df, TARGET)
    assert json.loads(path.read_text())["result"]["ndcg@10"] == again.loc[again["label"] == TARGET,
                                                                        "ndcg@10"].iloc[0]
    assert sweep(data, cache)["cached"].all(), "the rewritten file is trusted again"


@pytest.mark.parametrize("content", [b'{"key": "abc", "ndcg@10": 0.9', b"\xff\xfe\x00garbage", b"[1, 2]",
                                     b""], ids=["truncated", "binary", "not-a-record", "empty"])
def test_an_unreadable_result_is_named_and_recomputed_not_an_abort(swept, data, content):
    df, cache = swept
    path = result_file(cache, df, TARGET)
    path.write_bytes(content)
    with pytest.warns(SweepCacheWarning, match=re.escape(str(path))):
        again = sweep(data, cache)
    assert_recomputed(again, df, TARGET)


def test_a_record_moved_from_another_configuration_is_stale(swept, data):
    df, cache = swept
    path = result_file(cache, df, TARGET)
    path.write_text(result_file(cache, df, "EASE(reg=100.0)").read_text())  # self-consistent, wrong key
    with pytest.warns(SweepCacheWarning, match="key does not match"):
        again = sweep(data, cache)
    assert_recomputed(again, df, TARGET)


def test_a_tampered_model_file_is_refitted(swept, data, monkeypatch):
    df, cache = swept
    for f in cache.glob("*.json"):                            # results gone: the models are consulted
        f.unlink()
    npz = next(p for p in sorted((cache / "models").glob("*.npz")) if model_class(p) == "EASE")
    raw = bytearray(npz.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    npz.write_bytes(bytes(raw))
    fits = count_fits(monkeypatch)
    with pytest.warns(SweepCacheWarning, match=re.escape(str(npz))):
        again = sweep(data, cache)
    assert fits == ["EASE"], "only the tampered model is refitted"
    np.testing.assert_array_equal(again["ndcg@10"], df["ndcg@10"])


def test_a_malformed_model_record_is_named_and_refitted(swept, data, monkeypatch):
    df, cache = swept
    for f in cache.glob("*.json"):
        f.unlink()
    record = sorted((cache / "models").glob("*.json"))[0]
    record.write_text("{not json")
    fits = count_fits(monkeypatch)
    with pytest.warns(SweepCacheWarning, match=re.escape(str(record))):
        again = sweep(data, cache)
    assert len(fits) == 1
    np.testing.assert_array_equal(again["ndcg@10"], df["ndcg@10"])


def test_writes_use_unpredictable_temp_names_and_leave_none(data, tmp_path, monkeypatch):
    made = []
    real = fileio.tempfile.mkstemp

    def mkstemp(*a, **k):
        made.append(real(*a, **k))
        return made[-1]
    monkeypatch.setattr(fileio.tempfile, "mkstemp", mkstemp)
    sweep(data, tmp_path)
    n_results, n_models = len(list(tmp_path.glob("*.json"))), len(list((tmp_path / "models").glob("*.npz")))
    assert len(made) == n_results + 2 * n_models               # every result, model and model record
    left = [p for p in tmp_path.rglob("*") if p.is_file() and p.name.startswith(".")]
    assert not left and not list(tmp_path.rglob("*.tmp"))
