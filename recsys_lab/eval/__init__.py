"""Evaluation: full-ranking metrics, evaluate(), the latency harness, compare() and the sweep.

Layering: eval takes any Recommender by its contract and imports no accelerator. The sweep
(``recsys_lab.eval.sweep``) is loaded on first use of its names, so importing eval (as the
accelerators do for the latency harness) never loads it.
"""
from importlib import import_module

from .compare import compare
from .evaluate import evaluate
from .latency import (batch_latency, environment, latency_summary, limit_threads, measure_latency,
                      time_calls)
from .metrics import METRICS, coverage, hit_matrix, ranking_metrics
from .pareto import pareto_front

_SWEEP_NAMES = ("run_sweep", "run_spec", "expand_grid")

__all__ = ["evaluate", "compare", "environment", "measure_latency", "batch_latency", "latency_summary",
           "time_calls", "limit_threads", "METRICS", "coverage", "hit_matrix", "ranking_metrics",
           "pareto_front", *_SWEEP_NAMES]


def __getattr__(name):
    if name in _SWEEP_NAMES:
        return getattr(import_module(".sweep", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
