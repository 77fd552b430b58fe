"""Neural collaborative filtering (He et al., WWW 2017): GMF, MLP and their fusion NeuMF.

    GMF:    phi_G = p_u * q_i                                   (element-wise product, [d])
    MLP:    phi_M = MLP([p'_u ; q'_i])                          (ReLU tower, [h_last])
    NeuMF:  y_hat(u, i) = sigma( h^T [phi_G ; phi_M] )          (separate embeddings per branch)

trained with binary cross-entropy on each positive and ``n_negatives`` sampled negatives,
L = -sum log y_hat(u,i) - sum_j log(1 - y_hat(u,j)) (+ reg on the batch's embeddings).

The MLP's first layer is linear in the concatenation, W [p'_u ; q'_i] = W_u p'_u + W_i q'_i, so
each user's and each item's half is computed once and the halves are added per pair (the same
function; used whenever that layer's input dropout is off, i.e. ``dropout=0`` or at scoring).
Full ranking scores every item: the GMF branch as one matmul (p_u * h_G) @ Q^T, the MLP tower
on [n_users_batch, n_items] pair rows from the first layer on.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .sampling import NegativeSampler, positive_pairs, triplet_batches
from .torch_base import TorchRecommender


_PAIR_ROWS = 8192     # (user, item) rows per tower pass when scoring: 2 MB per 64-wide layer (L2)


class NeuMFModule(nn.Module):
    def __init__(self, n_users: int, n_items: int, dim: int, layers: tuple[int, ...], kind: str,
                 dropout: float):
        super().__init__()
        self.kind = kind
        out = 0
        if kind in ("gmf", "neumf"):
            self.gmf_user, self.gmf_item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
            out += dim
        if kind in ("mlp", "neumf"):
            self.mlp_user, self.mlp_item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
            tower, width = [], 2 * dim
            for h in layers:
                tower += [nn.Dropout(dropout), nn.Linear(width, h), nn.ReLU()]
                width = h
            self.tower = nn.Sequential(*tower)
            out += width
        self.predict = nn.Linear(out, 1)
        for m in self.modules():
            if isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.01)
            elif isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """Logits for pairs: LongTensors u, i that broadcast to one shape [...] -> [...]."""
        parts = []
        if self.kind in ("gmf", "neumf"):
            parts.append(self.gmf_user(u) * self.gmf_item(i))                     # [..., d]
        if self.kind in ("mlp", "neumf"):
            parts.append(self.tower_from_pairs(u, i))                             # [..., h]
        return self.predict(torch.cat(parts, -1)).squeeze(-1)                      # parts: broadcast

    def tower_from_pairs(self, u: torch.Tensor, i: torch.Tensor) -> torch.Tensor:
        """phi_M of the pairs (u, i broadcast) -> [..., h_last]."""
        drop = self.tower[0]
        if drop.p and drop.training:             # dropout on the concatenation: the literal form
            pu, qi = torch.broadcast_tensors(self.mlp_user(u), self.mlp_item(i))
            return self.tower(torch.cat([pu, qi], -1))
        return self.tower_from_halves(*self.first_layer_halves(u, i))

    def first_layer_halves(self, u: torch.Tensor, i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """W [p; q] + b = (W_u p + b) + W_i q: the user half [..u, h1] and the item half [..i, h1]."""
        first, d = self.tower[1], self.mlp_user.embedding_dim
        return (F.linear(self.mlp_user(u), first.weight[:, :d], first.bias),
                F.linear(self.mlp_item(i), first.weight[:, d:]))

    def tower_from_halves(self, half_u: torch.Tensor, half_i: torch.Tensor) -> torch.Tensor:
        """The tower from its first layer's halves (broadcast, then ReLU and layers 2..)."""
        return self.tower[3:](torch.relu(half_u + half_i))

    def score_all(self, u: torch.Tensor) -> torch.Tensor:
        """Logits of every item for users u [n] -> [n, n_items] (eval mode: no dropout)."""
        w, out, at = self.predict.weight[0], self.predict.bias, 0                 # w: [d + h]
        if self.kind in ("gmf", "neumf"):
            d = self.gmf_user.embedding_dim
            out = out + (self.gmf_user(u) * w[:d]) @ self.gmf_item.weight.T      # [n, n_items]
            at = d
        if self.kind in ("mlp", "neumf"):
            items = torch.arange(self.mlp_item.num_embeddings, device=u.device)
            half_u, half_i = self.first_layer_halves(u[:, None], items[None, :])  # [n, 1, h1], [1, n_items, h1]
            step = max(1, _PAIR_ROWS // len(items))             # users whose pair rows fit in cache
            out = out + torch.cat([self.tower_from_halves(half_u[lo:lo + step], half_i) @ w[at:]
                                   for lo in range(0, len(u), step)])                  # [n, n_items]
        return out

    def embeddings(self, u, i):
        return [m(x) for name, m in self.named_children() if isinstance(m, nn.Embedding)
                for x in ([u] if name.endswith("user") else [i])]


@dataclass(eq=False)
class NeuMF(TorchRecommender):
    """GMF / MLP / NeuMF (``kind``) trained with BCE on sampled negatives (He et al. 2017)."""

    kind: str = "neumf"
    layers: tuple = (64, 32, 16)
    n_negatives: int = 4
    dropout: float = 0.0
    reg: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        self.layers = tuple(int(h) for h in self.layers)          # a list from JSON config too

    def _check_config(self):
        super()._check_config()
        if self.kind not in ("gmf", "mlp", "neumf"):
            raise ValueError(f"kind must be 'gmf', 'mlp' or 'neumf', got {self.kind!r}")
        if self.n_negatives < 1:
            raise ValueError(f"n_negatives must be >= 1, got {self.n_negatives!r}")
        if not self.layers or any(isinstance(h, bool) or not isinstance(h, (int, np.integer)) or h < 1
                                  for h in self.layers):
            raise ValueError(f"layers must be positive widths, got {self.layers!r}")

    def prepare(self, train):
        self._pairs = positive_pairs(self.seen_)
        self._sampler = NegativeSampler(self.seen_)

    def build_module(self):
        return NeuMFModule(self.n_users_, self.n_items_, self.embedding_size,
                           tuple(int(h) for h in self.layers), self.kind, self.dropout)

    def batches(self, train, rng):
        for u, i, j in triplet_batches(self._sampler, *self._pairs, self.batch_size, rng, self.n_negatives):
            yield self.to_tensors(u, i, j)

    def compute_loss(self, module, batch):
        u, i, j = batch                                         # [B], [B], [B, n_neg]
        logits = module(u[:, None], torch.cat([i[:, None], j], 1))   # [B, 1 + n_neg]: one pass
        pos, neg = logits[:, 0], logits[:, 1:]                  # [B], [B, n_neg]
        loss = (F.binary_cross_entropy_with_logits(pos, torch.ones_like(pos), reduction="sum")
                + F.binary_cross_entropy_with_logits(neg, torch.zeros_like(neg), reduction="sum")) / len(u)
        if self.reg:
            loss = loss + self.reg * sum(e.pow(2).sum() for e in module.embeddings(u, i)) / len(u)
        return loss

    def score_users(self, module, users):
        return module.score_all(users)                          # [n, n_items] logits
