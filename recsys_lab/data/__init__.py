"""Data: Interactions, the load_dataset registry, splits and filters, the synthetic shop."""
from .interactions import Interactions

__all__ = ["Interactions"]
