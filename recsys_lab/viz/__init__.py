"""Plotly figure builders (tidy DataFrames in, figures out) and the interactive panel helper.

- figures: popularity long tail, metrics by K, latency percentiles, latency vs accuracy,
  reference and budget lines; cutoff_table reshapes compare()'s ``metric@k`` columns
- curves: lines, labelled scatters, two y axes, grouped bars (any frame)
- training: training curves and the early-stopping table of torch models
- heatmaps: matrices side by side; fronts: a sweep's Pareto front; timelines: stream replays
- panels: interactive panels from a figure function and its controls (static branch included)
- scaling: fit time and memory against catalog size (log-log, with exponents)
- late_interaction: accuracy by segments, FLOPs vs latency, latency by model size, update latency
- checks: does each axis show its data (nbval runs it on every figure)
"""
from .checks import axis_problems
from .curves import curves, grouped_bars, labelled_scatter, twin_axes
from .figures import (budget_line, cutoff_table, latency_accuracy, latency_percentiles, metrics_by_k,
                      popularity_long_tail, reference_line)
from .fronts import sweep_front
from .heatmaps import heatmaps
from .late_interaction import (accuracy_by_segments, flops_vs_latency, latency_by_model_size,
                               update_latency)
from .panels import Control, Panel, dropdown, log_slider, panel, slider, text, toggle
from .scaling import scaling_curves
from .timelines import replay_timeline
from .training import training_curves, training_table

__all__ = ["accuracy_by_segments", "axis_problems", "budget_line", "cutoff_table", "curves",
           "flops_vs_latency", "grouped_bars", "heatmaps", "labelled_scatter", "latency_accuracy",
           "latency_by_model_size", "latency_percentiles", "metrics_by_k", "popularity_long_tail",
           "reference_line", "replay_timeline", "scaling_curves", "sweep_front", "training_curves",
           "training_table", "twin_axes", "update_latency", "Control", "Panel", "dropdown",
           "log_slider", "panel", "slider", "text", "toggle"]
