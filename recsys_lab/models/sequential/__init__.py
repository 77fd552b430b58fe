"""Sequential (next-item) transformers of one block design, from cross- to late to no interaction.

    encoder.py          EncoderConfig, Block, SequenceEncoder (pre-LN, nanoGPT-style)
    history.py          SequentialRecommender: histories, seen set, update/extend, warm start
    late_interaction.py the late-interaction operator, CachedVectorModel, MultiSegmentLateInteraction
    two_tower.py        TwoTower (CachedVectorModel with S = m = 1)
    cross_encoder.py    CrossEncoderRanker (one pass per candidate)
    cached_cross_encoder.py  CachedCrossEncoder (M-FALCON: the same scores, history encoded once)
    sasrec.py           SASRec (causal self-attention, Kang & McAuley 2018)
    two_stage.py        TwoStage: first-stage top-C re-ranked
    cost_model.py       FLOPs per request (cost_model, layer_flops)
    data.py             next-item split and token windows; item_text.py: title initialisation
"""
from .cached_cross_encoder import CachedCrossEncoder
from .cost_model import cost_model, layer_flops
from .cross_encoder import CrossEncoderRanker
from .data import next_item_split, sampled_next_item_split, with_valid
from .encoder import Block, EncoderConfig, SequenceEncoder
from .history import SequentialRecommender
from .late_interaction import CachedVectorModel, MultiSegmentLateInteraction, late_interaction
from .sasrec import SASRec
from .two_stage import TwoStage
from .two_tower import TwoTower

__all__ = ["Block", "EncoderConfig", "SequenceEncoder", "SequentialRecommender", "CachedVectorModel",
           "CrossEncoderRanker", "CachedCrossEncoder", "TwoTower", "MultiSegmentLateInteraction", "SASRec", "TwoStage",
           "late_interaction", "cost_model", "layer_flops", "next_item_split",
           "sampled_next_item_split", "with_valid"]
