"""Config and state of a model, and of every model it is built from, to and from disk.

    config = model.get_config()                 # nested {"class": ..., **config} per component
    twin = Recommender.from_config({"class": "Cached", **config})   # the whole chain, unfitted
    model.save("m.npz"); Recommender.load("m.npz")

A model's state is its fitted attributes ending in ``_`` (arrays, sparse matrices as their CSR
parts, numbers, the seen set); a component's state (a wrapped model, a teacher, a two-stage
retriever and ranker) is stored under ``"<field>."``. Files are numpy ``.npz`` read with
``allow_pickle=False``; only registered Recommender classes are ever built.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from ..fileio import atomic_path
from .seen import SeenSet

_CSR = "__csr_"


def own_arrays(model) -> dict[str, np.ndarray]:
    """The model's own fitted attributes (``*_``) as arrays; a seen set is stored as ``seen_``."""
    state = {}
    for k, v in vars(model).items():
        if not k.endswith("_"):
            continue
        if isinstance(v, SeenSet):
            k, v = "seen_", v.csr
        if sp.issparse(v):
            v = v.tocsr()
            for part in ("data", "indices", "indptr"):
                state[f"{k}{_CSR}{part}"] = getattr(v, part)
            state[f"{k}{_CSR}shape"] = np.array(v.shape)
        elif isinstance(v, (np.ndarray, int, float, np.integer, np.floating)):
            state[k] = np.asarray(v)
    return state


def restore_arrays(model, state: dict[str, np.ndarray]) -> None:
    """Inverse of ``own_arrays``: set each attribute (CSR parts rebuilt, 0-d arrays as scalars)."""
    for k in [k for k in state if k.endswith(f"{_CSR}shape")]:
        base = k[: -len(f"{_CSR}shape")]
        setattr(model, base, sp.csr_matrix(
            (state[f"{base}{_CSR}data"], state[f"{base}{_CSR}indices"], state[f"{base}{_CSR}indptr"]),
            shape=tuple(state[k])))
    for k, v in state.items():
        if _CSR not in k:
            setattr(model, k, v.item() if v.ndim == 0 else v)


def split_components(state: dict, components) -> tuple[dict, dict[str, dict]]:
    """(own entries, {component: its entries without the ``"<component>."`` prefix})."""
    own, nested = {}, {name: {} for name in components}
    for k, v in state.items():
        head, dot, rest = k.partition(".")
        if dot and head in nested:
            nested[head][rest] = v
        else:
            own[k] = v
    return own, nested


def from_config(registry: dict, config: dict, base: type):
    """Build ``config["class"]`` (a registered subclass of ``base``) with its parameters; each
    component field holding a nested ``{"class": ...}`` config is built first, recursively."""
    config = dict(config)
    name = config.pop("class", None)
    klass = registry.get(name)
    if klass is None or not issubclass(klass, base):
        raise ValueError(f"unknown model class {name!r}; known: {sorted(registry)}")
    for field in klass.components:
        sub = config.get(field)
        if isinstance(sub, dict):
            config[field] = from_config(registry, sub, object)     # any registered model
    return klass(**config)


def save(model, path) -> Path:
    """Config (JSON) and state (every component's too) to ``path`` (.npz, no pickle), atomically."""
    path = Path(path)
    meta = json.dumps({"class": type(model).__name__, "config": model.get_config()})
    state = model.state_dict()                      # raises "not fitted" before anything is written
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, __meta__=np.array(meta), **state)
    return path


def load(registry: dict, path, base: type):
    """The model saved at ``path``: built from its config, then given its state."""
    with np.load(Path(path), allow_pickle=False) as f:
        meta = json.loads(str(f["__meta__"]))
        state = {k: f[k] for k in f.files if k != "__meta__"}
    try:
        model = from_config(registry, {"class": meta["class"], **meta["config"]}, base)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
    model.load_state_dict(state)
    return model


def checkpoint_class_config(path, class_name, config_json: str, registry: dict, base: type,
                            device: str | None = None) -> tuple[type, dict]:
    """The registered class (a subclass of ``base``) and the config a checkpoint names, with the
    ``device`` override; ValueError naming the file for an unknown or unsuitable class."""
    klass = registry.get(class_name)
    if klass is None or not issubclass(klass, base):
        raise ValueError(f"{path}: unknown model class or not a {base.__name__}: {class_name!r}")
    config = json.loads(config_json)
    if device is not None:
        config["device"] = device
    return klass, config
