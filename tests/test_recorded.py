"""Recorded numbers are checked (issue 10): each notebook's record()ed accuracy figures against
tests/expected_records.json, inside the nbval run of `make test` (notebooks/conftest.py)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from recsys_lab.reports import expected

REPO = Path(__file__).resolve().parents[1]
EXPECTED = REPO / "tests" / "expected_records.json"
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]_*.ipynb"))

RECORDS = {"dataset": "online-retail", "users": 4339, "k": 10, "ndcg": 0.0358, "hit": 0.1648,
           "bpr_ndcg": 0.05, "p99_ms": 0.41, "fit_s": 2.5, "best_epoch": 7, "budget_met": True,
           "fastest_front_ndcg": 0.03, "model": "Popularity"}


def test_only_accuracy_and_counts_are_checked():
    entry = expected.expected_entry(RECORDS)
    assert set(entry) == {"users", "k", "ndcg", "hit", "bpr_ndcg"}  # no timing, label or flag
    assert entry["users"] == {"value": 4339} and entry["k"] == {"value": 10}
    assert entry["ndcg"]["tol"] == expected.TOL_FIXED[0]  # the floor, at this size
    assert entry["bpr_ndcg"]["tol"] == expected.TOL_TRAINED[0]  # SGD: a wider band
    assert entry["hit"]["tol"] == round(expected.TOL_FIXED[1] * 0.1648, 4)


def test_compare_passes_within_and_fails_beyond_tolerance():
    want = {"00_x": expected.expected_entry(RECORDS)}
    assert expected.compare("00_x", RECORDS, want) == []
    tol = want["00_x"]["ndcg"]["tol"]
    assert expected.compare("00_x", {**RECORDS, "ndcg": 0.0358 + 0.9 * tol}, want) == []
    worse = expected.compare("00_x", {**RECORDS, "ndcg": 0.0358 - 1.5 * tol}, want)
    assert worse[0].startswith("00_x: ndcg = 0.03") and f"expected 0.0358 ± {tol}" in worse[0]
    assert "--refresh-recorded" in worse[-1]
    assert "expected exactly 4339" in expected.compare("00_x", {**RECORDS, "users": 4338}, want)[0]
    assert "ndcg is no longer recorded" in expected.compare(
        "00_x", {k: v for k, v in RECORDS.items() if k != "ndcg"}, want)[0]
    assert "mrr have no expected value" in expected.compare("00_x", {**RECORDS, "mrr": 0.1},
                                                            want)[0]
    assert "no expected values" in expected.compare("01_y", RECORDS, want)[0]
    # timings and labels may change freely
    assert expected.compare("00_x", {**RECORDS, "p99_ms": 9.0, "model": "EASE"}, want) == []
    assert "ndcg = None" in expected.compare("00_x", {**RECORDS, "ndcg": None}, want)[0]


def test_data_labels_keep_one_entry_each():
    """ML-100k is read from a local copy when there is one: with and without it, its own entry."""
    ml, synthetic = {**RECORDS, "rating_data": "ml-100k"}, {**RECORDS, "rating_data": "synthetic"}
    assert expected.entry_name("02_x", ml) == "02_x [rating_data=ml-100k]"
    assert expected.entry_name("02_x", RECORDS) == "02_x"  # "dataset" is shipped: no variant
    want = {"02_x [rating_data=ml-100k]": expected.expected_entry(ml)}
    assert expected.compare("02_x", ml, want) == []
    assert "no expected values" in expected.compare("02_x", synthetic, want)[0]


def test_refresh_keeps_other_notebooks_and_hand_set_tolerances(tmp_path):
    path = tmp_path / "expected.json"
    expected.refresh(path, "01_b", {"ndcg": 0.2})
    expected.refresh(path, "00_a", RECORDS)
    doc = json.loads(path.read_text())
    doc["notebooks"]["00_a"]["ndcg"]["tol"] = 0.01  # widened by hand, with a reason in review
    path.write_text(json.dumps(doc))
    expected.refresh(path, "00_a", {**RECORDS, "ndcg": 0.04})
    got = expected.load(path)
    assert list(got) == ["00_a", "01_b"] and got["01_b"] == {"ndcg": {"value": 0.2, "tol": 0.002}}
    assert got["00_a"]["ndcg"] == {"value": 0.04, "tol": 0.01}
    expected.refresh(path, "01_b", {"ndcg": 0.3})  # a default tolerance follows the new value
    assert expected.load(path)["01_b"]["ndcg"] == {"value": 0.3, "tol": 0.003}
    assert path.read_text().count("\n") > len(got["00_a"]) + len(got["01_b"])  # a key per line


def test_every_notebook_has_committed_accuracy_figures():
    committed = expected.load(EXPECTED)
    for nb in NOTEBOOKS:
        entries = {n: e for n, e in committed.items() if n == nb.stem
                   or n.startswith(f"{nb.stem} [")}
        assert entries, f"{nb.stem} has no expected values: run " \
                        f"{expected.REFRESH_HINT.format(name=nb.stem)}"
        for entry in entries.values():
            assert any("tol" in v for v in entry.values()), f"{nb.stem}: no accuracy figure checked"
        for key, want in ((k, w) for e in entries.values() for k, w in e.items()):
            assert "tol" not in want or 0 < want["tol"] <= max(0.01, 0.1 * abs(want["value"])), \
                f"{nb.stem}.{key}: tolerance {want['tol']} too wide to catch a regression"


# A real regression in a model: Popularity's counts perturbed by seeded noise (log-normal,
# sigma 0.25), which costs about 8% of its NDCG@10 on Online Retail (0.0358 -> 0.0330). The
# kernel imports it through sitecustomize, exactly as it would import an edited model.
DEGRADE = textwrap.dedent("""
    import numpy as np
    from recsys_lab.models import Popularity

    _fit = Popularity._fit

    def worse_fit(self, train):
        _fit(self, train)
        noise = np.random.default_rng(0).lognormal(0.0, 0.25, len(self.counts_))
        self.counts_ = (self.counts_ * noise).astype(np.float32)

    Popularity._fit = worse_fit
""")


@pytest.mark.slow
def test_a_model_that_gets_worse_fails_the_notebook_run(tmp_path):
    nb = REPO / "notebooks" / "00_quickstart.ipynb"
    (tmp_path / "sitecustomize.py").write_text(DEGRADE)
    env = {"PYTHONPATH": str(tmp_path), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(nb)]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900,
                       env={**os.environ, **env})
    out = p.stdout
    assert p.returncode == 1, out[-3000:]
    assert "FAILED notebooks/00_quickstart.ipynb::recorded numbers" in out, out[-3000:]
    for key in ("ndcg", "recall"):
        assert f"00_quickstart: {key} = " in out, out[-3000:]
    # the data did not change, and the check says so: only the model's figures are named
    assert "00_quickstart: users" not in out and "00_quickstart: events" not in out
