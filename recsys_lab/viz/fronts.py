"""The Pareto front of a sweep (09, and any frame of configurations with accuracy and latency)."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from ..eval.pareto import pareto_front
from .figures import latency_accuracy


def sweep_front(sweep: pd.DataFrame, dataset: str, metric: str = "ndcg@10", latency: str = "p99_ms",
                batch: int = 1, label: str = "label") -> tuple[go.Figure, pd.DataFrame]:
    """(figure, front) of one data set and batch size of a sweep table (``run_sweep``'s long
    form: columns dataset, batch_size, ``metric``, ``latency``, ``label``): accuracy against
    latency with the Pareto front drawn and labelled, and the front's rows, fastest first."""
    missing = {"dataset", "batch_size", metric, latency, label} - set(sweep.columns)
    if missing:
        raise KeyError(f"sweep table lacks columns {sorted(missing)}")
    sub = sweep[(sweep["dataset"] == dataset) & (sweep["batch_size"] == batch)].reset_index(drop=True)
    if sub.empty:
        raise ValueError(f"no rows for dataset {dataset!r} at batch size {batch} (data sets: "
                         f"{sorted(sweep['dataset'].unique())}, batch sizes: "
                         f"{sorted(sweep['batch_size'].unique())})")
    front = pareto_front(sub, latency, metric)
    fig = latency_accuracy(sub, x=latency, y=metric, label=label, front=front,
                           title=f"{dataset}: {metric} vs {latency} (batch {batch})")
    return fig, sub[front].sort_values(latency).reset_index(drop=True)
