"""Two-stage ranking: a retriever proposes C unseen candidates, a ranker re-orders them.

The result is still a full ranking of the catalog (so full-ranking metrics apply): the C
candidates come first in the ranker's order, then every other item in the retriever's order,
items the user has seen last (-inf).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..base import Recommender, mask_rows, topk


@dataclass(eq=False)
class TwoStage(Recommender):
    """``retriever`` (any Recommender) -> top ``candidates`` unseen items -> ``ranker``.

    The ranker must have ``score_candidates(users, items[n, C]) -> [n, C]`` (the sequential
    models do). Unfitted components are fitted on ``fit``'s data; fitted ones are used as they
    are. ``extend`` forwards new events to both components.
    """

    retriever: Recommender
    ranker: Recommender
    candidates: int = 100

    def _fit(self, train):
        if not hasattr(self.ranker, "score_candidates"):
            raise TypeError(f"{type(self.ranker).__name__} has no score_candidates(users, items)")
        for model in {id(self.retriever): self.retriever, id(self.ranker): self.ranker}.values():
            if not model.is_fitted():
                model.fit(train)
        if not 0 < self.candidates <= self.n_items_:
            raise ValueError(f"candidates must be in 1..{self.n_items_}, got {self.candidates}")

    @classmethod
    def from_fitted(cls, retriever: Recommender, ranker: Recommender, candidates: int = 100) -> "TwoStage":
        """Wrap two fitted models without refitting (seen items: the ranker's current ones)."""
        for model in (retriever, ranker):
            model._check_fitted()
        if (retriever.n_users_, retriever.n_items_) != (ranker.n_users_, ranker.n_items_):
            raise ValueError("retriever and ranker must share one id space")
        self = cls(retriever, ranker, candidates)
        self.n_users_, self.n_items_, self.seen_ = ranker.n_users_, ranker.n_items_, ranker.seen_
        self._fit(None)
        return self

    def extend(self, events) -> "TwoStage":
        for model in {id(self.retriever): self.retriever, id(self.ranker): self.ranker}.values():
            model.extend(events)
        seen = self.seen_ + events.to_csr()
        seen.data[:] = 1.0
        self.seen_ = seen.tocsr()
        return self

    def candidate_items(self, users) -> np.ndarray:
        """The retriever's top-C unseen items per user, int64 [n, C] (best first)."""
        return top_candidates(self.retriever, self._check_users(users), self.candidates)

    def _score(self, users):
        s = np.array(self.retriever.score(users), dtype=np.float32)     # [n, N]
        mask_rows(s, self.retriever.seen_, users)
        cand, cand_s = topk(s, self.candidates)                         # [n, C]
        ranked = self.ranker.score_candidates(users, cand)              # [n, C]
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
