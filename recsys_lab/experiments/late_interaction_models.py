"""The models of the late-interaction study: baselines, first stages, the transformers, checkpoints.

Every model learns from the same data: the training split of *every* user (the study's user
sample restricts only the test users), early-stopped on the validation split; at test time the
validation events join each history (``extend`` for the sequential models; the closed-form
baselines are fitted on train + valid, the same histories).

Checkpoints: ``save_models`` writes each transformer's weights as safetensors plus a
``manifest.json`` (sha256 of every file, the data file's sha256 and a fingerprint of the split);
``load_models`` verifies all of them before loading, so a report can reproduce the benchmark's
numbers from the very weights it trained.
"""
from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np

from ..data.interactions import Interactions
from ..fileio import atomic_write
from ..models import EASE, ItemKNN, Popularity
from ..models.sequential import (CachedCrossEncoder, CrossEncoderRanker, MultiSegmentLateInteraction,
                                 SASRec, SequentialRecommender, TwoTower, with_valid)
from ..models.sequential.checkpoint import file_sha256, load_weights, save_weights

FIRST_STAGES = ("ease", "sasrec", "two-tower")
FIRST_STAGE_NAMES = {"ease": "EASE", "sasrec": "SASRec", "two-tower": "two-tower"}
MANIFEST = "manifest.json"


def late_name(m: int, kind: str) -> str:
    """The key of the late model with m vectors per segment and interaction ``kind``."""
    return f"late m={m} {kind}"


def fit_baselines(train: Interactions, valid: Interactions, p) -> dict:
    """Popularity, ItemKNN and EASE (Steck 2019) on train + valid: the histories every model reads
    when it predicts the test item (``p``: a ``Profile``, for k and the EASE reg)."""
    history = with_valid(train, valid)
    return {"Popularity": Popularity().fit(history),
            "ItemKNN": ItemKNN(k=p.knn_k).fit(history),
            "EASE": EASE(reg=p.ease_reg).fit(history)}


def common_config(p, seed: int) -> dict:
    """Hyper-parameters shared by every transformer of the study."""
    return dict(embedding_size=p.embedding_size, n_layers=p.n_layers, n_heads=p.n_heads,
                max_len=p.max_len, dropout=p.dropout, samples_per_user=p.samples_per_user,
                learning_rate=p.learning_rate, lr_schedule=p.lr_schedule, seed=seed, patience=p.patience,
                valid_users=p.valid_users, progress=p.progress)


def miner_model(name: str, models: dict, train: Interactions, p):
    """The first stage the re-rankers' hard negatives come from, fitted on train only (so no
    validation item leaks into training): EASE on train, or the trained SASRec / two-tower."""
    if name == "ease":
        return EASE(reg=p.ease_reg).fit(train)
    return models[FIRST_STAGE_NAMES[name]]


def train_models(train: Interactions, valid: Interactions, p, seed: int, C: int = 100, say=print) -> dict:
    """SASRec and the two-tower first (``p.two_tower_init="sasrec"``: the two-tower starts from
    SASRec's item, position and block weights); then, warm-started from the two-tower (same block design),
    the naive cross-encoder (``p.n_negatives`` negatives, one pass per candidate), the cached
    cross-encoder (``p.cached_negatives`` in one pass) and one late-interaction model per
    (m, interaction), trained with S drawn from ``p.segments`` per batch. Half of every
    cross-encoder's negatives come from the ``p.retriever`` first stage's top-C."""
    common = common_config(p, seed)
    finetune = {**common, "learning_rate": p.finetune_lr}
    models = {"SASRec": SASRec(loss="ce", epochs=p.sasrec_epochs, windows=p.sasrec_windows,
                               **{**common, "samples_per_user": 1,
                                  "learning_rate": p.sasrec_lr or p.learning_rate}).fit(train, valid=valid)}
    say(f"SASRec {models['SASRec'].fit_seconds_:.0f} s")
    tt = TwoTower(epochs=p.epochs, item_init=p.item_init, **common)
    if p.two_tower_init == "sasrec":  # same block design: items, positions and blocks copied
        tt.warm_start(models["SASRec"])
    tt = tt.fit(train, valid=valid)
    models["two-tower"] = tt
    say(f"two-tower {tt.fit_seconds_:.0f} s")
    miner = miner_model(p.retriever, models, train, p)
    cross_cfg = {**finetune, "valid_users": p.cross_valid_users,
                 "samples_per_user": p.cross_samples_per_user or p.samples_per_user}
    crosses = {"cross-encoder": CrossEncoderRanker(n_negatives=p.n_negatives, epochs=p.cross_epochs,
                                                   **cross_cfg),
               "cached cross-encoder": CachedCrossEncoder(n_negatives=p.cached_negatives,
                                                          epochs=p.cross_epochs, **cross_cfg)}
    for name, model in crosses.items():
        models[name] = model.warm_start(tt).mine_negatives_from(miner, C).fit(train, valid=valid)
        say(f"{name} {models[name].fit_seconds_:.0f} s")
    # the same extra epochs for the two-tower, so "late vs two-tower" compares architectures at
    # an equal training budget
    models["two-tower +ft"] = TwoTower(epochs=p.late_epochs, **finetune).warm_start(tt).fit(train, valid=valid)
    for m, kind in p.late_models:
        models[late_name(m, kind)] = MultiSegmentLateInteraction(
            segments=max(p.segments), vectors_per_segment=m, interaction=kind,
            train_segments=tuple(p.segments), epochs=p.late_epochs, **finetune
        ).warm_start(tt).fit(train, valid=valid)
        say(f"{late_name(m, kind)} {models[late_name(m, kind)].fit_seconds_:.0f} s")
    return models


