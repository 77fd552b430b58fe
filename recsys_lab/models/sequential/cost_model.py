"""FLOPs of one serving request for each architecture (2 FLOPs per multiply-add).

One pre-LN Block on T tokens of width d costs 24 T d^2 (q, k, v, output projections 8 T d^2, MLP
16 T d^2) + 4 T^2 d (the attention matmuls Q K^T and A V); LayerNorms, softmax and GELU are
ignored. Checked against ``torch.utils.flop_counter`` in tests/test_late_interaction.py.
"""
from __future__ import annotations

import math

ARCHS = ("cross", "cached_cross", "two_tower", "late")


def layer_flops(T: int, d: int) -> int:
    """FLOPs (2 per multiply-add) of one Block on T tokens: 24 T d^2 (projections, MLP) + 4 T^2 d."""
    return 24 * T * d * d + 4 * T * T * d


def candidate_token_flops(T: int, d: int) -> int:
    """FLOPs (2 per multiply-add) of one isolated extra token in one Block, attending to T cached
    keys and itself: 24 d^2 (projections, MLP) + 4 (T + 1) d (its attention row)."""
    return 24 * d * d + 4 * (T + 1) * d


def cost_model(arch: str, L: int, C: int, d: int, n_layers: int, S: int = 1, m: int = 1) -> dict:
    """FLOPs of one request (2 per multiply-add; layer = 24 T d^2 + 4 T^2 d, see ``layer_flops``).

    cross:      C * n_layers * layer(L + 1)                     + 2 C d
    cached_cross: n_layers * layer(L) + C * n_layers * (24 d^2 + 4 (L + 1) d)   + 2 C d
                (M-FALCON: the history once, each candidate one token over L + 1 keys;
                 attention n (L^2 + C L) token pairs instead of C n (L + 1)^2)
    two_tower:  n_layers * layer(L + 1)                          + 2 C d
    late:       full  = S * n_layers * layer(ceil(L/S) + m)      + 2 C S m d
                incremental (one new click) = n_layers * layer(ceil(L/S) + m) + 2 C S m d
    Returns encode, interaction, total (a request right after a click: incremental for late) and
    full_encode_total (late re-encoding every segment).
    """
    if arch == "cached_cross":
        enc = n_layers * (layer_flops(L, d) + C * candidate_token_flops(L, d))
        return {"encode": enc, "interaction": 2 * C * d, "total": enc + 2 * C * d,
                "full_encode_total": enc + 2 * C * d}
    if arch in ("cross", "two_tower"):
        passes = C if arch == "cross" else 1                    # one pass per candidate, or one
        enc = passes * n_layers * layer_flops(L + 1, d)
        return {"encode": enc, "interaction": 2 * C * d, "total": enc + 2 * C * d,
                "full_encode_total": enc + 2 * C * d}
    if arch == "late":
        seg = n_layers * layer_flops(math.ceil(L / S) + m, d)
        inter = 2 * C * S * m * d
        return {"encode": seg, "interaction": inter, "total": seg + inter,
                "full_encode_total": S * seg + inter}
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")
