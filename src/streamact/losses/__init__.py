"""Training losses; the metric-learning losses of `classification` (LIGAR) are re-exported here."""
from streamact.losses.classification import (
    ConstantScale,
    LocalPushLoss,
    MetricLearningLoss,
    PolyScale,
    am_softmax_logits,
    am_softmax_loss,
    class_centre_push_loss,
    positives_mean,
    softmax_entropy,
)

__all__ = [
    "ConstantScale",
    "PolyScale",
    "am_softmax_logits",
    "am_softmax_loss",
    "softmax_entropy",
    "positives_mean",
    "LocalPushLoss",
    "class_centre_push_loss",
    "MetricLearningLoss",
]
