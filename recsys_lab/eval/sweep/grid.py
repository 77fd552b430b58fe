"""The grid language: blocks of model x parameters x accelerator chains, expanded to configurations.

    [{"model": "EASE", "params": {"reg": [100.0, 500.0]},
      "accelerators": [None, {"name": "Quantized", "params": {"dtype": ["fp16", "int8"]}}]}]

Each block names a model from ``Recommender.registry`` with its parameters and optionally a list
of accelerator alternatives: ``None`` (the bare model), ``{"name": ..., "params": ...}`` or a list
of those (a chain, innermost first). A list value in ``params`` is a sweep axis; the grid is the
Cartesian product (scikit-learn's ``ParameterGrid``). Configurations are plain JSON data
``{"model", "params", "accel": [{"name", "params"}, ...]}``, so they cross process boundaries.
"""
from __future__ import annotations

import itertools
from dataclasses import fields, is_dataclass
from importlib import import_module

from .cache import canonical

# Modules whose import registers every model and accelerator class by name. The sweep composes
# by name, so these are imported when a grid is resolved (never when recsys_lab.eval is imported).
COMPONENT_MODULES = ("recsys_lab.models", "recsys_lab.accel")

def wrapped_field(klass: type) -> str | None:
    """Name of the field through which ``klass`` wraps a model (None: not an accelerator): the
    one every Recommender declares, ``Recommender.wraps``."""
    return klass.wraps


def registry() -> dict[str, type]:
    """``Recommender.registry`` with every :data:`COMPONENT_MODULES` module imported."""
    for mod in COMPONENT_MODULES:
        import_module(mod)
    from ...models.base import Recommender
    return Recommender.registry


def component(name: str) -> type:
    """The registered model or accelerator class called ``name`` (ValueError naming the known ones)."""
    reg = registry()
    if name not in reg:
        raise ValueError(f"unknown model or accelerator {name!r}; known: {sorted(reg)}")
    return reg[name]


def build(name: str, params: dict, inner=None):
    """``name(**params)``, wrapping the model ``inner`` when given."""
    klass = component(name)
    if inner is None:
        return klass(**params)
    return klass(**{wrapped_field(klass): inner}, **params)


def _check_params(klass: type, params: dict, skip: str | None = None) -> None:
    valid = {f.name for f in fields(klass)} - {skip} if is_dataclass(klass) else set()
    bad = sorted(set(params) - valid)
    if bad:
        raise ValueError(f"{klass.__name__}: unknown parameter(s) {bad}; valid: {sorted(valid)}")


def _product(params: dict | None) -> list[dict]:
    """Cartesian product of the list-valued entries (scalars are fixed)."""
    params = dict(params or {})
    keys = sorted(params)
    axes = [v if isinstance(v, list) else [v] for v in (params[k] for k in keys)]
    return [dict(zip(keys, combo)) for combo in itertools.product(*axes)]


def _step(spec) -> dict:
    if isinstance(spec, str):
        spec = {"name": spec}
    if not isinstance(spec, dict) or "name" not in spec or set(spec) - {"name", "params"}:
        raise ValueError(f"an accelerator is None, a name or {{'name': ..., 'params': {{...}}}}, got {spec!r}")
    return {"name": spec["name"], "params": spec.get("params") or {}}


def _chains(block: dict) -> list[list[dict]]:
    chains = []
    for alt in block.get("accelerators") or [None]:
        steps = [] if alt in (None, "none") else [_step(s) for s in (alt if isinstance(alt, list) else [alt])]
        for s in steps:
            acc = component(s["name"])
            field = wrapped_field(acc)
            if field is None:
                raise ValueError(f"{s['name']} is not an accelerator (it declares no field that "
                                 "wraps a model: Recommender.wraps is None)")
            _check_params(acc, s["params"], skip=field)
        per_step = [[{"name": s["name"], "params": p} for p in _product(s["params"])] for s in steps]
        chains += [list(c) for c in itertools.product(*per_step)]
    return chains


def expand_grid(grid) -> list[dict]:
    """Concrete configurations ``{"model", "params", "accel": [{"name", "params"}, ...]}`` of a grid.

    Names and parameters are checked against the registry here, so a typo fails before any fit;
    a configuration listed twice is run once.
    """
    if isinstance(grid, dict):
        grid = grid["grid"] if "grid" in grid else [grid]
    if not isinstance(grid, (list, tuple)) or not grid:
        raise ValueError("a grid is a non-empty list of blocks {'model': NAME, 'params': {...}, "
                         "'accelerators': [...]}")
    out, seen = [], set()
    for block in grid:
        if not isinstance(block, dict) or "model" not in block:
            raise ValueError(f"grid block without a 'model' name: {block!r}")
        bad = set(block) - {"model", "params", "accelerators"}
        if bad:
            raise ValueError(f"grid block has unknown key(s) {sorted(bad)}; use model, params, accelerators")
        _check_params(component(block["model"]), block.get("params") or {})
        chains = _chains(block)
        for params in _product(block.get("params")):
            for chain in chains:
                cfg = {"model": block["model"], "params": params, "accel": chain}
                key = canonical(cfg)
                if key not in seen:
                    seen.add(key)
                    out.append(cfg)
    return out


def label(cfg: dict) -> str:
    """Short readable name, e.g. ``EASE(reg=100.0) + Quantized(dtype=int8)``."""
    def one(name, params):
        return f"{name}({', '.join(f'{k}={v}' for k, v in sorted(params.items()))})" if params else name
    return " + ".join([one(cfg["model"], cfg["params"])] + [one(s["name"], s["params"]) for s in cfg["accel"]])
