"""Plotly figure builders (tidy DataFrames in, figures out)."""
from .figures import latency_accuracy, latency_percentiles, metrics_by_k, popularity_long_tail
from .late_interaction import accuracy_by_segments, flops_vs_latency, latency_by_model_size, update_latency

__all__ = ["accuracy_by_segments", "flops_vs_latency", "latency_accuracy", "latency_by_model_size",
           "latency_percentiles", "metrics_by_k", "popularity_long_tail", "update_latency"]
