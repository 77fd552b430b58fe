"""Replays over time (notebook 10): response time per event against a budget, and what was hit."""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import TEMPLATE, budget_line

EVENT_COLUMNS = ("event", "response_ms", "next_item", "next_hit")


def replay_timeline(runs: Mapping[str, pd.DataFrame], budget_ms: float, window: int = 200,
                    title: str = "replay") -> go.Figure:
    """Two panels sharing the event axis: every response time (log ms) with the rolling p99 over
    ``window`` events and the budget line, then the cumulative next-item hit rate (over events
    that have a next item), one colour per run (``simulate``'s event log, one per policy)."""
    if not runs:
        raise ValueError("replay_timeline needs at least one run")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08,
                        subplot_titles=("response time per event (ms)", "cumulative next-item hit rate"))
    for name, ev in runs.items():
        missing = set(EVENT_COLUMNS) - set(ev.columns)
        if missing:
            raise KeyError(f"run {name!r} lacks columns {sorted(missing)}")
        roll = ev["response_ms"].rolling(window, min_periods=1).quantile(0.99)
        fig.add_trace(go.Scattergl(x=ev["event"], y=ev["response_ms"], mode="markers", name=f"{name}: events",
                                   marker=dict(size=3, opacity=0.35)), 1, 1)
        fig.add_trace(go.Scatter(x=ev["event"], y=roll, mode="lines", name=f"{name}: rolling p99"), 1, 1)
        cum = ev["next_hit"].where(ev["next_item"] >= 0).expanding().mean()
        fig.add_trace(go.Scatter(x=ev["event"], y=cum, mode="lines", name=f"{name}: next-item hit"), 2, 1)
    budget_line(fig, budget_ms, log_y=True, row=1, col=1)
    fig.update_yaxes(type="log", title_text="ms", row=1, col=1)
    fig.update_yaxes(title_text="hit rate", tickformat=".0%", row=2, col=1)
    fig.update_xaxes(title_text="event", row=2, col=1)
    fig.update_layout(template=TEMPLATE, height=620, title=title)
    return fig
