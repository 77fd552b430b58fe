"""Post-training quantisation of embedding tables (and of linear layers of torch models).

int8, symmetric, one scale per row (per user / per item vector):
    s_r = max_j |x_rj| / 127,   q_rj = round(x_rj / s_r) in [-127, 127],   x_rj ~= s_r q_rj
so |x_rj - s_r q_rj| <= s_r / 2, and a d-dim row takes d + 4 bytes instead of 4d (3.8x at d = 64).
fp16 halves the table. Scores are computed in fp32 from the decoded rows:
    score(u, i) = s_u s_i (q_u . q_i)
Torch models without vector tables get dynamic int8 (or fp16) quantisation of their ``nn.Linear``
layers (weights stored quantised, activations quantised per batch on the fly;
``torch.ao.quantization.quantize_dynamic``, CPU only).
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from .tables import TableWrapper

DTYPES = ("int8", "fp16")
ITEM_BLOCK = 32_768        # item codes cast to float32 per block when scoring int8 tables


def quantize_rows(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric per-row int8: (q int8 [n, d], scale float32 [n]) with x ~= q * scale[:, None]."""
    x = np.asarray(x, dtype=np.float32)
    scale = np.abs(x).max(axis=1) / 127.0 if x.size else np.zeros(len(x), np.float32)
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)             # all-zero rows stay zero
    q = np.clip(np.rint(x / scale[:, None]), -127, 127).astype(np.int8)
    return q, scale


def dequantize_rows(q: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return q.astype(np.float32) * scale[:, None]


@dataclass(eq=False)
class Quantized(TableWrapper):
    """Serve an embedding model from int8 (per-row scales) or fp16 tables; ``embedding_bytes()``
    reports the quantised size. Torch models with linear layers: dynamic quantisation."""

    dtype: str = "int8"

    def _check_config(self):
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; choose one of {DTYPES}")

    def encode(self, x, table):
        if self.dtype == "fp16":
            return {"x": np.asarray(x, dtype=np.float16)}
        q, scale = quantize_rows(x)
        return {"q": q, "scale": scale}

    def decode(self, enc, rows=None):
        sel = (lambda a: a) if rows is None else (lambda a: a[rows])
        if self.dtype == "fp16":
            return sel(enc["x"]).astype(np.float32)
        return dequantize_rows(sel(enc["q"]), sel(enc["scale"]))

    def score_tables(self, users):
        if self.dtype == "fp16":
            return super().score_tables(users)
        # s_u s_i (q_u . q_i): scale the [n, d] user side, cast the item codes block by block
        # (a float32 copy of the whole int8 table per call would be 4x the table it saves)
        u = dequantize_rows(self.users_["q"][users], self.users_["scale"][users])   # [n, d]
        q, scale = self.items_["q"], self.items_["scale"]
        out = np.empty((len(u), len(q)), dtype=np.float32)                           # [n, n_items]
        for lo in range(0, len(q), ITEM_BLOCK):
            hi = min(lo + ITEM_BLOCK, len(q))
            np.matmul(u, q[lo:hi].astype(np.float32).T, out=out[:, lo:hi])
            out[:, lo:hi] *= scale[None, lo:hi]
        return out

    def transform_module(self, module):
        import torch
        from torch import nn
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)   # torch points to torchao
            warnings.filterwarnings("ignore", message=".*quantize_per_tensor.*")
            dtype = torch.qint8 if self.dtype == "int8" else torch.float16
            return torch.ao.quantization.quantize_dynamic(module.cpu(), {nn.Linear}, dtype=dtype)
