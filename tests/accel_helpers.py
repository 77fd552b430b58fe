"""Small models for the accelerator tests: PureSVD on planted blocks and a torch MLP scorer."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from recsys_lab.models.base import Recommender
from recsys_lab.models.capabilities import EmbeddingModel
from recsys_lab.models.sampling import NegativeSampler, positive_pairs, triplet_batches
from recsys_lab.models.svd import PureSVD
from recsys_lab.models.torch_base import TorchRecommender

SVD_RANK = 5  # planted_blocks has 4 blocks: rank 4-5 recovers them (Hit@5 ~0.93)


def svd() -> PureSVD:
    return PureSVD(embedding_size=SVD_RANK, seed=0)


class MLPScorer(nn.Module):
    """Item embeddings and a user embedding mixed by a 2-layer MLP into a query vector."""

    def __init__(self, n_users, n_items, d):
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, d), nn.Embedding(n_items, d)
        self.mlp = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(), nn.Linear(2 * d, d))


@dataclass(eq=False)
class TinyMLP(TorchRecommender):
    """A torch model with linear layers and no vector interface (dynamic quantisation, pruning)."""

    def build_module(self):
        return MLPScorer(self.n_users_, self.n_items_, self.embedding_size)

    def prepare(self, train):
        self._pairs, self._sampler = positive_pairs(self.seen_), NegativeSampler(self.seen_)

    def batches(self, train, rng):
        for u, i, j in triplet_batches(self._sampler, *self._pairs, self.batch_size, rng):
            yield self.to_tensors(u, i, j)

    def compute_loss(self, module, batch):
        u, i, j = batch                                            # [B], [B], [B, 1]
        q = module.mlp(module.user(u))                             # [B, d]
        pos = (q * module.item(i)).sum(-1)                         # [B]
        neg = (q[:, None] * module.item(j)).sum(-1)                # [B, 1]
        return -torch.nn.functional.logsigmoid(pos[:, None] - neg).mean()

    def score_users(self, module, users):
        return module.mlp(module.user(users)) @ module.item.weight.T   # [n, d] @ [d, n_items]


def tiny_mlp() -> TinyMLP:
    return TinyMLP(embedding_size=16, epochs=5, learning_rate=0.02, batch_size=128, seed=0, device="cpu")


@dataclass(eq=False)
class RandomVectors(Recommender, EmbeddingModel):
    """Gaussian user and item tables (continuous: no ties), score = U V^T: a reference-friendly
    embedding model whose tables the tests know exactly."""

    embedding_size: int = 16
    seed: int = 0

    def _fit(self, train):
        rng = np.random.default_rng(self.seed)
        scale = rng.gamma(2.0, 1.0, size=(1, self.embedding_size))          # uneven column energy
        self.users_table_ = (rng.standard_normal((self.n_users_, self.embedding_size)) * scale).astype(np.float32)
        self.items_table_ = (rng.standard_normal((self.n_items_, self.embedding_size)) * scale).astype(np.float32)

    def user_vectors(self, users=None):
        return self.users_table_ if users is None else self.users_table_[self._check_users(users)]

    def item_vectors(self):
        self._check_fitted()
        return self.items_table_

    def _score(self, users):
        return self.users_table_[users] @ self.items_table_.T


def random_interactions(n_users=200, n_items=300, per_user=20, seed=0):
    """Uniformly random histories (no structure), for exactness checks."""
    from recsys_lab.data import Interactions
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    items = np.concatenate([rng.choice(n_items, per_user, replace=False) for _ in range(n_users)])
    return Interactions(users, items, np.arange(n_users), np.arange(n_items), name="random")
