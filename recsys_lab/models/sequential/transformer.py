"""The one transformer block design shared by the sequential models (pre-LN, nanoGPT-style).

Tokens are item indices shifted by one (0 is padding). Sequences are *right-aligned* (padding on
the left) and positions count backwards from the most recent item (position 0 = newest), so a
finished segment of a fixed length always sees the same positions: its encoding can be cached.
Optional learned extra tokens (summary "query" tokens or a candidate token) are appended at the
end; they carry no position embedding and are never padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    """x + Attn(LN(x)) then x + MLP(LN(x)); bidirectional attention over the allowed keys."""

    def __init__(self, d: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        if d % n_heads:
            raise ValueError(f"embedding_size {d} must be divisible by n_heads {n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)                         # fused q, k, v projection
        self.proj = nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        B, T, d = x.shape                                      # x [B, T, d]
        h = self.n_heads
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)        # 3 x [B, T, d]
        q, k, v = (t.view(B, T, h, d // h).transpose(1, 2) for t in (q, k, v))  # [B, h, T, d/h]
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        y = y.transpose(1, 2).reshape(B, T, d)                 # [B, T, d]
        x = x + self.drop(self.proj(y))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))


class SequenceEncoder(nn.Module):
    """Item embeddings + backward positions -> ``n_layers`` Blocks -> final LayerNorm.

    ``item`` (shared with the item tower: tied embeddings, ``item.weight[1:]`` are the item
    vectors), ``pos`` (backward positions), ``extra`` (learned tokens appended after the sequence).
    """

    def __init__(self, n_items: int, d: int, n_layers: int, n_heads: int, max_len: int,
                 n_extra: int = 0, dropout: float = 0.0):
        super().__init__()
        self.item = nn.Embedding(n_items + 1, d, padding_idx=0)   # [n_items + 1, d], row 0 = pad
        self.pos = nn.Embedding(max_len, d)                       # [max_len, d], 0 = newest
        self.extra = nn.Parameter(torch.zeros(n_extra, d))        # [E, d]
        self.blocks = nn.ModuleList(Block(d, n_heads, dropout) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.drop = nn.Dropout(dropout)
        nn.init.normal_(self.item.weight, std=0.02)
        nn.init.normal_(self.pos.weight, std=0.02)
        nn.init.normal_(self.extra, std=0.02)
        with torch.no_grad():
            self.item.weight[0].zero_()

    def item_vectors(self) -> torch.Tensor:
        return self.item.weight[1:]                                # [n_items, d]

    def forward(self, tokens: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """tokens: long [B, T] right-aligned (0 = pad); extra: [B, E, d] or None (use ``self.extra``).

        Returns the final hidden states [B, T + E, d].
        """
        B, T = tokens.shape
        pos = torch.arange(T - 1, -1, -1, device=tokens.device)   # [T] backward positions
        x = self.item(tokens) + self.pos(pos)                      # [B, T, d]
        if extra is None:
            extra = self.extra.expand(B, -1, -1)                   # [B, E, d]
        x = self.drop(torch.cat([x, extra], dim=1))                # [B, T + E, d]
        keep = torch.cat([tokens > 0, tokens.new_ones(B, extra.shape[1], dtype=torch.bool)], 1)
        mask = keep[:, None, None, :]                              # [B, 1, 1, T + E] keys allowed
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)


def layer_flops(T: int, d: int) -> int:
    """FLOPs (2 per multiply-add) of one Block on T tokens: 24 T d^2 (projections, MLP) + 4 T^2 d."""
    return 24 * T * d * d + 4 * T * T * d
