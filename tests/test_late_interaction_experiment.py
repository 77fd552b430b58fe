"""The late-interaction experiment harness (recsys_lab.experiments.late_interaction*): its
bookkeeping, not its timings (speed is measured in benchmarks, never asserted in tests)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_lab.experiments.late_interaction import Profile, headline, variants
from recsys_lab.experiments.late_interaction_latency import memory, request_latency, timed_calls
from recsys_lab.models.sequential import CrossEncoderRanker, MultiSegmentLateInteraction, TwoTower
from tests.test_late_interaction import TINY, shuffled_planted


@pytest.fixture(scope="module")
def trained():
    train, test = shuffled_planted()
    tt = TwoTower(epochs=1, **TINY).fit(train)
    models = {"two-tower": tt,
              "cross-encoder": CrossEncoderRanker(epochs=1, n_negatives=3, **TINY).fit(train),
              "late m=2 maxsim": MultiSegmentLateInteraction(segments=2, vectors_per_segment=2,
                                                             train_segments=(1, 2), epochs=1,
                                                             **TINY).fit(train)}
    return models, test


def test_timed_calls_runs_each_call_once_in_order():
    seen = []
    wall, cpu = timed_calls([lambda k=k: seen.append(k) for k in range(5)])
    assert seen == list(range(5)) and wall.shape == cpu.shape == (5,)
    assert (wall >= 0).all() and (cpu >= 0).all()


def test_variants_serve_every_late_model_at_every_S(trained):
    models, _ = trained
    p = Profile(segments=(1, 2), late_models=((2, "maxsim"),))
    rows = variants(models, p)
    assert [r[0] for r in rows] == ["two-tower", "cross-encoder", "late S=1 m=2 maxsim",
                                    "late S=2 m=2 maxsim"]
    assert [r[-1].segments for r in rows[2:]] == [1, 2]


def test_request_latency_rows_and_models_left_untouched(trained):
    models, test = trained
    rows = variants(models, Profile(segments=(2,), late_models=((2, "maxsim"),)))
    before = {name: len(m.history(0)) for name, *_, m in rows}
    lat = request_latency(rows, models["two-tower"], test, C=5, n_requests=4, seed=0, warmup=2)
    modes = lat.groupby("model")["mode"].apply(sorted).to_dict()
    assert modes == {"two-tower": ["after click", "cached"], "cross-encoder": ["after click"],
                     "late S=2 m=2 maxsim": ["after click", "cached", "full re-encode"]}
    assert (lat["n"] == 4).all() and (lat["C"] == 5).all()
    assert {"p50_ms", "p95_ms", "p99_ms", "cpu_p50_ms"} <= set(lat.columns)
    assert {name: len(m.history(0)) for name, *_, m in rows} == before     # deep copies were timed
    mem = memory(rows).set_index("model")["user_cache_mb"]
    assert mem["cross-encoder"] == 0 and mem["late S=2 m=2 maxsim"] == 2 * mem["two-tower"] * 2


def test_headline_picks_the_best_late_setting_within_the_latency_budget():
    nd = "ndcg@10 C=100"
    table = pd.DataFrame({
        "model": ["cross", "tt", "tt +ft", "late a", "late b", "late slow"],
        "arch": ["cross", "two_tower", "two_tower", "late", "late", "late"],
        nd: [0.20, 0.10, 0.12, 0.15, 0.19, 0.30],
        "cpu_p50_ms": [100.0, 1.0, 1.0, 4.0, 5.0, 50.0], "p50_ms": [110.0, 1.0, 1.0, 4.0, 5.5, 55.0]})
    h = headline(table)
    assert h["best_late"] == "late b" and h["two_tower"] == "tt +ft"       # "late slow": > 1/20
    assert h["ndcg_ratio_vs_cross"] == pytest.approx(0.95)
    assert h["latency_ratio_cross_over_late"] == pytest.approx(20.0)
    assert h["within_latency_budget"] and h["beats_two_tower"] and h["meets_95pct_of_cross"]


def test_profile_names_a_bad_choice():
    with pytest.raises(ValueError, match="retriever"):
        Profile(retriever="bm25")
    with pytest.raises(ValueError, match="profile"):
        Profile.named("huge")
    assert Profile.named("bench").retriever == "ease"
    np.testing.assert_array_equal(Profile.named("full").segments, (1, 2, 4, 8))
