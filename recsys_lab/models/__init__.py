"""Models on the Recommender contract (models/base.py)."""
from .base import Popularity, Random, Recommender, topk
from .capabilities import EmbeddingModel, MultiVectorModel, TorchModel
from .attention import AttentionPooling
from .bpr import BPRMF
from .item2vec import Item2Vec
from .lightgcn import NGCF, LightGCN
from .neumf import NeuMF
from .ease import EASE
from .knn import ItemKNN, UserKNN
from .svd import PureSVD
from .torch_base import EmbeddingRecommender, TorchRecommender, resolve_device
from .sequential import CrossEncoderRanker, MultiSegmentLateInteraction, SASRec, TwoStage, TwoTower

__all__ = ["Recommender", "EmbeddingModel", "MultiVectorModel", "TorchModel", "Popularity", "Random", "topk", "TorchRecommender", "EmbeddingRecommender",
           "resolve_device", "BPRMF", "LightGCN", "NGCF", "NeuMF", "AttentionPooling", "Item2Vec", "UserKNN", "ItemKNN", "EASE", "PureSVD",
           "SASRec", "TwoTower", "MultiSegmentLateInteraction", "CrossEncoderRanker", "TwoStage"]
