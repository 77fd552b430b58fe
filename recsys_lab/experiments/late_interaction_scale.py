"""Per-request latency at large-model scale, random weights (issue 11.4; accuracy is measured at
the size that trains here, ``late_interaction``).

For each width d, depth n, history length L and candidate count C, four architectures of the one
block design serve one request after one click: ``update(user, item)`` (the model's incremental
state update) then ``score_candidates`` of C candidates, through the models' own serving paths:

    cross-encoder         one [history; candidate] pass per candidate       C n (L+1)^2 pairs
    cached cross-encoder  the history once + C isolated candidate tokens      n (L^2 + C L)
    late interaction      the open segment (seg_len + m tokens) re-encoded + C x S m dot products
    two-tower             the whole window (L + 1 tokens) re-encoded + C dot products

beside the FLOPs of ``cost_model``. Heads = d / 64 (12 heads at d = 768: 12 x 768 is BERT-base).
Timing: one intra-op thread per request (``limit_threads``), inference mode, a warm-up request,
then as many requests as fill ``budget_s`` (at least ``min_repeats``); the median is reported.
Where the naive cross-encoder's C passes would exceed ``naive_budget_s``, it is timed on n of the
C candidates and its scoring time scaled by C / n (its passes are independent and identical in
cost; ``naive_linearity`` checks that on a small point), and the row says so.

    res = run(ScaleGrid.named("quick"))
    res["table"], res["linearity"], res["headline"]
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from ..data.interactions import Interactions
from ..eval.latency import limit_threads
from ..models.sequential import (CachedCrossEncoder, CrossEncoderRanker, MultiSegmentLateInteraction,
                                 TwoTower, cost_model)
from ..models.sequential.checkpoint import untrained

ARCHS = {"cross-encoder": "cross", "cached cross-encoder": "cached_cross",
         "late interaction": "late", "two-tower": "two_tower"}


@dataclass
class ScaleGrid:
    """The grid and the timing budget. ``bench``: the issue's grid; ``quick``: CI-sized."""

    widths: tuple = (64, 256, 768)
    depths: tuple = (2, 6, 12)
    histories: tuple = (50, 200)
    candidates: tuple = (100, 1000)
    head_dim: int = 64                  # heads = max(1, d // head_dim)
    seg_len: int = 25                   # late interaction: S = L / seg_len segments
    vectors_per_segment: int = 2
    n_items: int = 2000
    n_users: int = 4
    budget_s: float = 1.5               # wall time that the repeats of one point fill
    min_repeats: int = 3
    max_repeats: int = 25
    naive_budget_s: float = 4.0         # naive cross-encoder: n of C candidates beyond this
    min_naive_candidates: int = 8
    compile_points: tuple = ((64, 2, 50),)  # (d, n, L): late and two-tower also torch.compile'd
    threads: int = 1
    device: str = "auto"                # CUDA when present (every timed request ends in a host copy)
    seed: int = 0
    linearity_point: tuple = (256, 2, 50, 100)  # (d, n, L, C) of the naive linearity check
    linearity_candidates: tuple = (4, 10, 25, 50, 100)

    @classmethod
    def named(cls, name: str) -> "ScaleGrid":
        """``bench``: the issue's grid; ``report``: the same grid on a smaller timing budget (the
        notebook's full profile); ``quick``: CI-sized."""
        if name == "bench":
            return cls()
        if name == "report":
            return cls(budget_s=0.3, min_repeats=2, max_repeats=5, naive_budget_s=1.5, min_naive_candidates=4,
                       compile_points=(), linearity_candidates=(4, 25, 100))
        if name == "quick":
            return cls(widths=(16, 32), depths=(1, 2), histories=(10, 20), candidates=(10, 40),
                       head_dim=8, seg_len=5, n_items=120, budget_s=0.05, min_repeats=2, max_repeats=3,
                       naive_budget_s=0.01, min_naive_candidates=4, compile_points=(),
                       linearity_point=(16, 1, 10, 20),
                       linearity_candidates=(4, 10, 20))
        raise ValueError(f"grid must be 'quick', 'report' or 'bench', got {name!r}")


def synthetic_histories(n_users: int, length: int, n_items: int, seed: int) -> Interactions:
    """``n_users`` users with ``length`` distinct random items each, in time order."""
    rng = np.random.default_rng(seed)
    u = np.repeat(np.arange(n_users), length)
    i = np.concatenate([rng.choice(n_items, length, replace=length > n_items) for _ in range(n_users)])
    return Interactions(u, i, np.arange(n_users), np.arange(n_items), timestamp=np.arange(len(u)))


