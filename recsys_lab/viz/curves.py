"""General line, scatter and bar builders: tidy DataFrames in, one plotly Figure out.

    curves(ann, x="p50_ms", y="overlap@10", color="backend", text="knob")      # knob curves (08)
    labelled_scatter(table, x="memory_saving", y="ndcg_kept", color="model", text="variant")
    twin_axes(cache, x="capacity", left=["hit_rate"], right=["cached_mean_ms"])  # two y axes
    grouped_bars(table, x="variant", y="p50_ms", color="model")

Points carry their ``text`` labels on the chart: static HTML reports have no hover to rely on.
Add reference lines (a budget, an exact baseline, the 99% bar) with
:func:`~recsys_lab.viz.reference_line` / :func:`~recsys_lab.viz.budget_line`.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from .figures import TEMPLATE


def _groups(df: pd.DataFrame, color: str | None):
    """(name, rows) per value of ``color`` in order of appearance; one unnamed group when None."""
    if color is None:
        return [("", df)]
    if color not in df:
        raise KeyError(f"color column {color!r} is not in the frame (columns: {list(df.columns)})")
    return list(df.groupby(color, sort=False))


def _check_columns(df: pd.DataFrame, *names):
    missing = [n for n in names if n is not None and n not in df]
    if missing:
        raise KeyError(f"columns {missing} are not in the frame (columns: {list(df.columns)})")


def _axes(fig: go.Figure, x: str, y: str, log_x: bool, log_y: bool, title: str, x_title, y_title,
          height: int) -> go.Figure:
    fig.update_layout(template=TEMPLATE, title=title, height=height,
                      xaxis_title=x_title if x_title is not None else x,
                      yaxis_title=y_title if y_title is not None else y)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def curves(df: pd.DataFrame, x: str, y: str, color: str | None = None, text: str | None = None,
           log_x: bool = False, log_y: bool = False, title: str = "", x_title: str | None = None,
           y_title: str | None = None, height: int = 420, markers: bool = True, lines: bool = True,
           sort_x: bool = False, textposition: str = "top center") -> go.Figure:
    """One trace per ``color`` group of ``y`` against ``x``, points in row order (``sort_x``: by
    ``x``), each labelled with its ``text`` value when given; log axes on request."""
    _check_columns(df, x, y, text)
    mode = "+".join(m for m, on in (("lines", lines), ("markers", markers), ("text", text is not None)) if on)
    if not mode or mode == "text":
        raise ValueError("curves needs lines or markers")
    fig = go.Figure()
    for name, g in _groups(df, color):
        if sort_x:
            g = g.sort_values(x)
        labels = None if text is None else g[text].astype(str)
        fig.add_trace(go.Scatter(x=g[x], y=g[y], mode=mode, name=str(name) or y, text=labels,
                                 textposition=textposition, textfont=dict(size=10), cliponaxis=False,
                                 marker=dict(size=8)))
    fig.update_layout(showlegend=color is not None)
    return _axes(fig, x, y, log_x, log_y, title, x_title, y_title, height)


def labelled_scatter(df: pd.DataFrame, x: str, y: str, text: str, color: str | None = None,
                     log_x: bool = False, log_y: bool = False, title: str = "",
                     x_title: str | None = None, y_title: str | None = None,
                     height: int = 440) -> go.Figure:
    """Markers labelled by ``text``, one colour per ``color`` group: what each accelerator keeps
    against what it saves (08), measured latency against modelled FLOPs (07)."""
    return curves(df, x, y, color=color, text=text, log_x=log_x, log_y=log_y, title=title,
                  x_title=x_title, y_title=y_title, height=height, lines=False)


def _series(columns) -> dict:
    """``["a", "b"]`` or ``{"a": "name a"}`` -> {column: legend name}."""
    if isinstance(columns, str):
        columns = [columns]
    return dict(columns) if isinstance(columns, Mapping) else {c: c for c in columns}


def twin_axes(df: pd.DataFrame, x: str, left: Sequence[str] | Mapping[str, str],
              right: Sequence[str] | Mapping[str, str], left_title: str = "", right_title: str = "",
              left_range: Sequence[float] | None = None, dotted: Sequence[str] = (), title: str = "",
              x_title: str | None = None, height: int = 400) -> go.Figure:
    """Lines of the ``left`` columns on the left y axis and the ``right`` columns on a second y
    axis (a rate beside a latency); columns named in ``dotted`` are drawn as dotted lines."""
    left, right = _series(left), _series(right)
    _check_columns(df, x, *left, *right)
    fig = go.Figure()
    for side, series in (("y", left), ("y2", right)):
        for col, name in series.items():
            style = dict(line=dict(dash="dot"), mode="lines") if col in dotted else dict(mode="lines+markers")
            fig.add_trace(go.Scatter(x=df[x], y=df[col], name=name, yaxis=side, **style))
    fig.update_layout(template=TEMPLATE, title=title, height=height,
                      xaxis_title=x_title if x_title is not None else x,
                      yaxis=dict(title=left_title, **({"range": list(left_range)} if left_range else {})),
                      yaxis2=dict(title=right_title, overlaying="y", side="right"))
    return fig


def grouped_bars(df: pd.DataFrame, x: str, y: str, color: str | None = None, title: str = "",
                 y_title: str | None = None, height: int = 380, log_y: bool = False) -> go.Figure:
    """Bars of ``y`` per ``x`` category, grouped side by side by ``color``."""
    _check_columns(df, x, y)
    fig = go.Figure([go.Bar(x=g[x].astype(str), y=g[y], name=str(name) or y)
                     for name, g in _groups(df, color)])
    fig.update_layout(barmode="group", showlegend=color is not None)
    return _axes(fig, x, y, False, log_y, title, x, y_title, height)
