"""FLOPs of one serving request for each architecture (2 FLOPs per multiply-add).

One pre-LN Block on T tokens of width d costs 24 T d^2 (q, k, v, output projections 8 T d^2, MLP
16 T d^2) + 4 T^2 d (the attention matmuls Q K^T and A V); LayerNorms, softmax and GELU are
ignored. Checked against ``torch.utils.flop_counter`` in tests/test_late_interaction.py.
"""
from __future__ import annotations

import math

ARCHS = ("cross", "two_tower", "late")


def layer_flops(T: int, d: int) -> int:
    """FLOPs (2 per multiply-add) of one Block on T tokens: 24 T d^2 (projections, MLP) + 4 T^2 d."""
    return 24 * T * d * d + 4 * T * T * d


def cost_model(arch: str, L: int, C: int, d: int, n_layers: int, S: int = 1, m: int = 1) -> dict:
    """FLOPs of one request (2 per multiply-add; layer = 24 T d^2 + 4 T^2 d, see ``layer_flops``).

    cross:      C * n_layers * layer(L + 1)                     + 2 C d
    two_tower:  n_layers * layer(L + 1)                          + 2 C d
    late:       full  = S * n_layers * layer(ceil(L/S) + m)      + 2 C S m d
                incremental (one new click) = n_layers * layer(ceil(L/S) + m) + 2 C S m d
    Returns encode, interaction, total (a request right after a click: incremental for late) and
    full_encode_total (late re-encoding every segment).
    """
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
