"""Plotly figure builders: each takes a tidy DataFrame (or Interactions) and returns a Figure."""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

TEMPLATE = "plotly_white"
CUTOFF_COLUMN = re.compile(r"^(?P<metric>[a-z_]+)@(?P<k>\d+)$")


def popularity_long_tail(data, top_share: float = 0.2) -> go.Figure:
    """Item popularity by rank (log-log) and the cumulative share of interactions."""
    counts = np.sort(np.bincount(data.item, minlength=data.n_items))[::-1]
    rank = np.arange(1, len(counts) + 1)
    share = np.cumsum(counts) / counts.sum()
    head = int(np.ceil(top_share * len(counts)))
    fig = make_subplots(rows=1, cols=2, subplot_titles=(
        "interactions per item, by popularity rank",
        f"cumulative share: top {top_share:.0%} of items get {share[head - 1]:.0%}"))
    fig.add_trace(go.Scattergl(x=rank, y=np.maximum(counts, 0.5), mode="lines", name="interactions"), 1, 1)
    fig.add_trace(go.Scatter(x=rank / len(rank), y=share, mode="lines", name="cumulative share"), 1, 2)
    fig.update_xaxes(type="log", title_text="item rank", row=1, col=1)
    fig.update_yaxes(type="log", title_text="interactions", row=1, col=1)
    fig.update_xaxes(title_text="fraction of catalog (most popular first)", tickformat=".0%", row=1, col=2)
    fig.update_yaxes(title_text="share of interactions", tickformat=".0%", row=1, col=2)
    fig.update_layout(template=TEMPLATE, showlegend=False, height=380, title=f"{data.name}: popularity long tail")
    return fig


def cutoff_table(table: pd.DataFrame, label: str = "model") -> pd.DataFrame:
    """:func:`~recsys_lab.eval.compare`'s wide accuracy columns (``ndcg@10``, ...) in long form:
    one row per ``label`` and cutoff, columns ``label``, k and each metric (in column order)."""
    found = [(c, m["metric"], int(m["k"])) for c in table.columns if (m := CUTOFF_COLUMN.match(c))]
    if not found:
        raise ValueError(f"no metric@k columns in {list(table.columns)}")
    metrics = list(dict.fromkeys(metric for _, metric, _ in found))
    rows = []
    for _, r in table.iterrows():
        for k in sorted({k for _, _, k in found}):
            rows.append({label: r[label], "k": k, **{m: r.get(f"{m}@{k}", np.nan) for m in metrics}})
    return pd.DataFrame(rows, columns=[label, "k", *metrics])


def metrics_by_k(df: pd.DataFrame, metrics=("recall", "ndcg", "precision", "hit", "mrr"),
                 color: str | None = "model", title: str = "full-ranking metrics by cutoff K") -> go.Figure:
    """Lines of each metric against K; ``df`` has columns k, the metrics and optionally ``color``
    (long form, as :func:`~recsys_lab.eval.evaluate` returns), or is a
    :func:`~recsys_lab.eval.compare` table (its ``metric@k`` columns)."""
    if "k" not in df:
        df = cutoff_table(df, label=color or "model")
    fig = go.Figure()
    groups = df.groupby(color) if color and color in df else [("", df)]
    for name, g in groups:
        for m in metrics:
            fig.add_trace(go.Scatter(x=g["k"], y=g[m], mode="lines+markers",
                                     name=f"{name} {m}".strip()))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="K", yaxis_title="metric@K",
                      height=380)
    return fig


def latency_percentiles(rows: pd.DataFrame, label: str = "model") -> go.Figure:
    """Grouped bars of p50/p95/p99 per-request latency (ms)."""
    fig = go.Figure()
    for p in ("p50_ms", "p95_ms", "p99_ms"):
        fig.add_trace(go.Bar(x=rows[label], y=rows[p], name=p.replace("_ms", "")))
    fig.update_layout(template=TEMPLATE, barmode="group", yaxis_title="ms per request",
                      title="per-request latency (batch 1, after warm-up)", height=360)
    return fig


