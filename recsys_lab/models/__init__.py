"""Models on the Recommender contract (models/base.py)."""
from .base import Popularity, Random, Recommender, topk

__all__ = ["Recommender", "Popularity", "Random", "topk"]