def first_stage(name: str, models: dict, baselines: dict):
    """A first-stage retriever by name (``FIRST_STAGES``), already holding the test histories."""
    if name not in FIRST_STAGES:
        raise ValueError(f"first stage must be one of {FIRST_STAGES}, got {name!r}")
    return baselines["EASE"] if name == "ease" else models[FIRST_STAGE_NAMES[name]]


# ---- checkpoints -------------------------------------------------------------------------------
def split_fingerprint(*parts: Interactions) -> str:
    """sha256 over the (user, item, timestamp) arrays of the split parts, in order: the same
    value means the same events in the same order."""
    h = hashlib.sha256()
    for x in parts:
        for a in (x.user, x.item, x.timestamp if x.timestamp is not None else np.zeros(0)):
            h.update(np.ascontiguousarray(a, dtype=np.int64).tobytes())
    return h.hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def save_models(models: dict, folder: str | Path, meta: dict) -> dict:
    """Write every sequential model of ``models`` to ``folder/<name>.safetensors`` and the
    manifest (file, class and sha256 per model, plus ``meta``: data sha256, split fingerprint,
    profile); returns the manifest."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    for name, model in models.items():
        if isinstance(model, SequentialRecommender):
            path = folder / f"{_slug(name)}.safetensors"
            entries[name] = {"file": path.name, "class": type(model).__name__,
                             "sha256": save_weights(model, path)}
    manifest = {**meta, "models": entries}
    atomic_write(folder / MANIFEST, json.dumps(manifest, indent=1, default=str))
    return manifest


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint manifest at {path}: run benchmarks/late_interaction.py "
                                "(it writes the checkpoints and their manifest)")
    return json.loads(path.read_text())


def load_models(folder: str | Path, train: Interactions, fingerprint: str) -> tuple[dict, dict]:
    """The models of a checkpoint folder restored on ``train``, after checking that the split's
    fingerprint matches the manifest's and each file's sha256 its entry. Returns (models,
    manifest); a mismatch raises naming the file and both hashes."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest.get("split_fingerprint") != fingerprint:
        raise ValueError(f"{folder}: the checkpoints were trained on another split (fingerprint "
                         f"{manifest.get('split_fingerprint')}, this run's {fingerprint}); use the "
                         f"same data, seed and profile, or retrain")
    models = {name: load_weights(folder / e["file"], train, sha256=e["sha256"])
              for name, e in manifest["models"].items()}
    return models, manifest


def verify_manifest(folder: str | Path) -> list[dict]:
    """Each checkpoint of a folder with its manifest sha256 and the file's actual sha256."""
    folder = Path(folder)
    out = []
    for name, e in read_manifest(folder)["models"].items():
        got = file_sha256(folder / e["file"])
        out.append({"model": name, "file": e["file"], "sha256": got, "matches_manifest": got == e["sha256"]})
    return out
