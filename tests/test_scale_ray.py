"""The scale grid on a Ray head the test starts (127.0.0.1, token auth; the fixture of
tests/test_sweep_ray.py): ``benchmarks/scale.py --backend ray --ray-address HOST:PORT`` gives the
process backend's numbers, predicted skips included."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")

from recsys_lab.experiments.scale import ScaleConfig, run_scale  # noqa: E402
from tests.test_sweep_ray import ray_head  # noqa: E402,F401  (module fixture: the test's own head)

ROOT = Path(__file__).resolve().parents[1]
CFG = dict(sizes=(2000,), families=("Popularity", "EASE", "PureSVD"), memory_budget_gb=0.05, eval_users=80,
           n_requests=20, ef_search=(16, 128), nprobe=(4,))
ARGS = ["--sizes", "2000", "--families", *CFG["families"], "--memory-budget-gb", "0.05", "--eval-users", "80",
        "--requests", "20", "--ef-search", "16", "128", "--nprobe", "4"]
KEY = ["n_items", "family", "variant", "knob"]
SAME = ["status", "reason", "train_events", "evaluated_users", "ndcg@10", "recall@10", "hit@10",
        "coverage@10", "overlap@10", "serving_mb", "est_fit_s", "est_memory_mb", "est_index_fit_s"]


def test_scale_grid_on_a_ray_head_gives_the_process_backend_numbers(ray_head, tmp_path):
    out = tmp_path / "scale.json"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "scale.py"), *ARGS, "--backend", "ray",
           "--ray-address", ray_head["address"], "--out", str(out)]
    p = subprocess.run(cmd, env=ray_head["env"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "EASE at 2,000 items needs" in p.stdout and ": skipped" in p.stdout
    result = json.loads(out.read_text())
    got = pd.DataFrame(result["rows"]).sort_values(KEY).reset_index(drop=True)
    ref = run_scale(ScaleConfig(**CFG), backend="process", n_jobs=2, verbose=False)
    ref = ref.sort_values(KEY).reset_index(drop=True)
    assert list(map(tuple, got[KEY].values)) == list(map(tuple, ref[KEY].values))
    assert list(got["status"]).count("skipped") == 1 and len(got) == 9      # 1 skip, 8 measured
    for col in SAME:
        a, b = got[col], ref[col]
        if pd.api.types.is_numeric_dtype(a) and pd.api.types.is_numeric_dtype(b):
            np.testing.assert_allclose(a.astype(float), b.astype(float), rtol=1e-12, err_msg=col)
        else:
            assert list(a.fillna("")) == list(b.fillna("")), col
    assert result["runs"][-1]["backend"] == "ray" and result["runs"][-1]["ray_address"] == ray_head["address"]
    workers = list(ray_head["root"].glob("session_*/logs/worker-*"))
    assert workers, "the grid ran on the test's head, not on a new local instance"
    assert ray_head["process"].poll() is None, "the cluster outlives the grid that used it"
