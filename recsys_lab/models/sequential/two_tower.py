"""Two-tower (no interaction): the history is encoded once into one vector, items are embeddings.

    s(u, i) = <v_u, e_i> + b_i,   v_u = Enc([h; q])_q + a_0

(h = the last L = ``max_len`` items, q = one learned query token, a_0 = the open segment's age
vector, e_i = the tied item embeddings, b_i = an item bias). It is ``CachedVectorModel`` with
S = m = 1: one pass per request plus C dot products (or an ANN search), trained with softmax
cross-entropy over the whole catalog.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .data import last_window
from .late_interaction import CachedVectorModel


@dataclass(eq=False)
class TwoTower(CachedVectorModel):
    """History (last ``max_len`` items) + one query token -> one vector; score = dot product."""

    arch = "two_tower"

    def build_module(self):
        return self._history_encoder(m=1, n_ages=1)

    def _n_vectors(self):
        return 1, 1

    def _tokens(self, items, start, t, S=1):
        return last_window(items, start, t, self.max_len)[:, None, :]   # [B, 1, L]

    def make_batch(self, start, t, target, rng):
        return self.to_tensors(self._tokens(self.seq_items_, start, t), target)

    def _update_state(self, u):
        h = self._hist[u]
        tok = last_window(h, np.zeros(1, np.int64), np.array([len(h)]), self.max_len)  # [1, L]
        with self._serve():
            self.cache_[u] = self.module_(torch.as_tensor(tok, device=self.device_))   # [1, 1, d]
