"""Full-ranking top-K metrics: the kernel lives in :mod:`recsys_lab.metrics` (below models, so the
training loops validate with it too); eval re-exports it here."""
from ..metrics import METRICS, coverage, hit_matrix, ranking_metrics  # noqa: F401

__all__ = ["METRICS", "coverage", "hit_matrix", "ranking_metrics"]
