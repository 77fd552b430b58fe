"""Data: Interactions, the load_dataset registry, splits and filters, the synthetic shop."""
from .files import DataWarning
from .interactions import Interactions
from .loaders import find_movielens, list_datasets, load_dataset, register_dataset
from .splits import (compact, filter_rating, k_core, leave_one_out, random_split, sample_users,
                     split, temporal_split)
from .synthetic import planted_interactions, synthetic_shop
from .validation import DUPLICATE_POLICIES

__all__ = ["Interactions", "load_dataset", "list_datasets", "register_dataset", "find_movielens",
           "split", "random_split", "sample_users", "leave_one_out", "temporal_split", "filter_rating", "k_core",
           "compact", "synthetic_shop", "planted_interactions", "DataWarning", "DUPLICATE_POLICIES"]
