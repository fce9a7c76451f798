"""Classifier heads."""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["ClassifierHead"]


class ClassifierHead(nn.Module):
    """Dropout followed by a linear classifier on the last dimension.

    The linear layer is initialised N(0, 0.001) with zero bias, as TSN / TSM do for a new head on a pretrained
    backbone: near-zero initial logits keep early gradients from disturbing the backbone.
    """

    def __init__(self, in_features: int, num_classes: int, *, dropout: float = 0.0, init_std: float = 0.001) -> None:
        """
        Args:
            in_features: D.
            num_classes: K; 0 makes the head return the (dropped-out) features.
            dropout: drop probability before the classifier.
            init_std: std of the normal weight initialisation.
        """
        super().__init__()
        self.in_features = in_features
        self.init_std = init_std
        self.drop = nn.Dropout(dropout)
        self.fc: nn.Module = nn.Identity()
        self.reset(num_classes)

    @property
    def num_classes(self) -> int:
        return self.fc.out_features if isinstance(self.fc, nn.Linear) else 0

    def reset(self, num_classes: int) -> None:
        """Replace the classifier with a freshly initialised one for ``num_classes`` classes (0: none)."""
        if num_classes > 0:
            fc = nn.Linear(self.in_features, num_classes)
            nn.init.normal_(fc.weight, 0.0, self.init_std)
            nn.init.zeros_(fc.bias)
            self.fc = fc
        else:
            self.fc = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., K)."""
        return self.fc(self.drop(x))
