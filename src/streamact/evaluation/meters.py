"""Accumulators over batches (update / compute / reset) built on the pure functions."""
from __future__ import annotations

import numpy as np

from streamact.evaluation import functional as F

__all__ = ["ClassificationMeter"]


class ClassificationMeter:
    """Collects per-sample scores and labels and reports the standard recognition metrics."""

    def __init__(self, num_classes: int, class_names: list[str] | None = None) -> None:
        self.num_classes = num_classes
        self.class_names = class_names or [str(i) for i in range(num_classes)]
        self.reset()

    def reset(self) -> None:
        self._scores: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []

    def update(self, scores, labels) -> None:
        self._scores.append(np.asarray(scores, dtype=np.float32).reshape(-1, self.num_classes))
        self._labels.append(np.asarray(labels, dtype=np.int64).reshape(-1))

    @property
    def scores(self) -> np.ndarray:
        return np.concatenate(self._scores) if self._scores else np.zeros((0, self.num_classes), np.float32)

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate(self._labels) if self._labels else np.zeros((0,), np.int64)

    def compute(self) -> dict:
        scores, labels = self.scores, self.labels
        cm = F.confusion_matrix(scores.argmax(1), labels, self.num_classes)
        per_class = F.per_class_accuracy(cm)
        return {
            "num_samples": int(len(labels)),
            "top1": F.topk_accuracy(scores, labels, 1),
            "top5": F.topk_accuracy(scores, labels, 5),
            "mean_class_accuracy": F.mean_class_accuracy(cm),
            "rank_map": F.rank_mean_average_precision(scores, labels),
            "per_class": {name: (None if np.isnan(a) else float(a)) for name, a in zip(self.class_names, per_class)},
            "confusion_matrix": cm.tolist(),
        }
