"""Building blocks: temporal layers (shift, mixed temporal conv), squeeze-excitation, consensus, heads."""
from streamact.layers.consensus import AverageConsensus, average_consensus
from streamact.layers.heads import ClassifierHead
from streamact.layers.mixtconv import MixTConv, insert_mixtconv, shift_init_
from streamact.layers.squeeze_excite import SqueezeExcite, insert_se
from streamact.layers.temporal_shift import (
    TemporalShift,
    insert_temporal_layer,
    insert_temporal_shift,
    residual_blocks,
    temporal_shift,
)

__all__ = [
    "AverageConsensus",
    "average_consensus",
    "ClassifierHead",
    "MixTConv",
    "insert_mixtconv",
    "shift_init_",
    "SqueezeExcite",
    "insert_se",
    "TemporalShift",
    "insert_temporal_layer",
    "insert_temporal_shift",
    "residual_blocks",
    "temporal_shift",
]
