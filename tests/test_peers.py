"""benchmarks/peers.py without any peer library: the split's atomic files and the early-stopping rule."""
from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
peers = pytest.importorskip("peers")

from recsys_lab.data import find_movielens, k_core, random_split, synthetic_shop  # noqa: E402


def pairs(data) -> set[tuple[int, int]]:
    return set(zip(data.user.tolist(), data.item.tolist()))


def assert_round_trip(folder, dataset, parts: dict):
    """Every file holds exactly its part: same users, items and (user, item) pairs, one row each."""
    back = peers.read_atomic(folder, dataset, parts["train"])
    assert set(back) == set(peers.PARTS)
    for name, part in parts.items():
        path = Path(folder) / dataset / f"{dataset}.{name}.inter"
        lines = path.read_text().splitlines()
        assert lines[0] == peers.HEADER.rstrip("\n") and len(lines) == len(part) + 1
        got = back[name]
        assert (got.n_users, got.n_items) == (part.n_users, part.n_items)
        assert pairs(got) == pairs(part) and len(got) == len(part)
        assert set(got.user.tolist()) == set(part.user.tolist())
        assert set(got.item.tolist()) == set(part.item.tolist())
        assert (got.to_csr() != part.to_csr()).nnz == 0
    assert not pairs(back["train"]) & pairs(back["test"])                # a split, not copies


@pytest.fixture(scope="module")
def toy_parts() -> dict:
    """A seeded synthetic shop (string raw ids, repeated events), 5-core, split 8:1:1 per user."""
    data = synthetic_shop(n_users=80, n_items=40, n_events=2000, seed=0)
    data = replace(data, user_ids=np.array([f"c{u:03d}" for u in data.user_ids]),
                   item_ids=np.array([f"sku-{i}" for i in data.item_ids]))
    train, valid, test = random_split(k_core(data, 5, 5), (0.8, 0.1, 0.1), seed=peers.SEED)
    return dict(zip(peers.PARTS, (train, valid, test)))


def test_atomic_export_round_trips_a_split(toy_parts, tmp_path):
    parts = toy_parts
    assert all(len(p) for p in parts.values())
    out = peers.export_atomic(parts, tmp_path, "toy")
    assert out == tmp_path / "toy"
    assert_round_trip(tmp_path, "toy", parts)
    # tokens are the raw ids: the first row names the first user's raw id and its first raw item
    train = parts["train"]
    first = np.lexsort((train.item, train.user))[0]
    row = (tmp_path / "toy" / "toy.train.inter").read_text().splitlines()[1]
    assert row == f"{train.user_ids[train.user[first]]}\t{train.item_ids[train.item[first]]}"


def test_read_atomic_names_an_unknown_token(toy_parts, tmp_path):
    parts = toy_parts
    peers.export_atomic(parts, tmp_path, "toy")
    with open(tmp_path / "toy" / "toy.valid.inter", "a") as f:
        f.write("c999\tsku-1\n")
    with pytest.raises(KeyError, match="c999"):
        peers.read_atomic(tmp_path, "toy", parts["train"])


def test_export_refuses_parts_of_different_id_spaces(toy_parts, tmp_path):
    parts = toy_parts
    other = parts["test"].subset(slice(None))
    other.item_ids = other.item_ids[:-1]
    with pytest.raises(ValueError, match="id space"):
        peers.export_atomic({**parts, "test": other}, tmp_path, "toy")


def test_ml100k_export_round_trips_exactly(tmp_path):
    folder = find_movielens("ml-100k")
    if folder is None:
        pytest.skip("ml-100k not found (../shared/data/ml-100k or $RECSYS_LAB_ML100K)")
    train, valid, test, _ = peers.protocol_splits(str(folder), peers.SEED, **peers.PROTOCOLS["recbole"])
    parts = dict(zip(peers.PARTS, (train, valid, test)))
    assert (parts["train"].n_users, parts["train"].n_items) == (939, 1016)
    assert sum(len(p) for p in parts.values()) == 80_393
    peers.export_atomic(parts, tmp_path, "ml-100k-peers")
    assert_round_trip(tmp_path, "ml-100k-peers", parts)


def test_early_stopping_keeps_the_best_epoch_and_waits_patience_epochs():
    scores = iter([0.1, 0.3, 0.2, 0.5, 0.4, 0.5, 0.45, 0.9])
    state = {"epoch": 0}

    def step():
        state["epoch"] += 1

    run = peers.early_stopping(step, lambda: next(scores), lambda: state["epoch"], max_epochs=20, patience=2)
    # epoch 3 is stale but 4 improves (0.5); 5 stale, 6 ties (a tie is not better), 7 is the third
    # stale epoch > patience -> stop with epoch 4's state; 0.9 is never seen
    assert (run["best_epoch"], run["state"], run["epochs_run"]) == (4, 4, 7)
    short = peers.early_stopping(lambda: None, lambda: 1.0, lambda: "s", max_epochs=3, patience=10)
    assert (short["epochs_run"], short["best_epoch"]) == (3, 1)                  # max_epochs caps it
    assert run["epoch_seconds"] >= 0 and run["fit_seconds"] >= 0
