"""Plotly figure builders (tidy DataFrames in, figures out)."""
from .figures import latency_accuracy, latency_percentiles, metrics_by_k, popularity_long_tail

__all__ = ["latency_accuracy", "latency_percentiles", "metrics_by_k", "popularity_long_tail"]
