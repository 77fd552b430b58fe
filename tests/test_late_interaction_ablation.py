"""benchmarks/late_interaction_ablation.py: one row per run, the differing config keys, split check."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "late_interaction_ablation.py"
spec = importlib.util.spec_from_file_location("late_interaction_ablation", SCRIPT)
ablation_mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation_mod)

HEAD = {"sasrec_ndcg": 0.2, "ease_ndcg": 0.1, "two_tower_ndcg": 0.08, "cross_ndcg": 0.09,
        "cached_cross_ndcg": 0.092, "best_late_ndcg": 0.078, "ndcg_ratio_vs_cross": 0.85,
        "latency_ratio_cross_over_late": 23.0, "cross_beats_sasrec": False,
        "meets_95pct_of_cross": False, "beats_two_tower": False, "all_beat_ease": False}


def run(tmp_path, name, init, fingerprint="abc", late=0.078):
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"split_fingerprint": fingerprint,
                                "config": {"two_tower_init": init, "epochs": 12},
                                "headline": {**HEAD, "best_late_ndcg": late},
                                "fit_seconds": {"SASRec": 200.0, "two-tower": 100.0}}))
    return path


def test_one_row_per_run_with_the_keys_that_differ(tmp_path):
    table = ablation_mod.ablation([run(tmp_path, "a", "scratch"), run(tmp_path, "b", "sasrec", late=0.15)])
    assert list(table["run"]) == ["a", "b"] and list(table["two_tower_init"]) == ["scratch", "sasrec"]
    assert "epochs" not in table  # equal in both runs
    assert list(table["best late"]) == [0.078, 0.15] and list(table["train s"]) == [300.0, 300.0]
    md = ablation_mod.markdown(table)
    assert md.splitlines()[0].startswith("| run | two_tower_init |") and len(md.splitlines()) == 4


def test_runs_on_different_splits_are_refused(tmp_path):
    with pytest.raises(ValueError, match="different splits"):
        ablation_mod.ablation([run(tmp_path, "a", "scratch"), run(tmp_path, "b", "sasrec", "xyz")])
