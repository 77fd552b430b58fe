"""Cost-vs-scale figures: log-log curves with their empirical exponent beside the analytic one."""
from __future__ import annotations

import math
from collections.abc import Mapping

import pandas as pd
import plotly.colors
import plotly.graph_objects as go

from .figures import TEMPLATE, budget_line


def scaling_curves(df: pd.DataFrame, y: str, predicted: str | None = None, x: str = "n_items",
                   label: str = "label", slopes: Mapping | None = None, title: str = "",
                   y_title: str | None = None, budget: float | None = None) -> go.Figure:
    """One log-log line of ``y`` against ``x`` per ``label``; rows with ``status == "skipped"``
    are drawn at their ``predicted`` value as crosses (predicted, not run).

    predicted: column of the predicted value (drawn dotted in the same colour).
    slopes:    {label: (empirical, analytic)} exponents, written into the legend.
    budget:    a horizontal line at the machine's budget (same unit as ``y``).
    """
    fig = go.Figure()
    palette = plotly.colors.qualitative.Plotly
    status = df["status"] if "status" in df else pd.Series("ok", index=df.index)
    for i, (name, g) in enumerate(df.groupby(label, sort=False)):
        g, colour = g.sort_values(x), palette[i % len(palette)]
        ran = g[status.loc[g.index] == "ok"]
        emp, ana = (slopes or {}).get(name, (math.nan, math.nan))
        legend = name + (f" · slope {emp:.2f}" if math.isfinite(emp) else "") + \
            (f" (analytic {ana:.2f})" if math.isfinite(ana) else "")
        fig.add_trace(go.Scatter(x=ran[x], y=ran[y], mode="lines+markers", name=legend,
                                 line=dict(color=colour), legendgroup=name))
        if predicted is not None and predicted in g:
            fig.add_trace(go.Scatter(x=ran[x], y=ran[predicted], mode="lines", name=f"{name} predicted",
                                     line=dict(color=colour, dash="dot"), legendgroup=name, showlegend=False))
            skipped = g[status.loc[g.index] == "skipped"]
            if len(skipped):
                fig.add_trace(go.Scatter(x=skipped[x], y=skipped[predicted], mode="markers",
                                         name=f"{name}: predicted, skipped", legendgroup=name,
                                         marker=dict(color=colour, symbol="x", size=11)))
    if budget is not None:
        budget_line(fig, budget, "budget", log_y=True)
    fig.update_xaxes(type="log", title_text=x.replace("_", " "))
    fig.update_yaxes(type="log", title_text=y_title or y)
    fig.update_layout(template=TEMPLATE, title=title, height=460, legend=dict(font=dict(size=10)))
    return fig
