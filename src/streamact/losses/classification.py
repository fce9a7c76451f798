"""Metric-learning classification losses of LIGAR ("LIGAR: Lightweight General-purpose Action
Recognition", section IV, and the authors' code).

The head (`streamact.layers.metric_head.MetricHead.forward_metric`) gives cosines ``cos`` (B, K) between
L2-normalised embeddings (B, E) and class centres (K, E). `MetricLearningLoss` combines, with LIGAR's defaults:

- AM-Softmax (Wang et al., arXiv 1801.05599): cross-entropy of ``s * (cos - m * onehot(label))``, m = 0.35, with
  the scale s from a schedule (`ConstantScale`, or `PolyScale` 30 -> 5 in the released fine-tuning recipe);
- a confidence penalty: each sample's loss minus 0.085 * entropy(softmax(s * cos));
- the 'positives' filter: the mean over the samples whose (penalised) loss is > 0;
- local push (weight 1): pushes each embedding away from the most similar embedding of another class in the
  batch beyond a margin set by its own class cosine;
- class-centre push (weight 1): pushes apart pairs of class centres whose cosine exceeds 0.1.

Usage in a training step (one head; sum the losses of several heads)::

    loss_fn = MetricLearningLoss(scale=PolyScale(num_steps=40 * iters_per_epoch))
    cos, emb = model.forward_metric(model.forward_features(clips), dataset_id)
    loss, parts = loss_fn(cos, emb, labels, model.heads[dataset_id or 0].weight, step=global_step)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ScaleSchedule",
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


class ScaleSchedule(Protocol):
    """AM-Softmax scale as a function of the training step (0-based optimizer steps)."""

    final: float  # the value the schedule settles at (a natural inference scale)

    def __call__(self, step: int) -> float: ...


@dataclass(frozen=True)
class ConstantScale:
    """The same scale at every step (LIGAR's joint pre-training uses 15)."""

    value: float = 15.0

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError(f"scale must be > 0, got {self.value}")

    @property
    def final(self) -> float:
        return self.value

    def __call__(self, step: int) -> float:
        return self.value


@dataclass(frozen=True)
class PolyScale:
    """Polynomial decay from ``start`` to ``end`` over ``num_steps`` steps, then constant.

    s(step) = a * step^p + b * step + start with a = c / N^p, b = -c * p / N, c = (end - start) / (1 - p), N =
    ``num_steps``: s(0) = start, s(N) = end, and the slope is zero at N, so the scale lands smoothly. The reference
    recipe counts N as 40 epochs of iterations; pass ``num_steps = 40 * iters_per_epoch``.
    """

    start: float = 30.0
    end: float = 5.0
    num_steps: int = 1
    power: float = 1.2

    def __post_init__(self) -> None:
        if self.start <= 0 or self.end <= 0:
            raise ValueError(f"start and end must be > 0, got {self.start} and {self.end}")
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be >= 1, got {self.num_steps}")
        if self.power <= 0 or self.power == 1:
            raise ValueError(f"power must be > 0 and != 1 (the formula divides by 1 - power), got {self.power}")

    @property
    def final(self) -> float:
        return self.end

    def __call__(self, step: int) -> float:
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        if step >= self.num_steps:
            return self.end
        c = (self.end - self.start) / (1.0 - self.power)
        a = c / self.num_steps ** self.power
        b = -c * self.power / self.num_steps
        return a * step ** self.power + b * step + self.start


def _check_cos_labels(cos: torch.Tensor, labels: torch.Tensor) -> None:
    if cos.ndim != 2 or labels.shape != cos.shape[:1]:
        raise ValueError(f"expected cos (B, K) and labels (B,), got {tuple(cos.shape)} and {tuple(labels.shape)}")


def am_softmax_logits(cos: torch.Tensor, labels: torch.Tensor, *, scale: float, margin: float = 0.35) -> torch.Tensor:
    """Additive-margin logits ``scale * (cos - margin * onehot(labels))``.

    Args:
        cos: (B, K) cosines.
        labels: (B,) class indices.
        scale: s.
        margin: m, subtracted from the target class only.

    Returns:
        (B, K) logits.
    """
    _check_cos_labels(cos, labels)
    onehot = F.one_hot(labels, cos.shape[1]).to(cos.dtype)  # (B, K)
    return scale * (cos - margin * onehot)


def am_softmax_loss(cos: torch.Tensor, labels: torch.Tensor, *, scale: float, margin: float = 0.35) -> torch.Tensor:
    """Per-sample AM-Softmax loss: cross-entropy of `am_softmax_logits`, shape (B,)."""
    return F.cross_entropy(am_softmax_logits(cos, labels, scale=scale, margin=margin), labels, reduction="none")


def softmax_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) along the last dimension, shape logits.shape[:-1]."""
    log_p = F.log_softmax(logits, dim=-1)
    return -(log_p.exp() * log_p).sum(-1)


def positives_mean(losses: torch.Tensor) -> torch.Tensor:
    """The reference's 'positives' filter: mean of the entries > 0; a zero that keeps the graph if there is none."""
    positive = losses[losses > 0]
    return positive.mean() if positive.numel() else losses.sum() * 0.0


