"""Item2Vec (Barkan & Koenigstein 2016): word2vec skip-gram with negative sampling over baskets.

Every basket (``Interactions.session``: an invoice, a session; without sessions, a user's whole
history) is a "sentence" whose items are all each other's context. For a (target i, context c)
pair and k negatives n drawn from the unigram distribution to the 3/4 (Mikolov et al. 2013):

    L = -log sigma(w_i . c_c) - sum_n log sigma(-w_i . c_n)          (+ reg on the batch vectors)

A user is scored by similarity to their history: e_u = mean_{j in H_u} w_j/|w_j|, s(u, i) = e_u . w_i/|w_i|
(refreshed for the user on ``update``/``extend``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
import torch.nn.functional as F
from torch import nn

from .sampling import NegativeSampler
from .torch_base import EmbeddingRecommender, minibatches


class SkipGram(nn.Module):
    """Target vectors W [n_items, d], context vectors C [n_items, d]; cached serving vectors."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.target = nn.Embedding(n_items, dim)
        self.context = nn.Embedding(n_items, dim)
        nn.init.uniform_(self.target.weight, -0.5 / dim, 0.5 / dim)      # word2vec's init
        nn.init.zeros_(self.context.weight)
        self.register_buffer("user_out", torch.zeros(n_users, dim))
        self.register_buffer("item_out", torch.zeros(n_items, dim))


def basket_pairs(basket_ids: np.ndarray, items: np.ndarray, max_basket: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """All ordered (target, context) pairs of distinct items sharing a basket.

    Baskets longer than ``max_basket`` keep a random ``max_basket`` of their items.
    """
    order = np.lexsort((items, basket_ids))
    b, it = basket_ids[order], items[order]
    keep = np.r_[True, (b[1:] != b[:-1]) | (it[1:] != it[:-1])]         # one event per (basket, item)
    b, it = b[keep], it[keep]
    starts = np.flatnonzero(np.r_[True, b[1:] != b[:-1]])
    ends = np.r_[starts[1:], len(b)]
    targets, contexts = [], []
    for s, e in zip(starts, ends):
        basket = it[s:e]
        if len(basket) < 2:
            continue
        if len(basket) > max_basket:
            basket = rng.choice(basket, max_basket, replace=False)
        t, c = np.meshgrid(basket, basket, indexing="ij")
        off = t != c
        targets.append(t[off])
        contexts.append(c[off])
    if not targets:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(targets).astype(np.int64), np.concatenate(contexts).astype(np.int64)


@dataclass(eq=False)
class Item2Vec(EmbeddingRecommender):
    """Skip-gram with negative sampling over baskets; users scored by history similarity."""

    n_negatives: int = 5
    max_basket: int = 50
    learning_rate: float = 1e-2
    reg: float = 0.0

    def _check_config(self):
        super()._check_config()
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives!r}")
        if self.max_basket < 2:
            raise ValueError(f"max_basket must be >= 2, got {self.max_basket!r}")

    def prepare(self, train):
        baskets = train.session if train.session is not None else train.user.astype(np.int64)
        self._pairs = basket_pairs(baskets, train.item, self.max_basket, np.random.default_rng(self.seed))
        if not len(self._pairs[0]):
            raise ValueError("Item2Vec needs baskets (sessions or users) with at least 2 distinct items")
        empty = sp.csr_matrix((self.n_items_, self.n_items_), dtype=np.float32)
        self._sampler = NegativeSampler(empty, distribution="popularity", alpha=0.75,
                                        counts=np.bincount(train.item, minlength=self.n_items_))

    def build_module(self):
        return SkipGram(self.n_users_, self.n_items_, self.embedding_size)

    def batches(self, train, rng):
        t, c = self._pairs
        for b in minibatches(len(t), self.batch_size, rng):
            yield self.to_tensors(t[b], c[b], self._sampler.sample(t[b], rng, self.n_negatives))

    def compute_loss(self, module, batch):
        t, c, n = batch                                         # [B], [B], [B, k]
        w = module.target(t)                                    # [B, d]
        pos = (w * module.context(c)).sum(-1)                   # [B]
        neg = torch.einsum("bd,bkd->bk", w, module.context(n))  # [B, k]
        loss = (-F.logsigmoid(pos) - F.logsigmoid(-neg).sum(-1)).mean()
        return loss + self.reg * w.pow(2).sum(-1).mean() if self.reg else loss

    def refresh(self):
        m = self.module_
        with torch.no_grad():
            V = F.normalize(m.target.weight, dim=1)             # [n_items, d]
            seen = self.seen_.tocoo()
            rows = torch.as_tensor(seen.row, dtype=torch.long, device=V.device)
            cols = torch.as_tensor(seen.col, dtype=torch.long, device=V.device)
            U = torch.zeros_like(m.user_out).index_add_(0, rows, V[cols])      # sum of history vectors
            count = torch.bincount(rows, minlength=self.n_users_).clamp(min=1)
            m.user_out.copy_(U / count[:, None])
            m.item_out.copy_(V)

    def _update_users(self, users):
        """e_u = the mean of the (grown) history's normalised vectors, for these users."""
        m = self.module_
        with torch.no_grad():
            for u in users:
                items = torch.as_tensor(self.seen_set_.items(u), dtype=torch.long, device=m.item_out.device)
                m.user_out[int(u)] = m.item_out[items].sum(0) / max(len(items), 1)

    def factors(self, module):
        return module.user_out, module.item_out

    def similar_items(self, item: int, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` items with the most similar vectors (cosine), excluding ``item`` itself."""
        V = self.item_vectors()
        if not 0 <= item < len(V):
            raise IndexError(f"unknown item index {item} (model knows {len(V)} items)")
        if not 0 < k < len(V):
            raise ValueError(f"k must be in 1..{len(V) - 1}, got {k}")
        sims = V @ V[item]
        sims[item] = -np.inf
        top = np.argsort(-sims, kind="stable")[:k]
        return top, sims[top]
