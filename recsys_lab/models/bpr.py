"""BPR-MF: matrix factorisation trained with Bayesian Personalized Ranking (Rendle et al., UAI 2009).

Score s(u, i) = e_u . e_i. For a positive (u, i) and a uniformly sampled negative j:

    loss="bpr":        L = -log sigma(s(u,i) - s(u,j))           + reg (|e_u|^2 + |e_i|^2 + |e_j|^2)
    loss="pointwise":  L = -log sigma(s(u,i)) - sum_j log sigma(-s(u,j)) + reg (...)

averaged over the batch; the pointwise form is the source article's section 4.2 loss (positives
pushed to 1, sampled negatives to 0), the pairwise one only asks positives to outrank negatives.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .sampling import NegativeSampler, positive_pairs, triplet_batches
from .torch_base import EmbeddingRecommender


class MatrixFactorization(nn.Module):
    """Two embedding tables, Xavier-normal initialised (as in RecBole)."""

    def __init__(self, n_users: int, n_items: int, dim: int):
        super().__init__()
        self.user = nn.Embedding(n_users, dim)                 # [n_users, d]
        self.item = nn.Embedding(n_items, dim)                 # [n_items, d]
        nn.init.xavier_normal_(self.user.weight)
        nn.init.xavier_normal_(self.item.weight)


def bpr_loss(eu: torch.Tensor, ei: torch.Tensor, ej: torch.Tensor, reg: float,
             pointwise: bool = False) -> torch.Tensor:
    """Batch-mean BPR (or pointwise logistic) loss with L2 on the batch's embeddings.

    eu, ei: [B, d]; ej: [B, n_neg, d].
    """
    pos = (eu * ei).sum(-1)                                    # [B]
    neg = (eu[:, None, :] * ej).sum(-1)                        # [B, n_neg] (an einsum runs as a
    #                                                            B-batch bmm of 1 x d @ d x n_neg,
    #                                                            whose backward is 3x slower on CPU)
    if pointwise:
        fit = -F.logsigmoid(pos) - F.logsigmoid(-neg).sum(-1)  # [B]
    else:
        fit = -F.logsigmoid(pos[:, None] - neg).mean(-1)       # [B]
    return fit.mean() + reg * batch_l2(eu, ei, ej) if reg else fit.mean()


def batch_l2(eu: torch.Tensor, ei: torch.Tensor, ej: torch.Tensor) -> torch.Tensor:
    """Batch mean of |e_u|^2 + |e_i|^2 + sum_j |e_j|^2 (eu, ei: [B, d]; ej: [B, n_neg, d])."""
    return (eu.pow(2).sum(-1) + ei.pow(2).sum(-1) + ej.pow(2).sum((-2, -1))).mean()


@dataclass(eq=False)
class BPRMF(EmbeddingRecommender):
    """Matrix factorisation with the BPR loss and uniform negatives (``loss="pointwise"``: the
    article's logistic form). ``n_negatives`` negatives per positive."""

    loss: str = "bpr"
    n_negatives: int = 1

    def _check_config(self):
        super()._check_config()
        if self.loss not in ("bpr", "pointwise"):
            raise ValueError(f"loss must be 'bpr' or 'pointwise', got {self.loss!r}")
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives!r}")

    def prepare(self, train):
        self._pairs = positive_pairs(self.seen_)
        self._sampler = NegativeSampler(self.seen_)

    def build_module(self):
        return MatrixFactorization(self.n_users_, self.n_items_, self.embedding_size)

    def batches(self, train, rng):
        for u, i, j in triplet_batches(self._sampler, *self._pairs, self.batch_size, rng, self.n_negatives):
            yield self.to_tensors(u, i, j)

    def compute_loss(self, module, batch):
        u, i, j = batch                                        # [B], [B], [B, n_neg]
        return bpr_loss(module.user(u), module.item(i), module.item(j), self.reg,
                        pointwise=self.loss == "pointwise")

    def factors(self, module):
        return module.user.weight, module.item.weight