class LocalPushLoss(nn.Module):
    """Push each embedding away from its nearest other-class neighbour in the batch.

    With sim = E Eᵀ (unit embeddings) and, for sample i, the threshold τ_i = max(cos_i[label_i], margin) − margin
    ("smart margin"; plain ``margin`` otherwise), the loss of sample i is the largest sim_ij − τ_i over samples j
    of another class with sim_ij > τ_i (0 if none); the result is the mean over the batch. Thresholds are
    constants (no gradient), as in the reference.
    """

    def __init__(self, *, margin: float = 0.1, smart_margin: bool = True) -> None:
        super().__init__()
        if margin < 0:
            raise ValueError(f"margin must be >= 0, got {margin}")
        self.margin = margin
        self.smart_margin = smart_margin

    def forward(self, embeddings: torch.Tensor, cos: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """
        Args:
            embeddings: (B, E) L2-normalised embeddings.
            cos: (B, K) cosines to the class centres (used by the smart margin).
            labels: (B,) class indices.

        Returns:
            Scalar loss.
        """
        _check_cos_labels(cos, labels)
        if embeddings.ndim != 2 or embeddings.shape[0] != labels.shape[0]:
            raise ValueError(f"expected embeddings (B, E) for B={labels.shape[0]}, got {tuple(embeddings.shape)}")
        similarity = embeddings @ embeddings.t()  # (B, B)
        with torch.no_grad():
            other_class = labels[:, None] != labels[None, :]  # (B, B)
            if self.smart_margin:
                own = cos.gather(1, labels[:, None])  # (B, 1) cosine to the own class centre
                threshold = own.clamp(min=self.margin) - self.margin
            else:
                threshold = torch.full_like(similarity[:, :1], self.margin)  # (B, 1)
            mask = other_class & (similarity > threshold)
        excess = torch.where(mask, similarity - threshold, torch.zeros_like(similarity))  # (B, B)
        return excess.max(dim=1).values.mean()


def class_centre_push_loss(class_weights: torch.Tensor, *, threshold: float = 0.1) -> torch.Tensor:
    """Mean of (cos − threshold) over the pairs of distinct class centres whose cosine exceeds ``threshold``.

    Args:
        class_weights: (K, E) class centres (normalised here).
        threshold: cosine above which two centres are pushed apart.

    Returns:
        Scalar loss; a zero that keeps the graph when no pair exceeds the threshold (or K < 2).
    """
    if class_weights.ndim != 2:
        raise ValueError(f"expected class weights (K, E), got {tuple(class_weights.shape)}")
    centres = F.normalize(class_weights, dim=1)
    pairwise = centres @ centres.t()  # (K, K)
    upper = torch.ones_like(pairwise, dtype=torch.bool).triu(diagonal=1)  # each unordered pair once
    pairs = pairwise[upper]  # (K * (K - 1) / 2,)
    excess = pairs[pairs > threshold] - threshold
    return excess.mean() if excess.numel() else pairs.sum() * 0.0


class MetricLearningLoss(nn.Module):
    """LIGAR's training loss for one metric head (defaults: the released LIGAR recipe).

    loss = positives_mean(am_softmax_loss(cos, s) − conf_penalty · entropy(softmax(s · cos)))
           + local_push_weight · LocalPushLoss + centre_push_weight · class_centre_push_loss

    with s = ``scale(step)``.
    """

    def __init__(
        self,
        *,
        scale: ScaleSchedule | float = 15.0,
        margin: float = 0.35,
        conf_penalty: float = 0.085,
        filter_positives: bool = True,
        local_push_weight: float = 1.0,
        local_push_margin: float = 0.1,
        smart_margin: bool = True,
        centre_push_weight: float = 1.0,
        centre_push_threshold: float = 0.1,
    ) -> None:
        """
        Args:
            scale: AM-Softmax scale schedule, or a number for a constant scale (LIGAR: 15 for pre-training,
                ``PolyScale(30, 5, num_steps=40 epochs)`` for fine-tuning).
            margin: AM-Softmax additive cosine margin m.
            conf_penalty: weight of the entropy subtracted from each sample's loss (0: off).
            filter_positives: average only the samples with a positive loss (else all samples).
            local_push_weight: weight of `LocalPushLoss` (0: off).
            local_push_margin: its margin.
            smart_margin: its per-sample threshold from the own-class cosine.
            centre_push_weight: weight of `class_centre_push_loss` (0: off).
            centre_push_threshold: its cosine threshold.
        """
        super().__init__()
        self.scale: ScaleSchedule = ConstantScale(float(scale)) if isinstance(scale, (int, float)) else scale
        self.margin = margin
        self.conf_penalty = conf_penalty
        self.filter_positives = filter_positives
        self.local_push_weight = local_push_weight
        self.local_push = LocalPushLoss(margin=local_push_margin, smart_margin=smart_margin)
        self.centre_push_weight = centre_push_weight
        self.centre_push_threshold = centre_push_threshold

    def forward(self, cos: torch.Tensor, embeddings: torch.Tensor, labels: torch.Tensor,
                class_weights: torch.Tensor, step: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """
        Args:
            cos: (B, K) cosines from the head.
            embeddings: (B, E) L2-normalised embeddings from the head.
            labels: (B,) class indices.
            class_weights: (K, E) class centres of the head (``head.weight``).
            step: optimizer step, 0-based, for the scale schedule.

        Returns:
            The total loss and its parts: ``am_softmax``, ``local_push``, ``centre_push`` (each already weighted;
            they sum to the total) and ``scale`` (the AM-Softmax scale used; not a loss term).
        """
        if class_weights.shape[0] != cos.shape[1]:
            raise ValueError(f"{class_weights.shape[0]} class weights for cosines over {cos.shape[1]} classes")
        s = float(self.scale(step))
        per_sample = am_softmax_loss(cos, labels, scale=s, margin=self.margin)
        if self.conf_penalty:
            per_sample = per_sample - self.conf_penalty * softmax_entropy(s * cos)
        am = positives_mean(per_sample) if self.filter_positives else per_sample.mean()
        zero = am.new_zeros(())
        parts = {
            "am_softmax": am,
            "local_push": self.local_push_weight * self.local_push(embeddings, cos, labels)
            if self.local_push_weight else zero,
            "centre_push": self.centre_push_weight * class_centre_push_loss(
                class_weights, threshold=self.centre_push_threshold) if self.centre_push_weight else zero,
        }
        total = parts["am_softmax"] + parts["local_push"] + parts["centre_push"]
        parts["scale"] = torch.tensor(s)
        return total, parts
