"""The late-interaction experiment harness (recsys_lab.experiments.late_interaction*): its
bookkeeping, checkpoints and data provenance, not its timings (speed is measured in benchmarks,
never asserted in tests)."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from recsys_lab.data import load_dataset
from recsys_lab.data import retail
from recsys_lab.experiments.late_interaction import Profile, headline, variants
from recsys_lab.experiments.late_interaction_latency import memory, request_latency, timed_calls
from recsys_lab.experiments.late_interaction_models import (load_models, save_models,
                                                           split_fingerprint, verify_manifest)
from recsys_lab.models import EASE
from recsys_lab.models.sequential import (CachedCrossEncoder, CrossEncoderRanker,
                                          MultiSegmentLateInteraction, TwoTower, next_item_split,
                                          sampled_next_item_split)
from recsys_lab.models.sequential.checkpoint import file_sha256, load_weights, save_weights, untrained
from tests.test_late_interaction import TINY, random_events, shuffled_planted


@pytest.fixture(scope="module")
def trained():
    train, test = shuffled_planted()
    tt = TwoTower(epochs=1, **TINY).fit(train)
    models = {"two-tower": tt,
              "cross-encoder": CrossEncoderRanker(epochs=1, n_negatives=3, **TINY).fit(train),
              "cached cross-encoder": CachedCrossEncoder(epochs=1, n_negatives=7, **TINY).fit(train),
              "late m=2 maxsim": MultiSegmentLateInteraction(segments=2, vectors_per_segment=2,
                                                             train_segments=(1, 2), epochs=1,
                                                             **TINY).fit(train)}
    return models, train, test


def test_timed_calls_runs_each_call_once_in_order():
    seen = []
    wall, cpu = timed_calls([lambda k=k: seen.append(k) for k in range(5)])
    assert seen == list(range(5)) and wall.shape == cpu.shape == (5,)
    assert (wall >= 0).all() and (cpu >= 0).all()


def test_variants_serve_every_late_model_at_every_S(trained):
    models, *_ = trained
    p = Profile(segments=(1, 2), late_models=((2, "maxsim"),))
    rows = variants(models, p)
    assert [r[0] for r in rows] == ["two-tower", "cross-encoder", "cached cross-encoder",
                                    "late S=1 m=2 maxsim", "late S=2 m=2 maxsim"]
    assert [r[1] for r in rows] == ["two_tower", "cross", "cached_cross", "late", "late"]
    assert [r[-1].segments for r in rows[3:]] == [1, 2]


def test_request_latency_rows_and_models_left_untouched(trained):
    models, train, test = trained
    rows = variants(models, Profile(segments=(2,), late_models=((2, "maxsim"),)))
    ease = EASE(reg=10.0).fit(train)
    before = {name: len(m.history(0)) for name, *_, m in rows}
    lat = request_latency([("EASE", "full", None, None, "full", ease)] + rows, models["two-tower"],
                          test, C=5, n_requests=4, seed=0, warmup=2)
    modes = lat.groupby("model")["mode"].apply(sorted).to_dict()
    assert modes == {"EASE": ["after click"], "two-tower": ["after click", "cached"],
                     "cross-encoder": ["after click"], "cached cross-encoder": ["after click"],
                     "late S=2 m=2 maxsim": ["after click", "cached", "full re-encode"]}
    assert (lat["n"] == 4).all()
    assert lat.set_index("model")["C"].to_dict()["EASE"] == train.n_items      # full ranking
    assert (lat[lat.model != "EASE"]["C"] == 5).all()
    assert {"p50_ms", "p95_ms", "p99_ms", "cpu_p50_ms"} <= set(lat.columns)
    assert {name: len(m.history(0)) for name, *_, m in rows} == before     # deep copies were timed
    mem = memory(rows).set_index("model")["user_cache_mb"]
    assert mem["cross-encoder"] == 0 and mem["late S=2 m=2 maxsim"] == 2 * mem["two-tower"] * 2


def test_headline_checks_every_goal_on_the_table():
    nd = "ndcg@10 C=100"
    table = pd.DataFrame({
        "model": ["cross", "cached", "tt", "tt +ft", "late a", "late b", "late slow"],
        "arch": ["cross", "cached_cross", "two_tower", "two_tower", "late", "late", "late"],
        nd: [0.20, 0.21, 0.10, 0.12, 0.15, 0.1995, 0.30],
        "first_stage": "EASE", "first_stage_ndcg@10": 0.11,
        "cpu_p50_ms": [100.0, 10.0, 1.0, 1.0, 4.0, 5.0, 50.0],
        "p50_ms": [110.0, 11.0, 1.0, 1.0, 4.0, 5.5, 55.0]})
    base = pd.DataFrame({"model": ["Popularity", "ItemKNN", "EASE", "SASRec"],
                         "ndcg@10 full": [0.02, 0.05, 0.11, 0.20]})
    h = headline(table, base)
    assert h["best_late"] == "late b" and h["two_tower"] == "tt +ft"       # "late slow": > 1/20
    assert h["ndcg_ratio_vs_cross"] == pytest.approx(0.1995 / 0.21)         # the better cross
    assert h["latency_ratio_cross_over_late"] == pytest.approx(20.0)
    assert h["latency_ratio_cached_over_late"] == pytest.approx(2.0)
    assert h["within_latency_budget"] and h["beats_two_tower"] and h["cross_beats_sasrec"]
    assert h["meets_95pct_of_cross"]                                        # 0.95 = 0.1995 / 0.21
    assert not h["all_beat_ease"] and h["n_transformer_systems_below_ease"] == 1   # "tt" (0.10)


def test_profile_names_a_bad_choice():
    with pytest.raises(ValueError, match="retriever"):
        Profile(retriever="bm25")
    with pytest.raises(ValueError, match="profile"):
        Profile.named("huge")
    bench, full = Profile.named("bench"), Profile.named("full")
    assert bench.users is None and bench.retriever == "ease"
    # the report restores the bench's checkpoints: the same models, only fewer timed requests
    assert {k: v for k, v in vars(full).items() if k != "n_requests"} == \
        {k: v for k, v in vars(bench).items() if k != "n_requests"}


def test_sample_restricts_only_the_test_users():
    data = random_events(n_users=40, n_items=60, lengths=tuple(range(3, 43)), seed=1)
    train_all, valid_all, test_all = next_item_split(data)
    train, valid, test = sampled_next_item_split(data, 10, seed=0)
    assert len(np.unique(test.user)) == 10 and set(test.user) <= set(test_all.user)
    for a, b in ((train, train_all), (valid, valid_all)):                 # everyone trains
        np.testing.assert_array_equal(a.user, b.user)
        np.testing.assert_array_equal(a.item, b.item)
    small, _, small_test = sampled_next_item_split(data, 10, seed=0, sample="all")
    assert set(small.user) == set(small_test.user) == set(test.user)
    with pytest.raises(ValueError, match="sample"):
        sampled_next_item_split(data, 10, seed=0, sample="train")


# ---- checkpoints ---------------------------------------------------------------------------------
def test_safetensors_round_trip_scores_and_record(trained, tmp_path):
    models, train, _ = trained
    users = np.arange(12)
    cand = np.random.default_rng(0).integers(0, train.n_items, (12, 9))
    for name, model in models.items():
        sha = save_weights(model, tmp_path / "m.safetensors")
        assert sha == file_sha256(tmp_path / "m.safetensors")
        back = load_weights(tmp_path / "m.safetensors", train, sha256=sha)
        assert type(back) is type(model) and back.get_config() == model.get_config()
        np.testing.assert_allclose(back.score_candidates(users, cand), model.score_candidates(users, cand),
                                   rtol=1e-6, atol=1e-6)
        pd.testing.assert_frame_equal(back.history_, model.history_, check_dtype=False)
    with pytest.raises(ValueError, match="does not match"):
        load_weights(tmp_path / "m.safetensors", train, sha256="0" * 64)


def test_manifest_refuses_tampered_files_and_other_splits(trained, tmp_path):
    models, train, test = trained
    fp = split_fingerprint(train, test)
    manifest = save_models(models, tmp_path, {"split_fingerprint": fp})
    assert set(manifest["models"]) == set(models)
    loaded, m2 = load_models(tmp_path, train, fp)
    assert m2 == json.loads((tmp_path / "manifest.json").read_text())
    assert all(r["matches_manifest"] for r in verify_manifest(tmp_path))
    with pytest.raises(ValueError, match="another split"):
        load_models(tmp_path, train, split_fingerprint(test, train))
    f = tmp_path / manifest["models"]["two-tower"]["file"]
    raw = bytearray(f.read_bytes())
    raw[-1] ^= 1                                                            # one bit of one weight
    f.write_bytes(bytes(raw))
    assert not {r["model"]: r["matches_manifest"] for r in verify_manifest(tmp_path)}["two-tower"]
    with pytest.raises(ValueError, match="sha256"):
        load_models(tmp_path, train, fp)


def test_untrained_is_the_seeded_initial_state():
    data = random_events()
    a = untrained(TwoTower(embedding_size=16, n_layers=2, n_heads=2, max_len=8, seed=3), data)
    b = untrained(TwoTower(embedding_size=16, n_layers=2, n_heads=2, max_len=8, seed=3), data)
    np.testing.assert_array_equal(a.score(np.arange(6)), b.score(np.arange(6)))
    assert a.history(5).tolist() == data.histories()[5].tolist()
    with pytest.raises(TypeError, match="EASE"):
        untrained(EASE(), data)


# ---- another Online Retail file --------------------------------------------------------------------
@pytest.mark.filterwarnings("ignore:.*duplicated row")
def test_benchmark_runs_on_an_online_retail_ii_file(tmp_path):
    """``benchmarks/late_interaction.py --data FILE`` on a small file in the Online Retail II
    layout (the embedded rows of 120 customers, renamed): the whole study runs, the JSON records
    the file's path and sha256, and the checkpoints reload on the same split."""
    import benchmarks.late_interaction as bench
    raw = pd.read_parquet(retail.DATA_DIR / retail.ONLINE_RETAIL_FILE)
    customers = raw["CustomerID"].dropna().drop_duplicates().iloc[:120]
    small = raw[raw["CustomerID"].isin(customers)]
    path = tmp_path / "online_retail_II_small.parquet"
    small.rename(columns=dict(zip(retail.LAYOUTS["Online Retail"], retail.LAYOUTS["Online Retail II"]))
                 ).to_parquet(path)
    out, ckpt = tmp_path / "bench.json", tmp_path / "ckpt"
    bench.main(["--profile", "quick", "--data", str(path), "--out", str(out), "--checkpoints", str(ckpt)])
    res = json.loads(out.read_text())
    assert res["data"] == {"name": "online-retail-ii", "path": str(path.resolve()), "sha256": file_sha256(path)}
    assert [r["model"] for r in res["baselines"]] == ["Popularity", "ItemKNN", "EASE", "SASRec"]
    rows = pd.DataFrame(res["table"])
    assert {"cross-encoder", "cached cross-encoder", "two-tower"} <= set(rows.model)
    assert (rows["first_stage"] == "EASE").all() and rows["first_stage_ndcg@10"].notna().all()
    assert set(pd.DataFrame(res["first_stages"]).first_stage) == {"EASE", "SASRec", "two-tower"}
    manifest = json.loads((ckpt / "manifest.json").read_text())
    assert manifest["data"]["sha256"] == file_sha256(path)
    data = load_dataset("online-retail", path=path)
    train, valid, test = sampled_next_item_split(data, Profile.named("quick").users, 2020)
    models, _ = load_models(ckpt, train, split_fingerprint(train, valid, test))
    assert set(models) == set(manifest["models"])
