"""viz.panel: the static branch draws at the defaults; the live panel rebuilds on each change."""
from __future__ import annotations

import pandas as pd
import pytest

from recsys_lab import viz

SWEEP = pd.DataFrame({"model": ["a", "b", "c"], "p99_ms": [1.0, 2.0, 4.0], "ndcg": [0.1, 0.3, 0.2],
                      "hit": [0.5, 0.4, 0.9]})


def figure(y, x="p99_ms"):
    return viz.latency_accuracy(SWEEP, x=x, y=y, front=True, title=f"{y} vs {x}")


def test_static_view_is_built_at_the_defaults():
    p = viz.Panel({"y": viz.dropdown(["ndcg", "hit"])}, figure=figure,
                  table=lambda y: SWEEP[["model", y]])
    fig, table = p.static()
    assert fig.layout.title.text == "ndcg vs p99_ms" and list(table.columns) == ["model", "ndcg"]


def test_live_panel_rebuilds_figure_and_table_on_change():
    calls = []

    def table(y, x):
        calls.append((y, x))
        return SWEEP[["model", y]]

    p = viz.Panel({"y": ["ndcg", "hit"], "x": viz.toggle(["p99_ms", "ndcg"], description="x axis")},
                  figure=figure, table=table)
    box = p.widget()
    assert [type(w).__name__ for w in box.children[0].children] == ["Dropdown", "ToggleButtons"]
    assert p.figure_widget.layout.title.text == "ndcg vs p99_ms"
    p.widgets["y"].value = "hit"
    assert p.figure_widget.layout.title.text == "hit vs p99_ms"
    assert list(p.figure_widget.data[-1].text) == ["a", "c"]  # the front of hit vs p99
    p.widgets["x"].value = "ndcg"
    assert p.figure_widget.layout.xaxis.title.text == "ndcg"
    assert calls == [("ndcg", "p99_ms"), ("hit", "p99_ms"), ("hit", "ndcg")]


def test_manual_panel_waits_for_its_button():
    seen = []
    p = viz.Panel({"k": viz.slider(5, 500, 50, step=5)}, table=lambda k: seen.append(k) or f"k={k}",
                  manual="fit + measure")
    box = p.widget()
    slider, button = box.children[0].children
    assert type(slider).__name__ == "IntSlider" and button.description == "fit + measure"
    slider.value = 100
    assert seen == [50], "no refit before the button"
    button.click()
    assert seen == [50, 100]


def test_control_kinds_and_bad_input():
    log = viz.log_slider(1, 1e4, 200.0).widget("rate")
    assert type(log).__name__ == "FloatLogSlider" and (log.min, log.max, log.value) == (0, 4, 200.0)
    assert type(viz.text("5, 3, 4").widget("u1")).__name__ == "Text"
    assert type(viz.slider(0.0, 1.0, 0.5, step=0.1).widget("a")).__name__ == "FloatSlider"
    with pytest.raises(ValueError, match="default 'x' is not among the options"):
        viz.dropdown(["a", "b"], value="x")
    with pytest.raises(ValueError, match=r"outside \[1, 10\]"):
        viz.slider(1, 10, 20)
    with pytest.raises(ValueError, match="positive minimum"):
        viz.log_slider(0, 10, 1)
    with pytest.raises(ValueError, match="at least one control"):
        viz.Panel({}, figure=figure)
    with pytest.raises(ValueError, match="a figure or a table"):
        viz.Panel({"y": ["ndcg"]})
    with pytest.raises(TypeError, match="control 'y' must be"):
        viz.Panel({"y": 3}, figure=figure)


def test_show_static_and_note(capsys):
    viz.panel({"y": ["ndcg", "hit"]}, table=lambda y: f"table of {y}", interactive=False)
    viz.panel({"y": viz.dropdown(["ndcg"], description="accuracy")}, figure=figure,
              interactive=False, static=False)
    out = capsys.readouterr().out.splitlines()
    assert out == ["table of ndcg",
                   "static report: set INTERACTIVE = True in JupyterLab for the controls (accuracy)"]
