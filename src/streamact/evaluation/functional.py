"""Pure metric functions on numpy arrays. `scores` are (N, num_classes), `labels` are (N,) integer arrays."""
from __future__ import annotations

import numpy as np

__all__ = ["topk_accuracy", "confusion_matrix", "per_class_accuracy", "mean_class_accuracy",
           "average_precision", "rank_mean_average_precision"]


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Fraction of samples whose label is among the k highest scores (k is capped at num_classes)."""
    scores, labels = np.asarray(scores), np.asarray(labels)
    if len(labels) == 0:
        return float("nan")
    k = min(k, scores.shape[1])
    topk = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(topk == labels[:, None], axis=1)))


def confusion_matrix(preds: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts (num_classes, num_classes): row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class from a confusion matrix; NaN for classes with no samples."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / np.maximum(support, 1), np.nan)


def mean_class_accuracy(cm: np.ndarray) -> float:
    """Mean of per-class recall over classes that have samples (the TSN paper's reported number)."""
    acc = per_class_accuracy(cm)
    return float(np.nanmean(acc)) if np.any(~np.isnan(acc)) else float("nan")


def average_precision(scores: np.ndarray, positives: np.ndarray) -> float:
    """Non-interpolated AP of one ranking: mean precision at each positive's rank. NaN with no positives."""
    scores, positives = np.asarray(scores, dtype=np.float64), np.asarray(positives, dtype=bool)
    if not positives.any():
        return float("nan")
    order = np.argsort(-scores, kind="stable")
    hits = positives[order]
    precision_at_hit = np.cumsum(hits)[hits] / (np.flatnonzero(hits) + 1)
    return float(precision_at_hit.mean())


def rank_mean_average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Ranking mAP over classes (MMAction2's `mean_average_precision`, LIGAR's "mAP").

    For each class, the samples are ranked by that class's score and the ranking's AP computed with the class's
    samples as positives (`average_precision`; tied scores keep the sample order); the result is the mean over the
    classes that have samples. NaN without samples.
    """
    scores, labels = np.asarray(scores), np.asarray(labels)
    aps = [average_precision(scores[:, c], labels == c) for c in np.unique(labels)]
    return float(np.mean(aps)) if aps else float("nan")