def build(arch: str, d: int, n_layers: int, L: int, g: ScaleGrid, data: Interactions):
    """A random-weight model of ``arch`` in its serving state on ``data`` (no training step)."""
    common = dict(embedding_size=d, n_layers=n_layers, n_heads=max(1, d // g.head_dim), max_len=L,
                  dropout=0.0, seed=g.seed, device=g.device, progress=False)
    if arch == "cross-encoder":
        model = CrossEncoderRanker(**common)
    elif arch == "cached cross-encoder":
        model = CachedCrossEncoder(**common)
    elif arch == "late interaction":
        model = MultiSegmentLateInteraction(segments=max(1, L // g.seg_len),
                                            vectors_per_segment=g.vectors_per_segment, **common)
    else:
        model = TwoTower(**common)
    return untrained(model, data)


def _time(fn) -> float:
    t0 = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - t0) / 1e6


def timed_requests(model, cand: np.ndarray, g: ScaleGrid, rng) -> tuple[np.ndarray, np.ndarray]:
    """Requests after one click: ``update(u, click)`` then ``score_candidates`` of ``cand``. One
    warm-up request, then as many as fill ``g.budget_s`` (``min_repeats``..``max_repeats``).
    Returns the update and scoring milliseconds of each timed request."""
    def request(r):
        u, click = r % g.n_users, int(rng.integers(model.n_items_))
        return (_time(lambda: model.update(u, click)),
                _time(lambda: model.score_candidates([u], cand[None])))

    first = request(0)                                            # warm-up, untimed
    reps = int(np.clip(g.budget_s * 1e3 / max(sum(first), 1e-3), g.min_repeats, g.max_repeats))
    up, sc = np.array([request(r) for r in range(1, reps + 1)]).T
    return up, sc


def summary(up: np.ndarray, sc: np.ndarray, scale: float = 1.0) -> dict:
    """Medians (ms) of update + scoring per request, the scoring time multiplied by ``scale``."""
    total = up + sc * scale
    return {"p50_ms": float(np.median(total)), "min_ms": float(total.min()),
            "p90_ms": float(np.percentile(total, 90)), "update_p50_ms": float(np.median(up)),
            "score_p50_ms": float(np.median(sc * scale)), "repeats": len(total)}


def naive_candidates(model, cand: np.ndarray, g: ScaleGrid) -> int:
    """How many of the C candidates the naive cross-encoder is timed on: all of them when
    ``min_repeats`` requests fit ``naive_budget_s``, else as many as fit (at least
    ``min_naive_candidates``), from the time of one warm-up pass over that minimum."""
    n0 = min(len(cand), g.min_naive_candidates)
    model.score_candidates([0], cand[None, :n0])                  # warm-up
    per = _time(lambda: model.score_candidates([0], cand[None, :n0])) / n0 / 1e3
    if per * len(cand) * g.min_repeats <= g.naive_budget_s:
        return len(cand)
    return int(np.clip(g.naive_budget_s / (per * g.min_repeats), n0, len(cand)))


def block_params(model) -> int:
    """Parameters of the transformer blocks (the model size; embedding tables excluded)."""
    return sum(p.numel() for p in model.module_.enc.blocks.parameters())


def point_rows(arch: str, model, g: ScaleGrid, data: Interactions) -> list[dict]:
    """Rows of one model (arch at one d, n, L) for every C, and, at a compile point, for its
    ``torch.compile``'d twin (compile time reported separately)."""
    d, n_layers, L = model.embedding_size, model.n_layers, model.max_len
    rng = np.random.default_rng(g.seed)
    variants = [("eager", model, None)]
    if (d, n_layers, L) in g.compile_points and arch in ("late interaction", "two-tower"):
        twin = build(arch, d, n_layers, L, g, data)
        t0 = time.perf_counter()
        twin.module_ = torch.compile(twin.module_, dynamic=False)
        twin.update(0, 1)                                         # compiles the update's shape
        variants.append(("compiled", twin, time.perf_counter() - t0))
    rows, timed = [], {}                                          # naive: n -> its timings
    for C in g.candidates:
        cand = rng.choice(g.n_items, C, replace=False)
        for variant, m, compile_s in variants:
            n = naive_candidates(m, cand, g) if arch == "cross-encoder" else C
            if n == C:
                stats = summary(*timed_requests(m, cand, g, rng))
            else:         # the same n candidate passes serve every C: timed once, scaled by C / n
                if n not in timed:
                    timed[n] = timed_requests(m, cand[:n], g, rng)
                stats = summary(*timed[n], scale=C / n)
            S, mv = (m.segments, m.vectors_per_segment) if arch == "late interaction" else (1, 1)
            rows.append({"arch": arch, "variant": variant, "d": d, "n_layers": n_layers,
                         "n_heads": m.n_heads, "L": L, "C": C, "S": S, "m": mv,
                         "params_m": block_params(m) / 1e6, **stats, "measured_candidates": n,
                         "label": "measured" if n == C else f"measured on {n} of {C} candidates",
                         "flops": cost_model(ARCHS[arch], L, C, d, n_layers, S, mv)["total"],
                         "compile_s": compile_s})
    return rows


def point(d: int, n_layers: int, L: int, g: ScaleGrid) -> list[dict]:
    """All four architectures at one (d, n, L). The cached cross-encoder carries the naive one's
    weights; before any timing, its scores of a few candidates are compared with the naive
    passes (``max_abs_diff_vs_naive``: the M-FALCON identity at this size)."""
    data = synthetic_histories(g.n_users, L + 5, g.n_items, g.seed)
    naive = build("cross-encoder", d, n_layers, L, g, data)
    cached = build("cached cross-encoder", d, n_layers, L, g, data)
    cached.module_.load_state_dict(naive.module_.state_dict())
    cand = np.random.default_rng(g.seed).choice(g.n_items, (1, 4 * g.min_naive_candidates), replace=False)
    diff = float(np.abs(cached.score_candidates([0], cand) - naive.score_candidates([0], cand)).max())
    rows = point_rows("cross-encoder", naive, g, data)
    del naive
    rows += [{**r, "max_abs_diff_vs_naive": diff} for r in point_rows("cached cross-encoder", cached, g, data)]
    del cached
    for arch in ("late interaction", "two-tower"):
        rows += point_rows(arch, build(arch, d, n_layers, L, g, data), g, data)
    return rows


def naive_linearity(g: ScaleGrid) -> pd.DataFrame:
    """The naive cross-encoder's scoring time against the number n of candidates at one small
    point: ms per candidate should not depend on n (what scaling n of C candidates by C / n
    assumes). Median of ``g.min_repeats + 2`` calls per n after one warm-up."""
    d, n_layers, L, C = g.linearity_point
    data = synthetic_histories(g.n_users, L + 5, g.n_items, g.seed)
    model = build("cross-encoder", d, n_layers, L, g, data)
    cand = np.random.default_rng(g.seed).choice(g.n_items, C, replace=False)
    rows = []
    with limit_threads(g.threads), torch.inference_mode():
        for n in g.linearity_candidates:
            model.score_candidates([0], cand[None, :n])
            ms = np.median([_time(lambda: model.score_candidates([0], cand[None, :n]))
                            for _ in range(g.min_repeats + 2)])
            rows.append({"d": d, "n_layers": n_layers, "L": L, "candidates": n, "ms": float(ms),
                         "ms_per_candidate": float(ms / n)})
    df = pd.DataFrame(rows)
    df["scaled_to_C_ms"] = df["ms_per_candidate"] * C
    df["ratio_to_measured_C"] = df["scaled_to_C_ms"] / float(df.loc[df.candidates == C, "ms"].iloc[0]) \
        if (df.candidates == C).any() else np.nan
    return df


def headline(table: pd.DataFrame, C: int | None = None) -> pd.DataFrame:
    """Per L at the largest (d, n) and C (default the smallest C): latency ratios of the naive
    and the cached cross-encoder and the two-tower over late interaction (eager rows)."""
    t = table[table.variant == "eager"]
    big = t[(t.d == t.d.max()) & (t.n_layers == t.n_layers.max())]
    C = int(t.C.min()) if C is None else C
    out = []
    for L, g in big[big.C == C].groupby("L"):
        ms = g.set_index("arch")["p50_ms"]
        out.append({"d": int(g.d.iloc[0]), "n_layers": int(g.n_layers.iloc[0]), "L": int(L), "C": C,
                    **{f"{a}_ms": float(ms[a]) for a in ARCHS},
                    "cross_over_late": float(ms["cross-encoder"] / ms["late interaction"]),
                    "cached_over_late": float(ms["cached cross-encoder"] / ms["late interaction"]),
                    "cross_over_cached": float(ms["cross-encoder"] / ms["cached cross-encoder"]),
                    "cross_label": g.set_index("arch").loc["cross-encoder", "label"]})
    return pd.DataFrame(out)


def run(grid: str | ScaleGrid = "quick", log=None, progress: bool = False) -> dict:
    """The whole grid; returns ``table`` (one row per arch x point x C x variant), ``linearity``,
    ``headline`` and ``seconds``."""
    g = ScaleGrid.named(grid) if isinstance(grid, str) else grid
    t0 = time.perf_counter()
    rows = []
    points = [(d, n, L) for d in g.widths for n in g.depths for L in g.histories]
    with limit_threads(g.threads):
        for d, n, L in tqdm(points, desc="scale grid", disable=not progress):
            rows += point(d, n, L, g)
            if log:
                log(f"[{time.perf_counter() - t0:6.1f} s] d={d} n={n} L={L} done")
    table = pd.DataFrame(rows)
    table["gflops_per_s"] = table["flops"] / table["p50_ms"] / 1e6
    return {"grid": g, "table": table, "linearity": naive_linearity(g), "headline": headline(table),
            "seconds": time.perf_counter() - t0}
