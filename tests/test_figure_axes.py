"""Figures that read right (issue 14): every plotly axis covers its data within a sane factor.

The check itself (recsys_lab.viz.checks) runs on every figure of every notebook inside nbval
(notebooks/conftest.py) and here on every report that `make reports` generated.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pandas as pd
import pytest
from plotly.subplots import make_subplots

from recsys_lab import viz
from recsys_lab.viz.checks import axis_problems

REPO = Path(__file__).resolve().parents[1]
PLOTLY_MIME = "application/vnd.plotly.v1+json"
LATENCY = np.random.default_rng(0).lognormal(0.0, 1.0, 300)  # ms, about 0.05 to 20


def timeline(budget):
    """Report 10's latency timeline: a log axis over response times, a budget line on it."""
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True)
    fig.add_trace(go.Scattergl(x=np.arange(300), y=LATENCY, mode="markers"), 1, 1)
    fig.add_trace(go.Scatter(x=np.arange(300), y=np.linspace(0.0, 0.3, 300)), 2, 1)
    budget(fig)
    fig.update_yaxes(type="log", row=1, col=1)
    return fig


def test_budget_annotation_on_log_axis_is_caught_and_fixed():
    before = timeline(lambda f: f.add_hline(y=50.0, annotation_text="budget", row=1, col=1))
    [problem] = axis_problems(before)
    assert problem.startswith("yaxis runs to") and "1e+50" in problem  # what report 10 showed
    after = timeline(lambda f: viz.budget_line(f, 50.0, log_y=True, row=1, col=1))
    assert axis_problems(after) == []
    label = after.layout.annotations[-1]
    assert label.text == "budget" and label.yref == "y" and label.y == pytest.approx(np.log10(50))
    assert label.xref == "x domain"  # at the right edge of its own subplot, not at x = 1


def test_checks_read_figures_as_notebooks_store_them():
    """In an executed notebook arrays are base64 ("bdata"); the check reads them the same."""
    stored = json.loads(pio.to_json(timeline(lambda f: f.add_hline(y=50.0, annotation_text="b",
                                                                    row=1, col=1))))
    assert "bdata" in json.dumps(stored["data"][0]["y"])
    assert len(axis_problems(stored)) == 1


@pytest.mark.parametrize("fig, fits", [
    (go.Figure(go.Bar(x=["a", "b"], y=[3.0, 4.0])), True),  # bars start at 0: a fine range
    (go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).update_yaxes(range=[3.5, 4]), False),  # cuts
    (go.Figure(go.Scatter(x=[1, 2], y=[3, 4])).update_yaxes(range=[0, 100]), False),  # 100x
    (go.Figure(go.Scatter(x=[1, 2], y=[0.2, 0.3])).update_yaxes(range=[0, 1]), True),
    (go.Figure(go.Scatter(x=[1, 10], y=[1, 5])).update_yaxes(type="log").add_hline(y=50), True),
    (go.Figure(go.Scatter(x=[1, 10], y=[1, 5])).update_yaxes(type="log", range=[0, 55]), False),
])
def test_range_rules(fig, fits):
    assert (axis_problems(fig) == []) == fits, axis_problems(fig)


def test_pareto_points_are_labelled():
    df = pd.DataFrame({"model": ["Pop", "ItemKNN", "EASE", "slow"], "p99_ms": [0.1, 1.0, 2.0, 9.0],
                       "ndcg": [0.03, 0.2, 0.25, 0.1]})
    fig = viz.latency_accuracy(df, label="model", front=[True, True, True, False])
    front = fig.data[1]
    assert front.name == "Pareto front" and "text" in front.mode
    assert list(front.text) == ["Pop", "ItemKNN", "EASE"]
    assert "text" not in fig.data[0].mode  # dominated points stay unlabelled (hover only)
    assert axis_problems(fig) == []


def generated_figures():
    """Every plotly figure in the executed notebooks of reports/ (from `make reports`)."""
    for nb in sorted((REPO / "reports").glob("[0-9][0-9]_*.ipynb")):
        doc = json.loads(nb.read_text(encoding="utf-8"))
        for i, cell in enumerate(doc["cells"]):
            for out in cell.get("outputs", []):
                fig = out.get("data", {}).get(PLOTLY_MIME)
                if fig is not None:
                    yield f"{nb.stem} cell {i}", fig


def test_every_generated_report_has_axes_that_fit():
    figures = list(generated_figures())
    if not figures:
        pytest.skip("no generated reports in reports/ (make reports); nbval checks every "
                    "notebook's figures in make test")
    problems = [f"{where}: {p}" for where, fig in figures for p in axis_problems(fig)]
    assert problems == []
