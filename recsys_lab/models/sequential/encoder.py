"""The one transformer block design shared by the sequential models (pre-LN, nanoGPT-style).

Tokens are item indices shifted by one (0 is padding). Sequences are *right-aligned* (padding on
the left) and positions count backwards from the most recent item (position 0 = newest), so a
finished segment of a fixed length always sees the same positions: its encoding can be cached.
Optional learned extra tokens (summary "query" tokens or a candidate token) are appended at the
end; they carry no position embedding and are never padding. With ``isolate_extra`` the history
never attends to the extras, so its keys and values can be computed once (``encode_prefix``) and
any number of extra tokens scored against them in one pass (``candidates``: HSTU's M-FALCON).

    cfg = EncoderConfig(n_items=1000, d=64, n_layers=2, n_heads=2, max_len=50, n_extra=1)
    enc = SequenceEncoder(cfg)            # tokens [B, T] -> hidden states [B, T + n_extra, d]
    kv, keep = enc.encode_prefix(tokens)  # per-layer keys/values of the history alone
    enc.candidates(kv, keep, extra)       # extra [B, C, d] -> [B, C, d], each sees history + itself
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
    """x + Attn(LN(x)) then x + MLP(LN(x)); bidirectional attention over the allowed keys.

    ``forward`` is the one attention path of every architecture (``scaled_dot_product_attention``
    under an explicit key mask); with ``return_kv`` it also returns the keys and values it used,
    which ``forward_candidates`` reuses: extra tokens that attend to those cached keys and to
    themselves only (the M-FALCON candidate pass, ``CachedCrossEncoder``).
    """

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        d = cfg.d
        self.n_heads, self.dropout = cfg.n_heads, cfg.dropout
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv = nn.Linear(d, 3 * d)                         # fused q, k, v projection
        self.proj = nn.Linear(d, d)
        self.fc, self.out = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        self.drop = nn.Dropout(cfg.dropout)

    def _qkv(self, x: torch.Tensor):
        """x [B, T, d] -> q, k, v, each [B, h, T, d/h]."""
        B, T, d = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(d, dim=2)        # 3 x [B, T, d]
        return tuple(t.view(B, T, self.n_heads, d // self.n_heads).transpose(1, 2) for t in (q, k, v))

    def _finish(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Residual attention output y [B, h, T, d/h], then the residual MLP -> [B, T, d]."""
        B, T, d = x.shape
        x = x + self.drop(self.proj(y.transpose(1, 2).reshape(B, T, d)))
        return x + self.drop(self.out(F.gelu(self.fc(self.ln2(x)))))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None, return_kv: bool = False):
        """x [B, T, d]; mask bool [B, 1, T or 1, T] of allowed keys (None: all) -> [B, T, d]
        (and k, v [B, h, T, d/h] when ``return_kv``)."""
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask,
                                           dropout_p=self.dropout if self.training else 0.0)
        out = self._finish(x, y)
        return (out, k, v) if return_kv else out

    def forward_candidates(self, x: torch.Tensor, k_prefix: torch.Tensor, v_prefix: torch.Tensor,
                           prefix_keep: torch.Tensor) -> torch.Tensor:
        """Candidate tokens x [B, C, d], each attending to the cached prefix keys/values
        k_prefix, v_prefix [B, h, T, d/h] (allowed where ``prefix_keep`` bool [B, T]) and to
        itself, never to another candidate -> [B, C, d].

        softmax over [q_c K^T, q_c . k_c] / sqrt(d/h), written out: the same attention as the
        ``forward`` pass of [prefix; c] with c isolated, at O(C T) instead of the O(C (T + C)) of
        one masked SDPA call over all candidates.
        """
        q, k, v = self._qkv(x)                                 # [B, h, C, d/h]
        scale = q.shape[-1] ** -0.5
        history = (q @ k_prefix.transpose(-1, -2)) * scale                      # [B, h, C, T]
        history = history.masked_fill(~prefix_keep[:, None, None, :], -torch.inf)
        logits = torch.cat([history, (q * k).sum(-1, keepdim=True) * scale], -1)  # [B, h, C, T + 1]
        w = F.dropout(torch.softmax(logits, -1), self.dropout, self.training)
        T = k_prefix.shape[2]
        y = w[..., :T] @ v_prefix + w[..., T:] * v             # [B, h, C, d/h]
        return self._finish(x, y)


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

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens long [B, T] -> item + backward-position embeddings [B, T, d] (before dropout)."""
        pos = torch.arange(tokens.shape[1] - 1, -1, -1, device=tokens.device)   # [T] 0 = newest
        return self.item(tokens) + self.pos(pos)

    def forward(self, tokens: torch.Tensor, extra: torch.Tensor | None = None,
                isolate_extra: bool = False) -> torch.Tensor:
        """tokens: long [B, T] right-aligned (0 = pad); extra: [B, E, d] or None (use ``self.extra``).

        ``isolate_extra``: the history tokens attend to the history only and each extra token to
        the history and itself (``prefix_mask``), so the history's states never depend on the
        extras; otherwise every token attends to every non-padding token and every extra.
        Returns the final hidden states [B, T + E, d].
        """
        B, T = tokens.shape
        if extra is None:
            extra = self.extra.expand(B, -1, -1)                       # [B, E, d]
        x = self.drop(torch.cat([self.embed(tokens), extra], dim=1))   # [B, T + E, d]
        if isolate_extra:
            mask = prefix_mask(tokens, extra.shape[1])                 # [B, 1, T + E, T + E]
        else:
            keep = torch.cat([tokens > 0, tokens.new_ones(B, extra.shape[1], dtype=torch.bool)], 1)
            mask = keep[:, None, None, :]                              # [B, 1, 1, T + E] keys allowed
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)

    def encode_prefix(self, tokens: torch.Tensor) -> tuple[list, torch.Tensor]:
        """The history pass alone: per layer its keys and values [(k, v) [B, h, T, d/h]] and the
        allowed keys bool [B, T] (``prefix_mask``'s history part: what ``candidates`` reads)."""
        x = self.drop(self.embed(tokens))                              # [B, T, d]
        mask = prefix_mask(tokens, 0)                                  # [B, 1, T, T]
        kv = []
        for block in self.blocks:
            x, k, v = block(x, mask, return_kv=True)
            kv.append((k, v))
        return kv, tokens > 0

    def candidates(self, kv: list, keep: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        """Final states [B, C, d] of C extra tokens [B, C, d], each attending to the cached
        history (``encode_prefix``) and to itself: equal to ``forward(tokens, extra[:, c:c+1],
        isolate_extra=True)[:, -1]`` for every c, in one pass."""
        x = self.drop(extra)
        for block, (k, v) in zip(self.blocks, kv):
            x = block.forward_candidates(x, k, v, keep)
        return self.ln_f(x)


def prefix_mask(tokens: torch.Tensor, n_extra: int) -> torch.Tensor:
    """Allowed keys bool [B, 1, T + E, T + E] for [history; E extras] with the extras isolated:
    a history query sees the non-padding history (and itself, so a padding query has a key and
    no NaN; its output is never read), an extra query the non-padding history and itself."""
    B, T = tokens.shape
    keys = torch.cat([tokens > 0, tokens.new_zeros(B, n_extra, dtype=torch.bool)], 1)  # [B, T + E]
    eye = torch.eye(T + n_extra, dtype=torch.bool, device=tokens.device)
    return keys[:, None, None, :] | eye                                # [B, 1, T + E, T + E]
