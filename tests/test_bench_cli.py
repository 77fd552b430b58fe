"""``recsys-lab bench``: a sweep run headless into CSV + JSON, cached, with usage errors named."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from recsys_lab import cli
from recsys_lab.eval.sweep import run_spec

SPEC = {"data": {"name": "synthetic", "n_users": 100, "n_items": 60, "n_events": 1500, "seed": 2},
        "split": {"method": "random", "seed": 0},
        "eval": {"batch_sizes": [1, 4], "n_requests": 8, "warmup": 1},
        "grid": [{"model": "Popularity"}, {"model": "EASE", "params": {"reg": [10.0, 100.0]}}]}


def test_bench_writes_csv_and_json_then_reuses_the_cache(tmp_path):
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps(SPEC))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "recsys_lab", "bench", "--grid", grid, "--out", out, "--backend", "serial"]
    p = subprocess.run(list(map(str, cmd)), capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "3 configurations, 6 rows (0 from cache)" in p.stdout
    csv = pd.read_csv(out / "bench.csv")
    doc = json.loads((out / "bench.json").read_text())
    assert doc["spec"] == SPEC and "cpu" in doc["environment"] and len(doc["rows"]) == len(csv) == 6
    ref = run_spec(SPEC, backend="serial", cache_dir=None)                # an independent run
    for col in ("ndcg@10", "recall@10", "batch_size"):
        np.testing.assert_allclose(csv[col], ref[col], rtol=1e-9)
        np.testing.assert_allclose([r[col] for r in doc["rows"]], ref[col], rtol=1e-9)
    assert list(csv["label"]) == list(ref["label"])
    assert cli.main(["bench", "--grid", str(grid), "--out", str(out), "--backend", "serial"]) == 0
    assert pd.read_csv(out / "bench.csv")["cached"].all()


@pytest.mark.parametrize("content, message", [
    ("{not json", "is not valid JSON"),
    (json.dumps({"grid": [{"model": "EAZE"}]}), "unknown model or accelerator 'EAZE'"),
    (json.dumps({"grid": [], "data": "online-retail"}), "non-empty list"),
    (json.dumps({"grid": [{"model": "EASE"}], "dataset": "x"}), "unknown key(s) ['dataset']"),
])
def test_bad_grid_is_a_usage_error(tmp_path, capsys, content, message):
    grid = tmp_path / "grid.json"
    grid.write_text(content)
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--grid", str(grid), "--out", str(tmp_path / "out")])
    assert e.value.code == cli.EXIT_USAGE
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_bench_usage(tmp_path, capsys):
    for argv, message in ((["bench", "--out", str(tmp_path)], "one of the arguments --grid --preset"),
                          (["bench", "--preset", "nope", "--out", str(tmp_path / "o")], "unknown preset 'nope'"),
                          (["bench", "--grid", str(tmp_path / "missing.json"), "--out", str(tmp_path / "o")],
                           "cannot read"),
                          (["bench", "--preset", "smoke", "--n-jobs", "0", "--out", str(tmp_path / "o")],
                           "--n-jobs must be >= 1")):
        with pytest.raises(SystemExit) as e:
            cli.main(argv)
        assert e.value.code == cli.EXIT_USAGE and message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
