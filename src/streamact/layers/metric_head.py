"""Metric-learning head of LIGAR ("LIGAR: Lightweight General-purpose Action Recognition",
section III.iii, and the authors' code).

    pooled features (B, D) ── 1x1x1 conv D->E (no bias) + BN ── L2-normalise ──► embeddings (B, E)
        ── cosine with L2-normalised class centres (K, E), clamped to [-1, 1] ──► cos (B, K)

Training uses the cosines directly (AM-Softmax and the push losses of `streamact.losses.classification`).
Inference needs logits whose softmax is a sensible probability, so `MetricHead.forward` returns
``inference_scale * cos``: with the default 5.0, the final AM-Softmax scale of LIGAR's released fine-tuning
schedule (30 -> 5), the probabilities are those of the softmax the model was last trained under (without the
margin). The arg-max does not depend on the scale.

On pooled (B, D) features the 1x1x1 convolution is a bias-free linear layer and BatchNorm3d on (B, E, 1, 1, 1)
is BatchNorm1d on (B, E); they are written that way.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["cosine_similarity_matrix", "CosineClassifier", "MetricHead"]

# Final scale of LIGAR's released fine-tuning schedule (`PolyScale(30 -> 5)`); see the module docstring.
DEFAULT_INFERENCE_SCALE = 5.0


def cosine_similarity_matrix(embeddings: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Cosines between L2-normalised embeddings and class centres, clamped to [-1, 1].

    Args:
        embeddings: (B, E), normalised here (already unit vectors pass through unchanged).
        centres: (K, E) class centres, normalised here.

    Returns:
        (B, K) cosines.
    """
    return (F.normalize(embeddings, dim=1) @ F.normalize(centres, dim=1).t()).clamp(-1.0, 1.0)


class CosineClassifier(nn.Module):
    """Class centres compared to embeddings by cosine (the reference's ``AngleMultipleLinear``, one centre each).

    The centres are stored as ``weight`` (K, E), one row per class (the transpose of the reference's E x K
    matrix), initialised from a standard normal and normalised to unit rows.
    """

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        """
        Args:
            embed_dim: E.
            num_classes: K >= 1.
        """
        super().__init__()
        if embed_dim < 1 or num_classes < 1:
            raise ValueError(f"embed_dim and num_classes must be >= 1, got {embed_dim} and {num_classes}")
        self.weight = nn.Parameter(torch.empty(num_classes, embed_dim))
        self.reset_parameters()

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.copy_(F.normalize(torch.randn_like(self.weight), dim=1))

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        """(B, E) -> (B, K) cosines in [-1, 1]."""
        return cosine_similarity_matrix(embeddings, self.weight)


class MetricHead(nn.Module):
    """Embedding layer + cosine classifier; ``forward`` gives scaled cosines (logits) for inference and export.

    Attributes:
        embed: bias-free linear D->E (LIGAR's 1x1x1 conv on the pooled features).
        bn: BatchNorm of the embedding.
        classifier: the class centres.
        inference_scale: factor turning cosines into the logits `forward` returns.
    """

    def __init__(self, in_features: int, num_classes: int, *, embed_dim: int = 256,
                 inference_scale: float = DEFAULT_INFERENCE_SCALE) -> None:
        """
        Args:
            in_features: D, the pooled feature size.
            num_classes: K.
            embed_dim: E (256 in LIGAR).
            inference_scale: logits = inference_scale * cos in `forward`.
        """
        super().__init__()
        if inference_scale <= 0:
            raise ValueError(f"inference_scale must be > 0, got {inference_scale}")
        self.embed = nn.Linear(in_features, embed_dim, bias=False)
        self.bn = nn.BatchNorm1d(embed_dim)
        self.classifier = CosineClassifier(embed_dim, num_classes)
        self.inference_scale = float(inference_scale)
        # LIGAR's conv init N(0, sqrt(2 / n)), n = k_t * k_h * out_channels = E for a 1x1x1 conv.
        nn.init.normal_(self.embed.weight, 0.0, math.sqrt(2.0 / embed_dim))

    @property
    def num_classes(self) -> int:
        return self.classifier.num_classes

    @property
    def weight(self) -> torch.Tensor:
        """Class centres (K, E), unnormalised (the class-centre push loss normalises them)."""
        return self.classifier.weight

    def forward_metric(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cosines and embeddings for the metric-learning losses.

        Args:
            features: pooled features (B, D).

        Returns:
            cos (B, K) in [-1, 1] and L2-normalised embeddings (B, E).
        """
        embeddings = F.normalize(self.bn(self.embed(features)), dim=1)
        return self.classifier(embeddings), embeddings

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits ``inference_scale * cos`` (B, K) for pooled features (B, D)."""
        return self.inference_scale * self.forward_metric(features)[0]
