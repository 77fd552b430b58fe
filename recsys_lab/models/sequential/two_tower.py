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

    def estimate_cost(self, n_users: int, n_items: int, n_events: int):
        """Per epoch n_users x ``samples_per_user`` examples, each an encoder pass over L + 1
        tokens and full-catalog softmax logits (2 n_items d), x3 for the backward pass, plus dense
        AdamW over the item table per step and the serving refresh (``cost_model``'s FLOPs).
        Memory: the item table with grad and AdamW state, a batch of logits (about 24 float32
        [batch, n_items] buffers live through forward and backward: measured), histories, the
        cache, torch's runtime."""
        from ..cost import TORCH_ELEMENTS, TORCH_FLOPS, TORCH_RUNTIME_BYTES, CostEstimate, train_csr_bytes
        from .cost_model import layer_flops
        d, L = int(self.embedding_size), int(self.max_len)
        encode = int(self.n_layers) * layer_flops(L + 1, d)
        examples = float(n_users) * int(self.samples_per_user)
        steps = self.epochs * -(-int(examples) // int(self.batch_size))
        flops = self.epochs * (3.0 * examples * (encode + 2.0 * n_items * d) + n_users * encode)
        seconds = flops / TORCH_FLOPS + steps * 12.0 * n_items * d / TORCH_ELEMENTS
        memory = train_csr_bytes(n_users, n_events) + 32.0 * n_events + 16.0 * n_items * d + \
            96.0 * int(self.batch_size) * n_items + 4.0 * n_users * d + TORCH_RUNTIME_BYTES
        return CostEstimate(memory, seconds, "the item table, its AdamW state and the batch logits",
                            "full-catalog softmax over every training example")
