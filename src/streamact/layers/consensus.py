"""Segmental consensus (TSN): aggregate per-frame predictions of a clip into one."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["average_consensus", "AverageConsensus"]


def average_consensus(x: torch.Tensor) -> torch.Tensor:
    """Mean over time of (B, T, K) per-frame scores -> (B, K); TSN averages logits before the softmax."""
    return x.mean(dim=1)


class AverageConsensus(nn.Module):
    """Module form of `average_consensus`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, K) -> (B, K)."""
        return average_consensus(x)
