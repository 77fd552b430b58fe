"""The data set registry: ``register_dataset`` adds a loader under a name, ``load_dataset``
(in ``loaders``) finds it."""
from __future__ import annotations

from typing import Callable

from .interactions import Interactions

REGISTRY: dict[str, tuple[Callable[..., Interactions], str]] = {}


def register_dataset(name: str, description: str):
    """Decorator adding a loader ``fn(**options) -> Interactions`` under ``name``."""
    def deco(fn):
        REGISTRY[name] = (fn, description)
        return fn
    return deco


def list_datasets() -> dict[str, str]:
    """Known data set names and a one-line description of each."""
    return {name: desc for name, (_, desc) in REGISTRY.items()}
