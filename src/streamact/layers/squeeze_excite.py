"""Squeeze-and-Excitation (Hu et al., CVPR 2018) for inverted-residual blocks.

"Towards Real-Time Action Recognition on Mobile Devices Using Deep Models" (section 5.4, Table 6) adds SE
to the residual blocks of MnasNet together with TSM, "10 TSM and SE modules in total": MnasNet-B1 has exactly
10 inverted-residual blocks with a skip connection, so `insert_se` targets the same blocks as the temporal
layers. As in MnasNet / EfficientNet, SE recalibrates the expanded depthwise output (timm's ``block.se`` slot,
before the 1x1 projection), with a bottleneck of ``in_chs * rd_ratio`` channels. SE pools each frame on its own,
so it is causal and needs no streaming state.
"""
from __future__ import annotations

import torch
from torch import nn

from streamact.layers.temporal_shift import residual_blocks

__all__ = ["SqueezeExcite", "insert_se"]


class SqueezeExcite(nn.Module):
    """Channel gate: global average pool -> 1x1 reduce -> ReLU -> 1x1 expand -> sigmoid -> scale."""

    def __init__(self, channels: int, *, rd_channels: int) -> None:
        """
        Args:
            channels: C of the gated features.
            rd_channels: bottleneck width.
        """
        super().__init__()
        self.conv_reduce = nn.Conv2d(channels, rd_channels, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv2d(rd_channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate (N, C, H, W) features channel-wise."""
        s = x.mean((2, 3), keepdim=True)  # (N, C, 1, 1)
        s = self.conv_expand(self.act(self.conv_reduce(s)))  # (N, C, 1, 1)
        return x * torch.sigmoid(s)


def insert_se(backbone: nn.Module, *, rd_ratio: float = 0.25) -> list[str]:
    """Add `SqueezeExcite` to every inverted-residual block with a skip connection.

    Args:
        backbone: timm MobileNetV2 / MnasNet / EfficientNet, modified in place (before or after temporal layers).
        rd_ratio: bottleneck width relative to the block's input channels.

    Returns:
        Qualified names of the modified blocks.

    Raises:
        ValueError: if there is no such block, or a block already has SE.
    """
    names = []
    for name, block, attr in residual_blocks(backbone):
        if attr != "conv_pw":  # ResNet blocks have no SE slot; SE-ResNet is a different architecture
            continue
        if not isinstance(block.se, nn.Identity):
            raise ValueError(f"block {name!r} already has squeeze-and-excitation")
        in_chs = block.conv_pwl.out_channels  # == input channels, the block has a skip connection
        block.se = SqueezeExcite(block.conv_pwl.in_channels, rd_channels=max(1, int(in_chs * rd_ratio)))
        names.append(name)
    if not names:
        raise ValueError(f"{type(backbone).__name__} has no inverted-residual block with a skip connection")
    return names
