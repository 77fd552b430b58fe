"""What each training change bought: the headline of several late-interaction benchmark runs.

    python benchmarks/late_interaction_ablation.py RUN.json [RUN.json ...] [--markdown]

Each JSON is one ``benchmarks/late_interaction.py`` run (same split: its fingerprint is checked).
A row per run: the config keys where the runs differ, then SASRec, EASE, the better two-tower,
the naive and cached cross-encoders and the best late setting (NDCG@10, C = 100 over the main
first stage), and the issue's four checks.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

CHECKS = ("cross_beats_sasrec", "meets_95pct_of_cross", "beats_two_tower", "all_beat_ease")


def ablation(paths: list) -> pd.DataFrame:
    runs = [json.loads(Path(p).read_text()) for p in paths]
    prints = {r["split_fingerprint"] for r in runs}
    if len(prints) > 1:
        raise ValueError(f"the runs are on different splits ({sorted(prints)}): not comparable")
    keys = sorted({k for r in runs for k in r["config"]})
    differ = [k for k in keys if len({json.dumps(r["config"].get(k)) for r in runs}) > 1]
    rows = []
    for path, r in zip(paths, runs):
        h = r["headline"]
        row = {"run": Path(path).stem, **{k: r["config"].get(k) for k in differ},
               "SASRec": h["sasrec_ndcg"], "EASE": h["ease_ndcg"], "two-tower": h["two_tower_ndcg"],
               "cross": h["cross_ndcg"], "cached cross": h["cached_cross_ndcg"],
               "best late": h["best_late_ndcg"], "late / cross": h["ndcg_ratio_vs_cross"],
               "cross ms / late ms": h["latency_ratio_cross_over_late"],
               **{c: h[c] for c in CHECKS}, "train s": sum(r["fit_seconds"].values())}
        rows.append(row)
    return pd.DataFrame(rows)


def markdown(table: pd.DataFrame) -> str:
    """A GitHub table (no tabulate dependency)."""
    lines = ["| " + " | ".join(map(str, table.columns)) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    table = ablation(args.runs).round(4)
    print(markdown(table) if args.markdown else table.to_string(index=False))


if __name__ == "__main__":
    main()
