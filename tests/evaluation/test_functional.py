import numpy as np
import pytest

from streamact.evaluation import functional as F
from streamact.evaluation.meters import ClassificationMeter


def test_topk_accuracy_hand_computed():
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.3, 0.2], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1]])
    labels = np.array([1, 1, 0, 2])
    assert F.topk_accuracy(scores, labels, 1) == pytest.approx(0.25)  # only sample 0
    assert F.topk_accuracy(scores, labels, 2) == pytest.approx(0.5)  # + sample 1
    assert F.topk_accuracy(scores, labels, 5) == pytest.approx(1.0)  # k capped at num_classes


def test_confusion_and_mean_class_accuracy():
    preds = np.array([0, 0, 1, 1, 1, 2])
    labels = np.array([0, 1, 1, 1, 1, 0])
    cm = F.confusion_matrix(preds, labels, 4)
    assert cm.tolist() == [[1, 0, 1, 0], [1, 3, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    acc = F.per_class_accuracy(cm)
    assert acc[0] == pytest.approx(0.5) and acc[1] == pytest.approx(0.75) and np.isnan(acc[2])
    # Mean over classes that have samples only: (0.5 + 0.75) / 2, not the sample accuracy 4/6.
    assert F.mean_class_accuracy(cm) == pytest.approx(0.625)


def test_average_precision_hand_computed():
    # Ranking: P N P N -> precisions at hits 1/1 and 2/3.
    ap = F.average_precision(np.array([0.9, 0.8, 0.7, 0.6]), np.array([1, 0, 1, 0]))
    assert ap == pytest.approx((1 + 2 / 3) / 2)
    assert np.isnan(F.average_precision(np.array([0.1]), np.array([0])))


def test_meter_accumulates_batches():
    meter = ClassificationMeter(3, ["a", "b", "c"])
    meter.update(np.eye(3)[[0, 1]], [0, 2])
    meter.update(np.eye(3)[[2]], [2])
    m = meter.compute()
    assert m["num_samples"] == 3
    assert m["top1"] == pytest.approx(2 / 3)
    assert m["per_class"] == {"a": 1.0, "b": None, "c": 0.5}
    meter.reset()
    assert meter.compute()["num_samples"] == 0


def test_rank_mean_average_precision_hand_computed():
    scores = np.array([[0.9, 0.1, 0.0], [0.6, 0.4, 0.0], [0.3, 0.7, 0.0], [0.2, 0.5, 0.3]])
    labels = np.array([0, 1, 0, 1])
    # Class 0 ranking by column 0: samples 0 (P), 1 (N), 2 (P), 3 (N) -> AP (1 + 2/3) / 2.
    # Class 1 ranking by column 1: samples 2 (N), 3 (P), 1 (P), 0 (N) -> AP (1/2 + 2/3) / 2.
    # Class 2 has no samples and is left out of the mean.
    expected = ((1 + 2 / 3) / 2 + (1 / 2 + 2 / 3) / 2) / 2
    assert F.rank_mean_average_precision(scores, labels) == pytest.approx(expected)
    assert F.rank_mean_average_precision(np.eye(3), np.arange(3)) == pytest.approx(1.0)
    assert np.isnan(F.rank_mean_average_precision(np.zeros((0, 3)), np.zeros(0, dtype=int)))
