"""Negative sampling for implicit feedback: draw items the user has not interacted with.

Uniform sampling (BPR, Rendle et al. 2009) or from the unigram distribution raised to ``alpha``
(word2vec's 3/4, Mikolov et al. 2013). Collisions with the user's positives are redrawn
(rejection sampling); a positive is found by one bit lookup in a packed bitmap of the
``n_users x n_items`` cells ``user * n_items + item`` (up to ``BITMAP_MAX_CELLS`` cells: 32 MB), or
by one ``searchsorted`` over the sorted keys beyond that. Both give the same answer, so the draws
are the same either way.

Hard negatives (``HardNegativeMiner``): items a first-stage model ranks high for the same history
window, as re-rankers are trained on the results of the retriever they re-rank (Nogueira & Cho,
"Passage Re-ranking with BERT", 2019; Gao, Dai & Callan, "Rethink Training of BERT Rerankers in
Multi-Stage Retrieval Pipeline", ECIR 2021). The first stage declares that it can score a window
by subclassing ``WindowScorer``.
"""
from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp

from .base import mask_rows, topk

BITMAP_MAX_CELLS = 1 << 28          # users x items up to which positives are looked up in a bitmap


class NegativeSampler:
    """Draws negatives for (user) rows, avoiding the positives stored in ``seen`` (CSR).

    ``counts`` (optional, [n_items]) replaces the per-item interaction counts of ``seen`` as the
    popularity of the ``"popularity"`` distribution.
    """

    def __init__(self, seen: sp.csr_matrix, distribution: str = "uniform", alpha: float = 0.75,
                 max_tries: int = 32, counts: np.ndarray | None = None):
        if distribution not in ("uniform", "popularity"):
            raise ValueError(f"distribution must be 'uniform' or 'popularity', got {distribution!r}")
        seen = sp.csr_matrix(seen)
        seen.sort_indices()
        self.n_users, self.n_items = seen.shape
        rows = np.repeat(np.arange(self.n_users, dtype=np.int64), np.diff(seen.indptr))
        self.keys = rows * self.n_items + seen.indices              # sorted: CSR is row-major
        self.bitmap = None                                          # packed bits of the cells
        if 0 < self.n_users * self.n_items <= BITMAP_MAX_CELLS:
            self.bitmap = np.zeros(-(-self.n_users * self.n_items // 8), dtype=np.uint8)
            np.bitwise_or.at(self.bitmap, self.keys >> 3, (1 << (self.keys & 7)).astype(np.uint8))
        self.max_tries = max_tries
        self.cdf = None
        if distribution == "popularity":
            if counts is None:                                      # popularity = interactions per item
                counts = np.bincount(seen.indices, minlength=self.n_items)
            p = np.asarray(counts, dtype=np.float64) ** alpha
            self.cdf = np.cumsum(p / p.sum())

    def _draw(self, n: int, rng: np.random.Generator) -> np.ndarray:
        if self.cdf is None:
            return rng.integers(0, self.n_items, size=n)
        return np.minimum(np.searchsorted(self.cdf, rng.random(n), side="right"), self.n_items - 1)

    def is_positive(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Boolean mask: is ``(users[k], items[k])`` a stored positive?"""
        q = np.asarray(users, dtype=np.int64) * self.n_items + items
        if self.bitmap is not None:                                 # bit q of the packed cells
            return ((self.bitmap[q >> 3] >> (q & 7).astype(np.uint8)) & 1).astype(bool)
        pos = np.minimum(np.searchsorted(self.keys, q), max(len(self.keys) - 1, 0))
        return self.keys[pos] == q if len(self.keys) else np.zeros(q.shape, bool)

    def sample(self, users: np.ndarray, rng: np.random.Generator, n_neg: int = 1) -> np.ndarray:
        """Negatives, int64 [len(users), n_neg]. A user who has seen every item keeps a draw."""
        users = np.repeat(np.asarray(users, dtype=np.int64), n_neg)
        neg = self._draw(len(users), rng)
        bad = np.flatnonzero(self.is_positive(users, neg))
        for _ in range(self.max_tries):
            if not len(bad):
                break
            neg[bad] = self._draw(len(bad), rng)
            bad = bad[self.is_positive(users[bad], neg[bad])]
        return neg.reshape(-1, n_neg)


def triplet_batches(sampler: NegativeSampler, users: np.ndarray, items: np.ndarray, batch_size: int,
                    rng: np.random.Generator, n_neg: int = 1):
    """One epoch over the positive pairs in random order: yields (u [B], i [B], j [B, n_neg])."""
    order = rng.permutation(len(users))
    for lo in range(0, len(order), batch_size):
        b = order[lo:lo + batch_size]
        yield users[b], items[b], sampler.sample(users[b], rng, n_neg)


def positive_pairs(seen: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
    """The (user, item) pairs stored in a CSR matrix (duplicates already merged)."""
    seen = sp.csr_matrix(seen)
    users = np.repeat(np.arange(seen.shape[0], dtype=np.int64), np.diff(seen.indptr))
    return users, seen.indices.astype(np.int64)


class WindowScorer(ABC):
    """Capability: scores of every item for history windows, as the model would serve them.

    A window is one row of int64 tokens [B, L]: item index + 1, right-aligned, 0 = padding (the
    layout of ``SASRec.tokens``); its non-padding items are the history, oldest first.
    """

    @abstractmethod
    def score_windows(self, tokens: np.ndarray) -> np.ndarray:
        """tokens int64 [B, L] -> scores float32 [B, n_items] (higher is better)."""


class HardNegativeMiner:
    """Negatives drawn uniformly from a fitted first stage's top-``top`` items for each window.

    The window's own items and the target are excluded before the top-k (ties to the lower item
    index: ``recsys_lab.models.base.topk``), so a mined negative is never the target or an item
    of the window.
    """

    def __init__(self, model: WindowScorer, top: int = 100):
        if not model.supports(WindowScorer):
            raise TypeError(f"cannot mine negatives from {type(model).__name__}: it does not "
                            "implement WindowScorer.score_windows(tokens)")
        model._check_fitted()
        if int(top) < 1:
            raise ValueError(f"top must be >= 1, got {top!r}")
        self.model, self.top = model, int(top)

    def _window_scores(self, tokens: np.ndarray) -> np.ndarray:
        """The first stage's scores float32 [B, N] (a copy) with each window's own items at -inf."""
        tokens = np.asarray(tokens, dtype=np.int64)
        s = np.array(self.model.score_windows(tokens), dtype=np.float32)        # [B, N] a copy
        rows, cols = np.nonzero(tokens > 0)
        s[rows, tokens[rows, cols] - 1] = -np.inf                              # history items out
        return s

    @staticmethod
    def _top(s: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        items, vals = topk(s, min(k, s.shape[1]))
        return items, np.isfinite(vals).sum(1)

    def top_items(self, tokens: np.ndarray, k: int | None = None,
                  exclude: sp.spmatrix | None = None) -> tuple[np.ndarray, np.ndarray]:
        """The first stage's top-``k`` (default ``top``) items per window with the window's items
        and the rows of ``exclude`` (CSR [B, n_items], e.g. the users' seen items) masked: the
        candidates a two-stage system re-ranks. Returns (items [B, k], unmasked counts [B])."""
        s = self._window_scores(tokens)
        if exclude is not None:
            mask_rows(s, sp.csr_matrix(exclude), np.arange(len(s)))
        return self._top(s, k or self.top)

    def candidates(self, tokens: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The first stage's top-``top`` items per window, history and target masked (-inf), best
        first: (items int64 [B, k], how many of them are not masked int64 [B])."""
        s = self._window_scores(tokens)
        s[np.arange(len(s)), np.asarray(target, dtype=np.int64)] = -np.inf     # the target out
        return self._top(s, self.top)

    def sample(self, tokens: np.ndarray, target: np.ndarray, n: int,
               rng: np.random.Generator) -> np.ndarray:
        """n negatives per window, int64 [B, n], uniform with replacement over its unmasked
        candidates (a masked item only when the window and target cover the whole catalog)."""
        top, n_ok = self.candidates(tokens, target)
        pick = rng.integers(0, np.maximum(n_ok, 1)[:, None], size=(len(top), n))
        return np.take_along_axis(top, pick, 1)
