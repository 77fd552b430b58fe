"""Two-stage ranking: a retriever proposes C unseen candidates, a ranker re-orders them.

The result is still a full ranking of the catalog (so full-ranking metrics apply): the C
candidates come first in the ranker's order, then every other item in the retriever's order,
items the user has seen last (-inf).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ..base import Recommender
from ..composite import Composite
from ..ranking import mask_rows, topk


@dataclass(eq=False)
class TwoStage(Composite):
    """``retriever`` (any Recommender) -> top ``candidates`` unseen items -> ``ranker`` (any
    Recommender: it scores the candidates with ``score(users, items=...)``).

    A composite of two declared components: unfitted ones are fitted on ``fit``'s data, fitted
    ones are used as they are (and a TwoStage of two fitted models is ready at construction).
    The seen set and id space are the ranker's; ``update``/``extend`` reach both components.
    """

    retriever: Recommender
    ranker: Recommender
    candidates: int = 100

    components: ClassVar[tuple[str, ...]] = ("retriever", "ranker")
    primary: ClassVar[str] = "ranker"

    def _check_config(self):
        if self.candidates < 1:
            raise ValueError(f"candidates must be a positive integer, got {self.candidates!r}")

    def _fit_components(self, train, valid):
        for model in self._distinct_parts():
            if not model.is_fitted():
                model.fit(train, valid=valid)

    def _build(self):
        if self.candidates > self.n_items_:
            raise ValueError(f"candidates must be in 1..{self.n_items_}, got {self.candidates}")

    @classmethod
    def from_fitted(cls, retriever: Recommender, ranker: Recommender, candidates: int = 100) -> "TwoStage":
        """Two fitted models, used as they are (the same as the constructor, checked fitted)."""
        for model in (retriever, ranker):
            model._check_fitted()
        return cls(retriever, ranker, candidates)

    def candidate_items(self, users) -> np.ndarray:
        """The retriever's top-C unseen items per user, int64 [n, C] (best first)."""
        return top_candidates(self.retriever, self._check_users(users), self.candidates)

    def _score(self, users):
        s = np.array(self.retriever.score(users), dtype=np.float32)     # [n, N]
        mask_rows(s, self.retriever.seen_, users)
        cand, cand_s = topk(s, self.candidates)                         # [n, C]
        ranked = self.ranker.score(users, items=cand)                   # [n, C]
        rows = np.arange(len(users))[:, None]
        # everything else keeps the retriever's order, strictly below the lowest candidate
        low = ranked.min(1, keepdims=True) - 1.0
        out = low + (s - cand_s[:, -1:]) - 1e-3
        out[rows, cand] = ranked
        return out


def top_candidates(retriever: Recommender, users, C: int) -> np.ndarray:
    """First stage alone: ``retriever``'s top-``C`` items per user, seen items masked, [n, C]."""
    users = np.asarray(users, dtype=np.int64)
    s = np.array(retriever.score(users), dtype=np.float32)
    mask_rows(s, retriever.seen_, users)
    return topk(s, C)[0]
