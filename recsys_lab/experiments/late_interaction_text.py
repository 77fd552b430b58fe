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


def _last_gain(model) -> tuple[float, float]:
    """The validation NDCG@10 of a model's last two validated epochs (NaN where fewer)."""
    v = model.history_.get("valid_ndcg@10", pd.Series(dtype=float)).dropna().to_numpy()
    return (float(v[-2]) if len(v) > 1 else float("nan")), (float(v[-1]) if len(v) else float("nan"))


def shortfall_text(h: dict, first_stages: pd.DataFrame, models: dict, C: int = 100) -> str:
    """Where the cross-encoder stays below SASRec, the evidence of why, from this run: is the
    gap in the candidates (the first stage's Recall@C caps any re-ranker) or in the scoring
    (re-ranking SASRec's own top-C against SASRec's own order), and did the epoch cap or early
    stopping end each transformer's training (best epoch = last epoch = cap: still improving)?"""
    if h["cross_beats_sasrec"]:
        return (f"The cross-encoder reaches SASRec on this split ({h['cross_ndcg']:.4f} and cached "
                f"{h['cached_cross_ndcg']:.4f} against {h['sasrec_ndcg']:.4f}).")
    nd, ceiling = f"ndcg@10 C={C}", f"first_stage_recall@{C}"
    fs = first_stages.set_index(["first_stage", "ranker"])
    lines = [f"**The cross-encoder stays below SASRec here** (best {max(h['cross_ndcg'], h['cached_cross_ndcg']):.4f} "
             f"against {h['sasrec_ndcg']:.4f}). What this run shows about why:", ""]
    if ceiling in first_stages:
        caps = first_stages.groupby("first_stage", sort=False)[ceiling].first()
        lines.append("* **Candidates.** Share of test targets among each first stage's top "
                     f"{C} (no re-ranker's Recall@10 can pass it): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in caps.items()) + ".")
    own = [(r, fs.loc[("SASRec", r), nd]) for r in ("cross-encoder", "cached cross-encoder")
           if ("SASRec", r) in fs.index]
    if own:
        worse = all(v < h["sasrec_ndcg"] for _, v in own)
        lines.append(f"* **Scoring.** Re-ranking SASRec's own top {C}, the cross-encoders reach "
                     + " and ".join(f"{v:.4f} ({r})" for r, v in own)
                     + f" against SASRec's own order of the same candidates, {h['sasrec_ndcg']:.4f}: "
                     + ("the candidates are not what holds them back, their scores are."
                        if worse else "within SASRec's candidates they match or pass it."))
    rows = []
    for name, m in models.items():
        n, best, cap = len(m.history_), int(m.best_epoch_), int(getattr(m, "epochs", len(m.history_)))
        before, last = _last_gain(m)
        why = ("epoch cap, still improving" if best == n == cap
               else "epoch cap" if n == cap else "early stopping")
        rows.append(f"{name}: {n} of {cap} epochs, best {best}, last validation change "
                    f"{last - before:+.4f} ({why})")
    lines.append("* **Training.** What ended each model's training: " + "; ".join(rows) + ".")
    still = [name for name, m in models.items() if "cross" in name and int(m.best_epoch_) == len(m.history_)
             == int(getattr(m, "epochs", -1))]
    lines.append("")
    lines.append(("So the cross-encoders were still improving when the profile's epoch cap stopped "
                  f"them ({', '.join(still)}): on this machine's budget they are under-trained, and "
                  "SASRec, trained to early stopping, is the stronger ranker of this run.")
                 if still else
                 "The cross-encoders stopped by early stopping, not by the epoch cap: on this data "
                 "they do not learn a better ranking than SASRec's within this architecture.")
    return "\n".join(lines)
