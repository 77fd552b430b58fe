"""Plotly figure builders (tidy DataFrames in, figures out)."""
from .figures import latency_accuracy, latency_percentiles, metrics_by_k, popularity_long_tail
from .late_interaction import latency_by_model_size

__all__ = ["latency_accuracy", "latency_by_model_size", "latency_percentiles", "metrics_by_k",
           "popularity_long_tail"]
