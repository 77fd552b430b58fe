"""The shared base of every accelerator: a Recommender that wraps a trained Recommender.

    acc = SomeAccelerator(trained_model, knob=...)     # built at once when the model is fitted
    acc = SomeAccelerator(SomeModel(...)).fit(train)   # or: fit trains the wrapped model, then builds

Every accelerator names the model it wraps in one declared field, ``wraps`` (``"model"`` here;
a sweep or a chain walks ``getattr(acc, type(acc).wraps)``), and checks at construction that the
model can do what it needs (``_check_model``: e.g. ANNIndex wants an EmbeddingModel or a
MultiVectorModel). A wrapper is a ``Composite``: it reuses the wrapped model's id space and seen
set (one per chain, held by the innermost model), nests its config under ``model`` and saves the
wrapped model's state next to its own, so ``Recommender.load`` round-trips a whole chain such as
``Cached(ANNIndex(PureSVD()))``. ``update(user, item, timestamp=None)`` reaches the innermost
model (its seen set grows) and every wrapper in the chain refreshes its per-user state.

Capabilities pass through: a wrapper supports EmbeddingModel when its model does (``forwards``),
serving the model's vectors (or its own: decoded tables, an index's items).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..models.base import Recommender
from ..models.capabilities import EmbeddingModel
from ..models.composite import Composite


@dataclass(eq=False)
class Wrapper(Composite):
    """Base of the accelerators. Subclasses implement ``_build()`` (from the fitted ``model``) and
    ``_score`` (and may override ``_recommend``, ``_score_items``); optional hooks
    ``_check_model(model)``, ``_update_users(users)`` (their histories grew) and
    ``_own_state()``/``_restore(state)`` (state worth saving rather than rebuilding)."""

    model: Recommender | None = None

    components: ClassVar[tuple[str, ...]] = ("model",)
    wraps: ClassVar[str] = "model"
    primary: ClassVar[str] = "model"
    forwards: ClassVar[tuple[type, ...]] = (EmbeddingModel,)   # capabilities it has when its model has

    # ---- construction ---------------------------------------------------------------------
    def _check_components(self) -> None:
        if self.model is not None:
            self._check_model(self.model)

    def _check_model(self, model: Recommender) -> None:
        """Raise TypeError when ``model`` lacks a capability this wrapper needs (default: none)."""

    def _fit_components(self, train, valid) -> None:
        """Fit the wrapped model on ``train`` (scikit-learn semantics: it is retrained)."""
        self.model.fit(train, valid=valid)

    def supports(self, capability: type) -> bool:
        return super().supports(capability) or (
            capability in self.forwards and self.model is not None and self.model.supports(capability))

    # ---- serving defaults: the wrapped model's --------------------------------------------
    def _score(self, users):
        return self.model._score(users)

    def _require_embedding(self) -> None:
        if not self.supports(EmbeddingModel):
            name = "no model" if self.model is None else type(self.model).__name__
            raise TypeError(f"{type(self).__name__} over {name} is not an EmbeddingModel "
                            "(no user_vectors/item_vectors)")

    def user_vectors(self, users=None) -> np.ndarray:
        """The wrapped model's user vectors (EmbeddingModel chains only)."""
        self._require_embedding()
        return self.model.user_vectors(users)

    def item_vectors(self) -> np.ndarray:
        self._require_embedding()
        return self.model.item_vectors()

    def vector_measure(self) -> str:
        self._require_embedding()
        return self.model.vector_measure()

    def embedding_bytes(self) -> int:
        """Bytes of the served embedding tables (the wrapped model's unless this wrapper re-encodes them)."""
        self._require_embedding()
        return self.model.embedding_bytes()
