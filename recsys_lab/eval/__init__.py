"""Evaluation: full-ranking metrics, the evaluate() loop and the latency harness."""
from .evaluate import evaluate
from .latency import environment, measure_latency, time_calls
from .metrics import METRICS, coverage, hit_matrix, ranking_metrics

__all__ = ["evaluate", "environment", "measure_latency", "time_calls", "METRICS", "coverage",
           "hit_matrix", "ranking_metrics"]
