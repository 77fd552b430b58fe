"""Composite: a Recommender built from other Recommenders, named in its declared ``components``.

Accelerators (one wrapped model) and two-stage ranking (a retriever and a ranker) are composites.
A composite owns no seen set and no id space: both are its ``primary`` component's (for a chain
of wrappers, the innermost model's), so there is one seen set per chain. ``update``/``extend``
go to every component once, then the composite refreshes its own per-user state
(``_update_users``). Config nests the components, ``save``/``load`` carries their state.

Lifecycle: built at construction when every component is fitted (``build()``), else by ``fit``,
which fits the components (``_fit_components``: each subclass says how) and then builds.
"""
from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import Recommender, _nbytes, check_fit_data


@dataclass(eq=False)
class Composite(Recommender):
    """Shared plumbing of wrappers and two-stage models (see the module docstring)."""

    primary: ClassVar[str]                       # the component whose id space and seen set it uses

    def __post_init__(self):
        self._built = False
        super().__post_init__()
        self._check_components()
        parts = self.parts()
        if parts and len(parts) == len(self.components) and all(p.is_fitted() for p in parts.values()):
            self.build()

    # ---- to implement ---------------------------------------------------------------------
    def _check_components(self) -> None:
        """Check at construction that the components can do what this composite needs."""

    @abstractmethod
    def _fit_components(self, train, valid) -> None:
        """Fit the components on ``train`` (and ``valid``) the way this composite wants."""

    @abstractmethod
    def _build(self) -> None:
        """Build the composite's own serving state from its fitted components."""

    # ---- lifecycle ------------------------------------------------------------------------
    def fit(self, train, valid=None) -> "Composite":
        check_fit_data(train, valid)
        if len(self.parts()) < len(self.components):
            raise RuntimeError(f"{type(self).__name__} has no {'/'.join(self.components)} to fit")
        self._fit_components(train, valid)
        return self.build()

    def _fit(self, train) -> None:
        self._fit_components(train, None)

    def build(self) -> "Composite":
        """(Re)build from the components' current state."""
        missing = [n for n in self.components if getattr(self, n) is None or not getattr(self, n).is_fitted()]
        if missing:
            raise RuntimeError(f"{type(self).__name__}: {', '.join(missing)} not fitted")
        shapes = {(p.n_users_, p.n_items_) for p in self.parts().values()}
        if len(shapes) > 1:
            raise ValueError(f"{type(self).__name__}: its components must share one id space, got {sorted(shapes)}")
        self._built = False
        self._build()
        self._built = True
        return self

    def is_fitted(self) -> bool:
        parts = self.parts()
        return (self.__dict__.get("_built", False) and len(parts) == len(self.components)
                and all(p.is_fitted() for p in parts.values()))

    def _check_fitted(self):
        if not self.is_fitted():
            raise RuntimeError(f"{type(self).__name__} is not fitted: wrap fitted models or call fit(train) first")

    # ---- id space and seen set: the primary component's -----------------------------------
    def _primary(self) -> Recommender:
        model = getattr(self, self.primary)
        if model is None:
            raise AttributeError(f"{type(self).__name__} has no {self.primary}")
        return model

    @property
    def n_users_(self) -> int:
        return self._primary().n_users_

    @property
    def n_items_(self) -> int:
        return self._primary().n_items_

    @property
    def seen_set_(self):
        return self._primary().seen_set_

    @seen_set_.setter
    def seen_set_(self, value):
        self._primary().seen_set_ = value

    def _distinct_parts(self) -> list[Recommender]:
        return list({id(p): p for p in self.parts().values()}.values())

    # ---- new events: every component once, then this composite's own state ----------------
    def _update(self, user, item, timestamp):
        for part in self._distinct_parts():
            part._update(user, item, timestamp)
        self._update_users(np.array([user]))

    def _extend(self, events):
        for part in self._distinct_parts():
            part._extend(events)
        self._update_users(np.unique(events.user).astype(np.int64))

    # ---- serving state and counters ---------------------------------------------------------
    def serving_bytes(self) -> int:
        """Own serving state plus that of every component."""
        own = sum(_nbytes(v) for k, v in vars(self).items() if k.endswith("_"))
        return own + sum(p.serving_bytes() for p in self._distinct_parts())

    def stats(self) -> dict:
        out = {}
        for part in self._distinct_parts():
            out.update(part.stats())
        return out

    # ---- persistence: components under "<field>.", then the own state ---------------------
    def _own_state(self) -> dict[str, np.ndarray]:
        return {}

    def _load_own_state(self, state) -> None:
        self._restore(state)
        self._built = True

    def _restore(self, state: dict[str, np.ndarray]) -> None:
        """Own state from a saved file (default: rebuild it from the components)."""
        self._build()
