"""Figure builders of the late-interaction study (notebook 07): tidy DataFrames in, figures out."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .figures import TEMPLATE

ARCH_ORDER = ("cross-encoder", "cached cross-encoder", "late interaction", "two-tower")


def latency_by_model_size(table: pd.DataFrame, x: str = "params_m", y: str = "p50_ms",
                          arch: str = "arch", title: str = "per-request latency after one click "
                          "vs model size (random weights)") -> go.Figure:
    """Latency against model size, one line per architecture, log-log, a panel per (L, C).

    ``table``: one row per (arch, d, n_layers, L, C) with ``x`` (block parameters, millions) and
    ``y`` (ms); rows whose ``label`` is not "measured" (scaled from n of C candidates) are drawn
    as open markers. Points of one line are ordered by ``x``; hover shows d x layers.
    """
    panels = sorted({(int(L), int(C)) for L, C in zip(table["L"], table["C"])})
    cols = sorted({C for _, C in panels})
    rows = sorted({L for L, _ in panels})
    fig = make_subplots(rows=len(rows), cols=len(cols), shared_xaxes=True, shared_yaxes=True,
                        subplot_titles=[f"L = {L}, C = {C}" for L in rows for C in cols],
                        horizontal_spacing=0.06, vertical_spacing=0.1)
    archs = [a for a in ARCH_ORDER if a in set(table[arch])] + \
        sorted(set(table[arch]) - set(ARCH_ORDER))
    colors = dict(zip(archs, ("#d62728", "#ff7f0e", "#2ca02c", "#1f77b4", "#9467bd", "#8c564b")))
    for (L, C) in panels:
        r, c = rows.index(L) + 1, cols.index(C) + 1
        for a in archs:
            g = table[(table[arch] == a) & (table["L"] == L) & (table["C"] == C)].sort_values(x)
            if g.empty:
                continue
            scaled = g["label"].ne("measured") if "label" in g else pd.Series(False, index=g.index)
            fig.add_trace(go.Scatter(
                x=g[x], y=g[y], mode="lines+markers", name=a, legendgroup=a,
                showlegend=(r, c) == (1, 1), line=dict(color=colors[a]),
                marker=dict(size=8, symbol=["circle-open" if s else "circle" for s in scaled]),
                text=[f"{a}: d={d} x {n} layers<br>{lab}" for d, n, lab in
                      zip(g["d"], g["n_layers"], g.get("label", [""] * len(g)))],
                hovertemplate="%{text}<br>%{x:.2f} M params, %{y:.3g} ms<extra></extra>"), row=r, col=c)
    fig.update_xaxes(type="log", title_text="transformer parameters (millions)", row=len(rows))
    fig.update_yaxes(type="log")
    for r in range(1, len(rows) + 1):
        fig.update_yaxes(title_text="ms per request", row=r, col=1)
    fig.update_layout(template=TEMPLATE, title=title, height=330 * len(rows) + 120,
                      legend=dict(orientation="h", y=-0.12))
    return fig


def flops_vs_latency(table: pd.DataFrame, x: str = "flops", y: str = "cpu_p50_ms", label: str = "model",
                     title: str = "measured latency vs modelled FLOPs per request") -> go.Figure:
    """Log-log scatter of measured per-request latency against the cost model's FLOPs: pure
    arithmetic would lie on one line of slope 1; a fixed per-call cost bends it flat."""
    fig = go.Figure(go.Scatter(x=table[x], y=table[y], mode="markers+text", text=table[label],
                               textposition="top center", marker=dict(size=9)))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="FLOPs per request (cost model)",
                      yaxis_title=f"{y} (ms)", height=420)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def update_latency(updates: pd.DataFrame, y: str = "cpu_p50_ms",
                   title: str = "latency of absorbing one click (ms, one thread)") -> go.Figure:
    """Incremental update vs full re-encode vs a full-attention pass against history length."""
    fig = go.Figure()
    for mode, g in updates.groupby("mode", sort=False):
        g = g.sort_values("history")
        fig.add_trace(go.Scatter(x=g["history"], y=g[y], mode="lines+markers", name=mode))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="history length (items)",
                      yaxis_title="ms", height=400)
    fig.update_xaxes(type="log")
    fig.update_yaxes(type="log")
    return fig


def accuracy_by_segments(table: pd.DataFrame, y: str, refs: dict | None = None,
                         title: str = "late interaction: NDCG@10 vs number of segments S") -> go.Figure:
    """NDCG@10 of each late model (m, interaction) against S, with dotted reference lines
    (``refs``: name -> value, e.g. the cross-encoder, the two-tower, the first stage)."""
    late = table[table["arch"] == "late"]
    fig = go.Figure()
    for (m, kind), g in late.groupby(["m", "interaction"]):
        g = g.sort_values("S")
        fig.add_trace(go.Scatter(x=g["S"], y=g[y], mode="lines+markers", name=f"m={int(m)} {kind}"))
    span = [late["S"].min(), late["S"].max()]
    for name, value in (refs or {}).items():  # traces, not shapes: the references are data too
        fig.add_trace(go.Scatter(x=span, y=[float(value)] * 2, mode="lines+text", name=name,
                                 line={"dash": "dot"}, text=["", name], textposition="top left"))
    fig.update_layout(template=TEMPLATE, title=title, xaxis_title="segments S", yaxis_title=y, height=420)
    fig.update_xaxes(type="log")
    return fig
