"""Evaluation: full-ranking metrics, the evaluate() loop and the latency harness."""
from .evaluate import evaluate
from .latency import environment, limit_threads, measure_latency, time_calls
from .metrics import METRICS, coverage, hit_matrix, ranking_metrics
from .pareto import pareto_front
from .sweep import expand_grid, run_spec, run_sweep

__all__ = ["evaluate", "environment", "measure_latency", "time_calls", "limit_threads", "METRICS", "coverage",
           "hit_matrix", "ranking_metrics", "pareto_front", "run_sweep", "run_spec", "expand_grid"]
