"""Learning-rate schedules of the sequential models, attached to the optimizer itself.

``"cosine"``: linear warm-up over the first ``warmup`` fraction of all steps, then a cosine decay
to zero over the rest (Loshchilov & Hutter, "SGDR", ICLR 2017; the warm-up of Goyal et al. 2017):

    lr(s) = lr0 * (s + 1) / W                                     for s < W
    lr(s) = lr0 * (1 + cos(pi * (s - W) / (T - W))) / 2           for W <= s < T

T = epochs x batches per epoch (early stopping may end training sooner). The schedule is a
``LambdaLR`` stepped by an optimizer step post-hook, so the shared training loop needs no change.
"""
from __future__ import annotations

import math

import torch

SCHEDULES = ("constant", "cosine")


def warmup_cosine(step: int, total: int, warmup: int) -> float:
    """The multiplier of the base learning rate at optimizer step ``step`` (0-based)."""
    if step < warmup:
        return (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return 0.5 * (1.0 + math.cos(math.pi * p))


def attach_schedule(opt: torch.optim.Optimizer, kind: str, total_steps: int,
                    warmup_fraction: float) -> torch.optim.Optimizer:
    """``opt`` with ``kind``'s schedule applied after every ``opt.step()`` (in place)."""
    if kind not in SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {SCHEDULES}, got {kind!r}")
    if kind == "constant":
        return opt
    warmup = max(1, int(round(warmup_fraction * total_steps)))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: warmup_cosine(s, total_steps, warmup))
    opt.register_step_post_hook(lambda *_: sched.step())
    opt.lr_scheduler = sched                                  # kept alive with the optimizer
    return opt
