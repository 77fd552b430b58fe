"""Each viz builder on a tiny frame: the traces, their data and the axes expected (and axes that
fit their data, the check nbval runs on every notebook figure)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_lab import viz
from recsys_lab.eval import pareto_front
from recsys_lab.viz.checks import axis_problems


def history(losses, ndcgs):
    return pd.DataFrame({"epoch": np.arange(1, len(losses) + 1), "loss": losses, "valid_ndcg@10": ndcgs})


def test_training_curves_two_panels_one_legend_entry_per_model():
    fig = viz.training_curves({"BPR": history([0.7, 0.5, 0.4], [0.1, 0.2, 0.25]),
                               "pointwise": history([0.9, 0.6], [0.05, 0.1])}, "t")
    assert [(t.name, t.xaxis, t.yaxis) for t in fig.data] == [
        ("BPR", "x", "y"), ("BPR", "x2", "y2"), ("pointwise", "x", "y"), ("pointwise", "x2", "y2")]
    assert list(fig.data[1].y) == [0.1, 0.2, 0.25] and list(fig.data[2].x) == [1, 2]
    assert [t.showlegend for t in fig.data] == [None, False, None, False]
    assert [a.text for a in fig.layout.annotations] == ["training loss", "validation NDCG@10"]
    assert fig.layout.xaxis.title.text == fig.layout.xaxis2.title.text == "epoch"
    assert axis_problems(fig) == []
    with pytest.raises(KeyError, match="lacks columns"):
        viz.training_curves({"x": history([1.0], [0.1]).drop(columns="loss")}, "t")


def test_training_table_reads_each_models_history():
    class Fitted:
        history_ = history([0.7, 0.5, 0.6], [0.1, 0.3, 0.2])
        best_epoch_ = 2
        epoch_seconds_ = [1.0, 2.0, 3.0]

    t = viz.training_table({"m": Fitted()})
    assert t.loc["m"].to_dict() == {"epochs run": 3, "best epoch": 2, "best valid NDCG@10": 0.3,
                                    "s per epoch": 2.0}


def test_heatmaps_one_panel_per_matrix_shared_colour_axis():
    S = np.array([[1.0, -0.5], [-0.5, 1.0]])
    fig = viz.heatmaps({"cosine": S, "pearson": -S}, ["u1", "u2"], "sim", zmin=-1, zmax=1,
                       text_format=".2f")
    assert [t.type for t in fig.data] == ["heatmap", "heatmap"]
    assert [t.xaxis for t in fig.data] == ["x", "x2"]
    assert np.array_equal(np.asarray(fig.data[1].z), -S) and list(fig.data[0].x) == ["u1", "u2"]
    assert {t.coloraxis for t in fig.data} == {"coloraxis"}
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (-1, 1)
    assert fig.data[0].texttemplate == "%{z:.2f}"
    assert fig.layout.yaxis.autorange == "reversed" == fig.layout.yaxis2.autorange
    with pytest.raises(ValueError, match=r"shape \(2, 2\), expected \(3, 3\)"):
        viz.heatmaps({"S": S}, ["a", "b", "c"], "t")


def test_curves_one_trace_per_group_in_row_order_with_labels():
    df = pd.DataFrame({"backend": ["hnsw", "hnsw", "ivf", "ivf"], "p50_ms": [0.3, 0.1, 0.2, 0.4],
                       "overlap": [0.9, 0.8, 0.7, 0.95], "knob": ["ef=64", "ef=16", "np=1", "np=8"]})
    fig = viz.curves(df, "p50_ms", "overlap", color="backend", text="knob", log_x=True, title="ann")
    assert [t.name for t in fig.data] == ["hnsw", "ivf"]
    assert list(fig.data[0].x) == [0.3, 0.1] and list(fig.data[0].text) == ["ef=64", "ef=16"]
    assert fig.data[0].mode == "lines+markers+text"
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type is None
    assert fig.layout.xaxis.title.text == "p50_ms" and fig.layout.showlegend
    assert list(viz.curves(df, "p50_ms", "overlap", sort_x=True).data[0].x) == [0.1, 0.2, 0.3, 0.4]
    assert axis_problems(fig) == []
    with pytest.raises(KeyError, match="'latency'"):
        viz.curves(df, "latency", "overlap")


def test_labelled_scatter_is_markers_and_text():
    df = pd.DataFrame({"variant": ["fp32", "int8"], "saving": [1.0, 3.8], "kept": [1.0, 0.99],
                       "model": ["svd", "svd"]})
    fig = viz.labelled_scatter(df, "saving", "kept", text="variant", color="model", log_x=True)
    [trace] = fig.data
    assert trace.mode == "markers+text" and list(trace.text) == ["fp32", "int8"]
    assert fig.layout.xaxis.type == "log"


def test_twin_axes_left_and_right_series():
    df = pd.DataFrame({"capacity": [50, 200], "hit_rate": [0.3, 0.6], "cached_ms": [0.2, 0.1],
                       "uncached_ms": [0.4, 0.4]})
    fig = viz.twin_axes(df, "capacity", {"hit_rate": "hit rate"},
                        {"cached_ms": "cached", "uncached_ms": "no cache"}, left_title="hit rate",
                        right_title="ms", left_range=(0, 1), dotted=["uncached_ms"])
    assert [(t.name, t.yaxis) for t in fig.data] == [("hit rate", "y"), ("cached", "y2"), ("no cache", "y2")]
    assert fig.data[2].line.dash == "dot" and fig.data[1].mode == "lines+markers"
    assert tuple(fig.layout.yaxis.range) == (0, 1) and fig.layout.yaxis2.overlaying == "y"
    assert fig.layout.yaxis2.side == "right" and axis_problems(fig) == []


def test_grouped_bars():
    df = pd.DataFrame({"variant": ["int8", "fp16", "int8"], "p50_ms": [1.0, 2.0, 3.0],
                       "model": ["svd", "svd", "bpr"]})
    fig = viz.grouped_bars(df, "variant", "p50_ms", color="model")
    assert [t.name for t in fig.data] == ["svd", "bpr"] and fig.layout.barmode == "group"
    assert list(fig.data[0].x) == ["int8", "fp16"] and list(fig.data[1].y) == [3.0]
    assert axis_problems(fig) == []


def test_reference_line_x_and_y_and_on_log_axes():
    fig = viz.curves(pd.DataFrame({"x": [1.0, 10.0], "y": [0.5, 0.9]}), "x", "y", log_x=True)
    viz.reference_line(fig, 0.99, "99% bar")
    viz.reference_line(fig, 3.0, "exact", axis="x", log=True)
    hline, vline = fig.layout.shapes
    assert (hline.y0, hline.y1, hline.xref) == (0.99, 0.99, "x domain")
    assert (vline.x0, vline.yref) == (3.0, "y domain")
    bar, exact = fig.layout.annotations
    assert (bar.y, bar.x, bar.xref, bar.text) == (0.99, 1, "paper", "99% bar")
    assert exact.x == pytest.approx(np.log10(3.0)) and exact.yref == "paper"  # log10 on a log axis
    assert axis_problems(fig) == []
    with pytest.raises(ValueError, match="axis must be"):
        viz.reference_line(fig, 1.0, axis="z")


def test_latency_accuracy_computes_the_front_when_asked():
    df = pd.DataFrame({"model": list("abcd"), "p99_ms": [1.0, 2.0, 3.0, 0.5], "ndcg": [0.2, 0.1, 0.3, 0.05]})
    fig = viz.latency_accuracy(df.set_index(pd.Index([7, 8, 9, 10])), y="ndcg", front=True)
    want = pareto_front(df, "p99_ms", "ndcg")
    assert list(fig.data[1].text) == df[want].sort_values("p99_ms").model.tolist() == ["d", "a", "c"]
    assert list(fig.data[0].x) == [2.0]  # the dominated point


def test_cutoff_table_and_metrics_by_k_read_compare_columns():
    wide = pd.DataFrame({"model": ["Pop"], "ndcg@5": [0.1], "recall@5": [0.2], "ndcg@10": [0.15],
                         "recall@10": [0.3], "p50_ms": [0.2]})
    long = viz.cutoff_table(wide)
    assert long.to_dict("list") == {"model": ["Pop", "Pop"], "k": [5, 10], "ndcg": [0.1, 0.15],
                                    "recall": [0.2, 0.3]}
    fig = viz.metrics_by_k(wide, metrics=("recall", "ndcg"))
    assert [t.name for t in fig.data] == ["Pop recall", "Pop ndcg"] and list(fig.data[1].y) == [0.1, 0.15]
    with pytest.raises(ValueError, match="no metric@k columns"):
        viz.cutoff_table(pd.DataFrame({"model": ["a"], "p50_ms": [1.0]}))


def test_sweep_front_filters_one_dataset_and_batch():
    sweep = pd.DataFrame({"dataset": ["shop"] * 3 + ["ml"], "batch_size": [1, 1, 32, 1],
                          "label": ["fast", "slow", "batched", "other"], "ndcg@10": [0.1, 0.3, 0.5, 0.9],
                          "p99_ms": [1.0, 5.0, 0.1, 0.1]})
    fig, front = viz.sweep_front(sweep, "shop")
    assert front.label.tolist() == ["fast", "slow"]
    assert fig.layout.title.text == "shop: ndcg@10 vs p99_ms (batch 1)"
    assert sorted(fig.data[-1].text) == ["fast", "slow"]
    with pytest.raises(ValueError, match="no rows for dataset 'shop' at batch size 4"):
        viz.sweep_front(sweep, "shop", batch=4)


def test_replay_timeline_panels_and_budget():
    ev = pd.DataFrame({"event": np.arange(6), "response_ms": [1.0, 2.0, 80.0, 1.5, 3.0, 2.0],
                       "next_item": [5, -1, 7, 8, -1, 2], "next_hit": [1, 0, 0, 1, 0, 1]})
    fig = viz.replay_timeline({"event": ev}, budget_ms=50.0, window=2)
    assert [(t.name, t.yaxis) for t in fig.data] == [
        ("event: events", "y"), ("event: rolling p99", "y"), ("event: next-item hit", "y2")]
    hit = np.asarray(fig.data[2].y, dtype=float)
    assert hit[-1] == pytest.approx(3 / 4)  # hits over the 4 events that have a next item
    assert fig.layout.yaxis.type == "log" and fig.layout.shapes[0].y0 == 50.0
    assert axis_problems(fig) == []
