"""Latency at large-model scale (recsys_lab.experiments.late_interaction_scale): the bookkeeping
of the grid, the n-of-C scaling of the naive cross-encoder, the M-FALCON identity at every point,
the cost model beside each row and the figure; never the timings themselves."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from recsys_lab import viz
from recsys_lab.experiments import late_interaction_scale as scale
from recsys_lab.models.sequential import cost_model


@pytest.fixture(scope="module")
def result():
    g = replace(scale.ScaleGrid.named("quick"), widths=(16,), depths=(1, 2), histories=(10,),
                candidates=(10, 40), naive_budget_s=0.0, min_naive_candidates=4)
    return g, scale.run(g)


def test_grid_rows_cost_model_and_heads(result):
    g, res = result
    t = res["table"]
    assert len(t) == len(g.widths) * len(g.depths) * len(g.histories) * len(g.candidates) * 4
    assert set(t.arch) == set(scale.ARCHS)
    assert (t.n_heads == 16 // g.head_dim).all() and (t.variant == "eager").all()
    for r in t.itertuples():
        assert r.flops == cost_model(scale.ARCHS[r.arch], r.L, r.C, r.d, r.n_layers, r.S, r.m)["total"]
    late = t[t.arch == "late interaction"]
    assert (late.S == 10 // g.seg_len).all() and (late.m == g.vectors_per_segment).all()
    assert (t.repeats >= g.min_repeats).all() and (t.p50_ms > 0).all()


def test_naive_rows_say_when_they_were_scaled(result):
    """With no time budget the naive cross-encoder is timed on n = 4 candidates, once per point,
    and both C rows scale that one measurement by C / n: their scoring times are in ratio 40 / 10
    exactly, and each row is labelled with n of C."""
    _, res = result
    t = res["table"]
    naive = t[t.arch == "cross-encoder"]
    assert (naive.measured_candidates == 4).all()
    assert set(naive.label) == {"measured on 4 of 10 candidates", "measured on 4 of 40 candidates"}
    for _, g in naive.groupby("n_layers"):
        s = g.set_index("C")["score_p50_ms"]
        assert s[40] / s[10] == pytest.approx(4.0, rel=1e-9)
    others = t[t.arch != "cross-encoder"]
    assert (others.label == "measured").all() and (others.measured_candidates == others.C).all()


def test_cached_equals_naive_at_every_point(result):
    _, res = result
    cached = res["table"][res["table"].arch == "cached cross-encoder"]
    assert (cached.max_abs_diff_vs_naive < 1e-5).all()


def test_headline_and_linearity_tables(result):
    g, res = result
    h = res["headline"]
    assert list(h.L) == list(g.histories) and (h.C == min(g.candidates)).all()
    assert (h.n_layers == max(g.depths)).all()
    row = res["table"].query("arch == 'late interaction' and n_layers == 2 and C == 10").iloc[0]
    assert h["late interaction_ms"].iloc[0] == row.p50_ms
    assert h.cross_over_late.iloc[0] == pytest.approx(h["cross-encoder_ms"].iloc[0] / row.p50_ms)
    lin = res["linearity"]
    assert list(lin.candidates) == list(g.linearity_candidates)
    np.testing.assert_allclose(lin.scaled_to_C_ms, lin.ms_per_candidate * g.linearity_point[3])
    assert lin.ratio_to_measured_C.iloc[-1] == pytest.approx(1.0)


def test_figure_has_a_line_per_architecture_and_panel(result):
    _, res = result
    fig = viz.latency_by_model_size(res["table"])
    assert len(fig.data) == 4 * 2                                  # 4 archs x (L=10, C in 10, 40)
    assert {tr.name for tr in fig.data} == set(scale.ARCHS)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    opened = [tr for tr in fig.data if tr.name == "cross-encoder"][0].marker.symbol
    assert set(opened) == {"circle-open"}                          # scaled rows drawn open


def test_grid_names():
    assert scale.ScaleGrid.named("bench").widths == (64, 256, 768)
    assert scale.ScaleGrid.named("bench").depths == (2, 6, 12)
    assert 768 // scale.ScaleGrid.named("bench").head_dim == 12       # BERT-base: 12 heads
    with pytest.raises(ValueError, match="grid"):
        scale.ScaleGrid.named("huge")
