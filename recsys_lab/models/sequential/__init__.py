"""Sequential (next-item) transformers: cross-encoder, two-tower, multi-segment late interaction."""
from .data import next_item_split
from .models import (CrossEncoderRanker, MultiSegmentLateInteraction, TwoTower, cost_model,
                     late_interaction)
from .transformer import Block, SequenceEncoder
from .two_stage import TwoStage

__all__ = ["Block", "SequenceEncoder", "CrossEncoderRanker", "TwoTower",
           "MultiSegmentLateInteraction", "TwoStage", "late_interaction", "cost_model", "next_item_split"]
