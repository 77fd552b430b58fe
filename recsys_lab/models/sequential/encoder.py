"""The one transformer block design shared by the sequential models (pre-LN, nanoGPT-style).

Tokens are item indices shifted by one (0 is padding). Sequences are *right-aligned* (padding on
the left) and positions count backwards from the most recent item (position 0 = newest), so a
finished segment of a fixed length always sees the same positions: its encoding can be cached.
Optional learned extra tokens (summary "query" tokens or a candidate token) are appended at the
end; they carry no position embedding and are never padding.

    cfg = EncoderConfig(n_items=1000, d=64, n_layers=2, n_heads=2, max_len=50, n_extra=1)
    enc = SequenceEncoder(cfg)            # tokens [B, T] -> hidden states [B, T + n_extra, d]
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

INIT_STD = 0.02                     # N(0, 0.02^2) embeddings (GPT-2 / nanoGPT)


@dataclass(frozen=True)
class EncoderConfig:
    """Shape of one encoder: catalog size, width d, depth, heads, window length, extra tokens."""

    n_items: int
    d: int = 64
    n_layers: int = 2
    n_heads: int = 2
    max_len: int = 50
    n_extra: int = 0
    dropout: float = 0.0

    def __post_init__(self):
        for name in ("n_items", "d", "n_layers", "n_heads", "max_len"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.n_extra < 0:
            raise ValueError(f"n_extra must be >= 0, got {self.n_extra!r}")
        if self.d % self.n_heads:
            raise ValueError(f"embedding_size {self.d} must be divisible by n_heads {self.n_heads}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")


def init_weights(module: nn.Module) -> None:
    """Embeddings ~ N(0, INIT_STD^2) with the padding row zero; Linear and LayerNorm keep torch's
    defaults. Applied with ``module.apply`` (children in registration order: a fixed RNG order)."""
    if isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=INIT_STD)
        if module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


class Block(nn.Module):
    """x + Attn(LN(x)) then x + MLP(LN(x)); bidirectional attention over the allowed keys."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        d = cfg.d
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)                         # fused q, k, v projection
        self.proj = nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """x [B, T, d]; mask bool [B, 1, T or 1, T] of allowed keys (None: all) -> [B, T, d]."""
        B, T, d = x.shape
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

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d
        self.item = nn.Embedding(cfg.n_items + 1, d, padding_idx=0)   # [N + 1, d], row 0 = pad
        self.pos = nn.Embedding(cfg.max_len, d)                       # [L, d], 0 = newest
        self.extra = nn.Parameter(torch.zeros(cfg.n_extra, d))        # [E, d]
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.drop = nn.Dropout(cfg.dropout)
        self.apply(init_weights)
        nn.init.normal_(self.extra, std=INIT_STD)

    def item_vectors(self) -> torch.Tensor:
        return self.item.weight[1:]                                    # [N, d]

    def forward(self, tokens: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        """tokens: long [B, T] right-aligned (0 = pad); extra: [B, E, d] or None (use ``self.extra``).

        Returns the final hidden states [B, T + E, d].
        """
        B, T = tokens.shape
        pos = torch.arange(T - 1, -1, -1, device=tokens.device)       # [T] backward positions
        x = self.item(tokens) + self.pos(pos)                          # [B, T, d]
        if extra is None:
            extra = self.extra.expand(B, -1, -1)                       # [B, E, d]
        x = self.drop(torch.cat([x, extra], dim=1))                    # [B, T + E, d]
        keep = torch.cat([tokens > 0, tokens.new_ones(B, extra.shape[1], dtype=torch.bool)], 1)
        mask = keep[:, None, None, :]                                  # [B, 1, 1, T + E] keys allowed
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)