def latency_accuracy(df: pd.DataFrame, x: str = "p99_ms", y: str = "ndcg", label: str = "model",
                     front: pd.Series | np.ndarray | bool | None = None, log_x: bool = True,
                     title: str = "latency vs accuracy", label_front: bool = True) -> go.Figure:
    """Scatter of accuracy against latency; points on the Pareto front (a boolean mask, or True:
    :func:`~recsys_lab.eval.pareto_front` of ``x`` lower-better, ``y`` higher-better) highlighted
    and, with ``label_front``, labelled on the chart (static reports have no hover)."""
    fig = go.Figure()
    df = df.reset_index(drop=True)
    if front is True:
        from ..eval.pareto import pareto_front
        front = pareto_front(df, x, y)
    on = np.zeros(len(df), bool) if front is None or front is False else np.asarray(front, bool)
    hover = df[label].astype(str) if label in df else None
    fig.add_trace(go.Scatter(x=df[x][~on], y=df[y][~on], mode="markers", name="dominated",
                             text=None if hover is None else hover[~on], marker=dict(size=9, opacity=0.6)))
    if on.any():
        f = df[on].sort_values(x)
        names = None if hover is None else f[label].astype(str)
        show = label_front and names is not None
        fig.add_trace(go.Scatter(x=f[x], y=f[y], mode="lines+markers+text" if show else "lines+markers",
                                 name="Pareto front", text=names, hovertext=names,
                                 # alternate above/below so neighbouring labels do not overlap
                                 textposition=["top left" if i % 2 else "bottom right"
                                               for i in range(len(f))],
                                 textfont=dict(size=10), cliponaxis=False,
                                 marker=dict(size=11, symbol="diamond"), line=dict(dash="dot")))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title=x, yaxis_title=y, height=420)
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def reference_line(fig: go.Figure, value: float, text: str = "", axis: str = "y", log: bool = False,
                   row: int | None = None, col: int | None = None, color: str = "grey",
                   dash: str = "dot") -> go.Figure:
    """A line across the plot at ``value`` on the ``axis`` ("y": horizontal, "x": vertical), its
    label at the right end (or the top).

    On a log axis plotly places annotations at log10 of the value (shapes at the value), so
    ``fig.add_hline(y, annotation_text=...)`` there puts the label at 10^y and stretches the
    axis to it: the label is added here with the position the axis type needs.
    """
    if axis not in ("x", "y"):
        raise ValueError(f"axis must be 'x' or 'y', got {axis!r}")
    add = fig.add_hline if axis == "y" else fig.add_vline
    line = dict(color=color, dash=dash)
    if row is None:
        add(value, line=line)
        refs = {"x": "x", "y": "y"}
    else:
        add(value, line=line, row=row, col=col)
        sub = fig.get_subplot(row, col)  # e.g. xaxis2 / yaxis2 -> "x2" / "y2"
        refs = {"x": sub.xaxis.plotly_name.replace("axis", ""), "y": sub.yaxis.plotly_name.replace("axis", "")}
    if text:
        where = float(np.log10(value) if log else value)
        other = "x" if axis == "y" else "y"
        fig.add_annotation(**{axis: where, f"{axis}ref": refs[axis], other: 1,
                              f"{other}ref": ("paper" if row is None else refs[other] + " domain")},
                           xanchor="right" if axis == "y" else "left",
                           yanchor="bottom" if axis == "y" else "top",
                           text=text, showarrow=False, font=dict(color=color))
    return fig


def budget_line(fig: go.Figure, y: float, text: str = "budget", log_y: bool = False,
                row: int | None = None, col: int | None = None) -> go.Figure:
    """A red dashed horizontal line at ``y`` (e.g. a latency budget), labelled at the right
    (:func:`reference_line`, which places the label right on log axes too)."""
    return reference_line(fig, y, text, axis="y", log=log_y, row=row, col=col, color="red", dash="dash")
