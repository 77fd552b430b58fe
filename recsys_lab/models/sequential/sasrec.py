"""SASRec: self-attentive sequential recommendation (Kang & McAuley, ICDM 2018).

The last L = ``max_len`` items of a user's time-ordered history, h_1..h_L (right-aligned, left
padding), are embedded with learned positions and run through ``n_layers`` causal self-attention
blocks (the shared pre-LN ``Block``)::

    x_t = sqrt(d) E[h_t] + P[t]              (the reference implementation's scaling)
    A = softmax(Q K^T / sqrt(d_head) + M),  M_tj = -inf for j > t (causal) or h_j = pad
    F_t = Blocks(x)_t                        the state after reading h_1..h_t
    s(u, i) = <F_L, E[i]>                    the next-item score (tied item embeddings)

Training predicts the next item at *every* position t (target h_{t+1}), with
``loss="bce"`` (the paper): -log sigma(<F_t, E[h_{t+1}]>) - log(1 - sigma(<F_t, E[j]>)), one
negative j per position drawn uniformly from the other items, or ``loss="ce"``: softmax
cross-entropy over the whole catalog (RecBole's default). ``reg`` is AdamW weight decay on the
weight matrices and embeddings (not biases or LayerNorm gains). An epoch trains the window ending
at each user's last training item, plus ``samples_per_user - 1`` windows ending at random
earlier cut points (``windows="last"``), or windows at a stride of L/2 that train every target
of every history once (``windows="cover"``).

Scoring encodes the user's current history (training events plus ``update``/``extend``) on every
call: no cached user state, so a new click is reflected at once, and the measured latency is
that of a real request.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..capabilities import EmbeddingModel
from ..sampling import WindowScorer
from .data import last_window, window_histories
from .encoder import Block, EncoderConfig, init_weights
from .history import SequentialRecommender

LOSSES = ("bce", "ce")
WINDOWS = ("last", "cover")


def causal_mask(tokens: torch.Tensor) -> torch.Tensor:
    """Allowed keys, bool [B, 1, T, T]: j <= t and h_j not padding; the diagonal always (so a
    padding query, whose outputs are never used, still has one key and no NaN)."""
    T = tokens.shape[1]
    tri = torch.ones(T, T, dtype=torch.bool, device=tokens.device).tril()      # [T, T]
    eye = torch.eye(T, dtype=torch.bool, device=tokens.device)
    return (tri & (tokens > 0)[:, None, :])[:, None] | eye                    # [B, 1, T, T]


class SASRecNet(nn.Module):
    """Item + position embeddings -> causal Blocks -> LayerNorm; ``item.weight[1:]`` are items."""

    def __init__(self, cfg: EncoderConfig):
        super().__init__()
        if cfg.n_extra:
            raise ValueError(f"SASRecNet has no extra tokens; got n_extra={cfg.n_extra}")
        self.cfg = cfg
        self.item = nn.Embedding(cfg.n_items + 1, cfg.d, padding_idx=0)   # [N + 1, d], row 0 = pad
        self.pos = nn.Embedding(cfg.max_len, cfg.d)                       # [L, d], slot in window
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.ln_f = nn.LayerNorm(cfg.d)
        self.drop = nn.Dropout(cfg.dropout)
        self.apply(init_weights)

    def item_vectors(self) -> torch.Tensor:
        return self.item.weight[1:]                                # [N, d]

    def embed(self, tokens: torch.Tensor) -> torch.Tensor:
        T = tokens.shape[1]
        pos = self.pos.weight[self.pos.num_embeddings - T:]        # [T, d]: last slot = newest
        return self.drop(self.item(tokens) * math.sqrt(self.item.embedding_dim) + pos)  # [B, T, d]

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens long [B, T] (item + 1, 0 = pad, right-aligned) -> hidden states [B, T, d]."""
        x, mask = self.embed(tokens), causal_mask(tokens)
        for block in self.blocks:
            x = block(x, mask)
        return self.ln_f(x)

    def attention(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """Attention weights of every layer, each [B, heads, T, T] (rows sum to 1), eval mode."""
        x, mask = self.embed(tokens), causal_mask(tokens)
        out = []
        for block in self.blocks:
            B, T, d = x.shape
            h = block.n_heads
            q, k, _ = block.qkv(block.ln1(x)).split(d, dim=2)
            q, k = (t.view(B, T, h, d // h).transpose(1, 2) for t in (q, k))   # [B, h, T, d/h]
            e = (q @ k.transpose(-1, -2)) / math.sqrt(d // h)                   # [B, h, T, T]
            out.append(torch.softmax(e.masked_fill(~mask, -torch.inf), dim=-1))
            x = block(x, mask)
        return out


@dataclass(eq=False)
class SASRec(SequentialRecommender, WindowScorer, EmbeddingModel):
    """Causal self-attention over the history; next-item scores <F_last, E[i]> (Kang & McAuley 2018).

    >>> SASRec(embedding_size=64, n_layers=2, n_heads=1, max_len=50, loss="bce").fit(train, valid)
    """

    n_layers: int = 2
    n_heads: int = 1
    max_len: int = 50
    dropout: float = 0.2
    loss: str = "bce"
    samples_per_user: int = 1
    batch_size: int = 128
    windows: str = "last"

    def _check_config(self):
        super()._check_config()
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {self.loss!r}")
        if self.windows not in WINDOWS:
            raise ValueError(f"windows must be one of {WINDOWS}, got {self.windows!r}")

    def build_module(self):
        module = SASRecNet(self.encoder_config())
        return self._initialised(module, module.item)

    # ---- training -------------------------------------------------------------------------
    def examples(self, rng):
        """(start, t, n_loss) per epoch: windows of the first t items (inputs h[t-L-1:t-1],
        targets h[t-L:t]) with the loss on their last n_loss targets.

        ``windows="last"``: t = every user's full history, then ``samples_per_user - 1`` random
        cuts, the loss on every target of the window. ``windows="cover"``: t = n, n - L,
        n - 3L/2, ... (stride L/2), the loss on the targets no earlier window trained, so every
        target of the history is trained exactly once per epoch with at least L/2 items of
        context (except the first L)."""
        start, n = self.seq_ptr_[:-1], np.diff(self.seq_ptr_)
        users = np.flatnonzero(n >= 2)
        L = self.max_len
        if self.windows == "cover":
            stride = max(1, L // 2)
            extra = np.maximum(0, -(-(n[users] - L - 1) // stride))        # windows before the last
            u = np.repeat(users, 1 + extra)
            k = np.arange(len(u)) - np.repeat(np.cumsum(1 + extra) - (1 + extra), 1 + extra)  # 0, 1, ..
            t = np.where(k == 0, n[u], n[u] - L - (k - 1) * stride)
            n_loss = np.where(k == 0, np.minimum(n[u] - 1, L), np.minimum(stride, t - 1))
            return start[u], t, n_loss
        end = [n[users]]
        for _ in range(int(self.samples_per_user) - 1):
            end.append(2 + (rng.random(len(users)) * (n[users] - 1)).astype(np.int64))  # 2..n
        start, t = np.tile(start[users], len(end)), np.concatenate(end)
        return start, t, np.full(len(t), L)

    def make_batch(self, start, t, n_loss, rng):
        seq = last_window(self.seq_items_, start, t, self.max_len + 1)   # [B, L + 1] tokens
        inp, pos = seq[:, :-1], seq[:, 1:]                               # predict the next token
        pos = np.where(np.arange(self.max_len)[None, :] >= self.max_len - n_loss[:, None], pos, 0)
        neg = rng.integers(1, self.n_items_, size=pos.shape)            # 1..N-1, skip the target:
        neg = neg + (neg >= pos)                                         # uniform over items != pos
        return self.to_tensors(inp, pos, neg)

    def compute_loss(self, module, batch):
        inp, pos, neg = batch                                            # [B, L] each
        hid = module(inp)                                                # [B, L, d]
        on = pos > 0                                                     # positions with a target
        h = hid[on]                                                      # [P, d]
        if self.loss == "ce":
            return F.cross_entropy(h @ module.item_vectors().T, pos[on] - 1)
        e_pos, e_neg = module.item(pos[on]), module.item(neg[on])        # [P, d]
        return -(F.logsigmoid((h * e_pos).sum(-1)) + F.logsigmoid(-(h * e_neg).sum(-1))).mean()

    # ---- serving --------------------------------------------------------------------------
    def tokens(self, users) -> np.ndarray:
        """The users' current windows, int64 [n, L] (item + 1, right-aligned, 0 = pad)."""
        return self._windows(self._check_users(users), last_window, self.max_len)

    def _user_states(self, module, users) -> torch.Tensor:
        tok = torch.as_tensor(self._windows(np.asarray(users.cpu()), last_window, self.max_len),
                              device=self.device_)
        return module(tok)[:, -1]                                        # [n, d] newest slot

    def score_windows(self, tokens: np.ndarray) -> np.ndarray:
        """Scores float32 [B, n_items] of windows (item + 1, right-aligned, 0 = pad) [B, L], each
        window's items taken as a whole history (its last ``max_len`` items are read)."""
        self._check_fitted()
        items, ptr = window_histories(tokens)
        tok = torch.as_tensor(last_window(items, ptr[:-1], np.diff(ptr), self.max_len), device=self.device_)
        with self._serve():
            return (self.module_(tok)[:, -1] @ self.module_.item_vectors().T).float().cpu().numpy()

    def score_users(self, module, users):
        return self._user_states(module, users) @ module.item_vectors().T   # [n, N]

    def _score_candidates(self, users, cand):
        h = self._user_states(self.module_, torch.as_tensor(users))       # [n, d]
        return torch.einsum("nd,ncd->nc", h, self.module_.item_vectors()[cand])

    def user_vectors(self, users=None) -> np.ndarray:
        """F_last of each user's current history, float32 [n, d] (score = dot with items)."""
        u = np.arange(self.n_users_) if users is None else self._check_users(users)
        with self._serve():
            return self._user_states(self.module_, torch.as_tensor(u)).float().cpu().numpy()

    def item_vectors(self) -> np.ndarray:
        """Item embeddings E (tied input/output), float32 [n_items, d]."""
        self._check_fitted()
        return self.module_.item_vectors().detach().float().cpu().numpy()

    def explain(self, user: int, layer: int = -1) -> tuple[np.ndarray, np.ndarray]:
        """(history items [T], attention of the newest position over them [heads, T]) of one user."""
        tok = self.tokens([user])
        with self._serve():
            w = self.module_.attention(torch.as_tensor(tok, device=self.device_))[layer]
        keep = tok[0] > 0
        return tok[0][keep] - 1, w[0, :, -1].float().cpu().numpy()[:, keep]
