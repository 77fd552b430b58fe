"""Weights of a sequential model as safetensors, and a model restored from them without training.

A checkpoint holds the module's tensors (``safetensors``: no code runs on load, unlike pickle) and
string metadata: the class, its config (JSON) and the training record (epochs, validation curve,
fit seconds). The user-side state (histories, seen items) is not stored: it is rebuilt from the
same training data, which the caller passes and whose split the benchmark records.

    sha = save_weights(model, "two_tower.safetensors")
    model = load_weights("two_tower.safetensors", train, sha256=sha)     # verified, then loaded
    fresh = untrained(TwoTower(embedding_size=768, n_layers=12), train)  # random weights, served
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ...data.files import sha256sum as file_sha256          # hex sha256 of a file's bytes
from ...data.interactions import Interactions
from ...fileio import atomic_path
from ..base import Recommender
from ..persistence import checkpoint_class_config
from .history import SequentialRecommender


def untrained(model: SequentialRecommender, train: Interactions) -> SequentialRecommender:
    """``model`` in its fitted state (histories of ``train``, seen items, serving caches) with its
    initial weights (seeded by ``model.seed``) and no training step: what a latency measurement
    at a size that does not train here, or a checkpoint restore, needs."""
    if not isinstance(model, SequentialRecommender):
        raise TypeError(f"untrained() takes a SequentialRecommender, got {type(model).__name__}")
    model._check_config()
    model.n_users_, model.n_items_ = train.n_users, train.n_items
    model.seen_ = train.to_csr()
    init, model.item_init = model.item_init, None     # weights come from the seed or a checkpoint
    try:
        with torch.random.fork_rng():
            torch.manual_seed(model.seed)
            model.prepare(train)
            model.module_ = model.build_module().to(model.device_)
    finally:
        model.item_init = init
    model.module_.eval()
    model.refresh()
    return model


def save_weights(model: SequentialRecommender, path: str | os.PathLike) -> str:
    """Write ``model``'s module tensors and metadata to a safetensors file; returns its sha256."""
    from safetensors.torch import save_file
    model._check_fitted()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.module_.state_dict().items()}
    history = getattr(model, "history_", None)
    meta = {"class": type(model).__name__, "config": json.dumps(model.get_config()),
            "history": history.to_json(orient="records") if history is not None else "[]",
            "best_epoch": str(getattr(model, "best_epoch_", 0)),
            "fit_seconds": str(float(getattr(model, "fit_seconds_", 0.0)))}
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=meta)
    return file_sha256(path)


def load_weights(path: str | os.PathLike, train: Interactions, sha256: str | None = None,
                 device: str | None = None) -> SequentialRecommender:
    """The model saved by ``save_weights``, restored on ``train``'s histories. With ``sha256``
    the file's hash is checked first and a mismatch raises, naming both hashes."""
    from safetensors import safe_open
    from safetensors.torch import load_file
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if sha256 is not None and (got := file_sha256(path)) != sha256:
        raise ValueError(f"{path}: sha256 {got} does not match the expected {sha256}")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    klass, config = checkpoint_class_config(path, meta.get("class"), meta["config"],
                                            Recommender.registry, SequentialRecommender, device)
    model = untrained(klass(**config), train)
    model.module_.load_state_dict(load_file(str(path), device=str(model.device_)))
    model.module_.eval()
    model.refresh()
    model.history_ = pd.DataFrame(json.loads(meta.get("history", "[]")))
    model.best_epoch_ = int(meta.get("best_epoch", 0))
    model.fit_seconds_ = float(meta.get("fit_seconds", "nan"))
    model.epoch_seconds_ = np.asarray(model.history_.get("train_seconds", []), dtype=float)
    return model
