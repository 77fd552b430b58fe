"""Plotly figure builders (tidy DataFrames in, figures out)."""
from .checks import axis_problems
from .figures import (budget_line, latency_accuracy, latency_percentiles, metrics_by_k,
                      popularity_long_tail)
from .scaling import scaling_curves

__all__ = ["axis_problems", "budget_line", "latency_accuracy", "latency_percentiles",
           "metrics_by_k", "popularity_long_tail", "scaling_curves"]
