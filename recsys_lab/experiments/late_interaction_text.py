"""Sentences of notebook 07, computed from a run's results (no number is typed into prose)."""
from __future__ import annotations

import pandas as pd


def _yes(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _times(v: float) -> str:
    """A ratio as "230x" (>= 10) or "1.7x"."""
    return f"{v:,.0f}x" if v >= 10 else f"{v:.2g}x"


def headline_text(h: dict, n_test_users: int, C: int = 100) -> str:
    """The study's goals, each with what this run measured and whether it was met."""
    return "\n".join([
        f"On {n_test_users:,} test users, first stage {h['first_stage']} (NDCG@10 "
        f"{h['first_stage_ndcg']:.4f} alone), C = {C}:",
        "",
        f"* cross-encoder (naive {h['cross_ndcg']:.4f}, cached {h['cached_cross_ndcg']:.4f}) "
        f"at least SASRec's {h['sasrec_ndcg']:.4f}: {_yes(h['cross_beats_sasrec'])};",
        f"* best late setting within 1/20 of the naive cross-encoder's per-request CPU time "
        f"(found one: {_yes(h['within_latency_budget'])}), `{h['best_late']}`: NDCG@10 "
        f"{h['best_late_ndcg']:.4f}, {h['ndcg_ratio_vs_cross']:.0%} of the better cross-encoder "
        f"(at least 95%: {_yes(h['meets_95pct_of_cross'])}); the naive cross-encoder takes "
        f"{_times(h['latency_ratio_cross_over_late'])} its latency ({h['cross_ms']:.2f} ms vs "
        f"{h['late_ms']:.2f} ms), the cached one {_times(h['latency_ratio_cached_over_late'])} "
        f"({h['cached_cross_ms']:.2f} ms);",
        f"* late beats the better two-tower (`{h['two_tower']}`, {h['two_tower_ndcg']:.4f}): "
        f"{_yes(h['beats_two_tower'])};",
        f"* every transformer system beats EASE alone ({h['ease_ndcg']:.4f}): "
        f"{_yes(h['all_beat_ease'])} ({h['n_transformer_systems_below_ease']} at or below it).",
    ])


def scale_text(head: pd.DataFrame) -> str:
    """The closing note of the latency-at-scale section: ratios at the largest size, per L."""
    lines = []
    for r in head.to_dict("records"):
        lines.append(
            f"* {r['n_layers']} x {r['d']}, L = {r['L']}, C = {r['C']}: late interaction "
            f"{r['late interaction_ms']:.1f} ms per request after one click; the naive "
            f"cross-encoder takes {_times(r['cross_over_late'])} as long ({r['cross_label']}), the "
            f"cached cross-encoder {_times(r['cached_over_late'])}; the naive one takes "
            f"{_times(r['cross_over_cached'])} as long as the cached one.")
    return "\n".join(lines)


def checkpoint_table(manifest: dict | None, verified: list[dict] | None) -> pd.DataFrame:
    """One row per restored checkpoint: file, sha256 and whether it equals the manifest's."""
    if not manifest or not verified:
        return pd.DataFrame(columns=["model", "file", "sha256", "matches_manifest"])
    return pd.DataFrame(verified)
