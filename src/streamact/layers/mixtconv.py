"""Mixed Temporal Convolution (Shan et al., "MixTConv: Mixed Temporal Convolutional Kernels for Efficient Action
Recognition", arXiv 2001.06769).

Channels are split into groups (1:1:1:1 by default) and each group gets a depthwise temporal convolution of its
own kernel size (1, 3, 5, 7), capturing short- and long-range motion at a cost of ``C * sum(k) / 4`` multiply-adds
per pixel. Placed before the first 1x1 conv of each residual block ("MST block head", the paper's Table 3).

Shift-like initialisation (the authors' official code), with ``fold = group_channels // fold_div``:
one fold sums the future taps, one fold sums the past taps, the rest is the identity (k=1 is the identity).
We order the folds like `temporal_shift` (future fold first, then past), so TSM is exactly the fixed-weight k=3
special case and the past fold is the same channels as TSM's (the official code puts past first; the order is a
relabelling of channels and does not change what the layer can learn).

``causal=True`` pads on the left only, so output frame t sees frames t-k+1 .. t; streamed frame by frame it needs
a cache of the last k-1 frames of each group. Its shift-like init mirrors the uni-directional TSM: the past fold
sums the same past taps as the bi-directional kernel, the future fold and the rest are the identity.

Implemented as ``Conv2d`` with a (k, 1) kernel over features reshaped to (N, C, T, H*W): export-safe and counted
exactly by the flop counter.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from streamact.layers.temporal_shift import StreamableTemporalLayer, insert_temporal_layer

__all__ = ["MixTConv", "shift_init_", "insert_mixtconv"]


@torch.no_grad()
def shift_init_(weight: torch.Tensor, *, fold_div: int = 8, causal: bool = False) -> torch.Tensor:
    """Initialise a depthwise temporal kernel (C, 1, k, 1) so that it acts like a temporal shift.

    Args:
        weight: the kernel, modified in place.
        fold_div: ``C // fold_div`` channels take the future sum and as many the past sum.
        causal: the kernel is applied with left padding only (its last tap is frame t).

    Returns:
        ``weight``.
    """
    c, k = weight.shape[0], weight.shape[2]
    fold = c // fold_div
    reach = (k - 1) // 2  # how many frames the bi-directional kernel sees on each side
    centre = k - 1 if causal else reach  # tap that reads frame t
    weight.zero_()
    weight[:, 0, centre, 0] = 1.0
    if reach == 0:
        return weight
    if not causal:
        weight[:fold, 0, centre] = 0.0
        weight[:fold, 0, centre + 1 :] = 1.0  # future fold: sum of t+1 .. t+reach
    weight[fold : 2 * fold, 0, centre] = 0.0
    weight[fold : 2 * fold, 0, centre - reach : centre] = 1.0  # past fold: sum of t-reach .. t-1
    return weight


def _split_channels(channels: int, groups: int) -> list[int]:
    """Equal split; the remainder goes to the first (k=1) group, as in MixConv."""
    splits = [channels // groups] * groups
    splits[0] += channels - sum(splits)
    return splits


class MixTConv(StreamableTemporalLayer):
    """Depthwise temporal convolutions with mixed kernel sizes over channel groups.

    Input and output are frame features (N*T, C, H, W), frames of one clip contiguous. The causal form streams
    one frame at a time with a cache of the last k-1 frames of each group with k > 1.
    """

    def __init__(
        self,
        channels: int,
        num_segments: int,
        *,
        kernel_sizes: Sequence[int] = (1, 3, 5, 7),
        fold_div: int = 8,
        causal: bool = False,
    ) -> None:
        """
        Args:
            channels: C.
            num_segments: T, frames per clip.
            kernel_sizes: one temporal kernel size per channel group (groups are equal, 1:1:...).
            fold_div: shift-like init moves ``group_channels // fold_div`` channels each way.
            causal: left padding only, so frame t never sees the future (streamable).

        Raises:
            ValueError: for an even kernel size in the non-causal form (no centred padding exists).
        """
        super().__init__()
        if not causal and any(k % 2 == 0 for k in kernel_sizes):
            raise ValueError(f"non-causal MixTConv needs odd kernel sizes, got {tuple(kernel_sizes)}")
        self.num_segments = num_segments
        self.kernel_sizes = tuple(kernel_sizes)
        self.causal = causal
        self.splits = _split_channels(channels, len(self.kernel_sizes))
        self.convs = nn.ModuleList(
            nn.Conv2d(c, c, (k, 1), groups=c, bias=False) for c, k in zip(self.splits, self.kernel_sizes)
        )
        # (before, after) zero frames per group, applied with F.pad so the causal and centred forms share code.
        self.pads = [(k - 1, 0) if causal else ((k - 1) // 2, (k - 1) // 2) for k in self.kernel_sizes]
        for conv in self.convs:
            shift_init_(conv.weight, fold_div=fold_div, causal=causal)

    def forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Mix (N*T, C, H, W) features along time."""
        nt, c, h, w = x.shape
        x = x.reshape(-1, self.num_segments, c, h * w).transpose(1, 2)  # (N, C, T, H*W)
        out = []
        for conv, xg, (before, after) in zip(self.convs, x.split(self.splits, dim=1), self.pads):
            if before or after:
                xg = F.pad(xg, (0, 0, before, after))  # (N, Cg, T + k - 1, H*W)
            out.append(conv(xg))  # (N, Cg, T, H*W)
        y = torch.cat(out, dim=1)  # (N, C, T, H*W)
        return y.transpose(1, 2).reshape(nt, c, h, w)  # (N*T, C, H, W)

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame (B, C, H, W) of the causal form; cache = last k-1 frames (B, Cg, k-1, H*W) per group k > 1.

        Raises:
            RuntimeError: for the centred form, which needs future frames (see `make_causal`).
        """
        if not self.causal:
            raise RuntimeError("a centred MixTConv needs future frames; make the model causal first")
        b, c, h, w = x.shape
        cache = list(cache)
        out, new_cache = [], []
        for conv, xg, k in zip(self.convs, x.reshape(b, c, 1, h * w).split(self.splits, dim=1), self.kernel_sizes):
            if k > 1:
                past = cache.pop(0) if cache else xg.new_zeros(b, xg.shape[1], k - 1, h * w)
                xg = torch.cat([past, xg], dim=2)  # (B, Cg, k, H*W): frames t-k+1 .. t
                new_cache.append(xg[:, :, 1:])
            out.append(conv(xg))  # (B, Cg, 1, H*W)
        return torch.cat(out, dim=1).reshape(b, c, h, w), new_cache

    @property
    def is_causal(self) -> bool:
        return self.causal

    @property
    def past_frames(self) -> int:
        """The longest kernel reaches k - 1 frames back when causal, (k - 1) / 2 when centred."""
        k = max(self.kernel_sizes)
        return k - 1 if self.causal else (k - 1) // 2

    @torch.no_grad()
    def make_causal(self) -> None:
        """Turn a centred (bi-directionally trained) layer into the causal one by dropping the future taps.

        Tap ``reach + j`` of the centred kernel reads frame t+j; in the causal kernel tap ``k-1+j`` does, so the
        past and present taps move right by ``reach`` and the future taps are discarded.
        """
        if self.causal:
            return
        for conv, k in zip(self.convs, self.kernel_sizes):
            reach = (k - 1) // 2
            if reach:
                w = conv.weight  # (Cg, 1, k, 1)
                w[:, :, reach:] = w[:, :, : reach + 1].clone()
                w[:, :, :reach] = 0
        self.pads = [(k - 1, 0) for k in self.kernel_sizes]
        self.causal = True

    def extra_repr(self) -> str:
        return (
            f"splits={self.splits}, kernel_sizes={self.kernel_sizes}, num_segments={self.num_segments}, "
            f"causal={self.causal}"
        )


def insert_mixtconv(
    backbone: nn.Module,
    num_segments: int,
    *,
    kernel_sizes: Sequence[int] = (1, 3, 5, 7),
    fold_div: int = 8,
    causal: bool = False,
) -> list[str]:
    """Insert a `MixTConv` before the first 1x1 conv of every residual block (see `residual_blocks`).

    Args:
        backbone: timm backbone, modified in place.
        num_segments: T, frames per clip.
        kernel_sizes: temporal kernel size per channel group.
        fold_div: shift-like init fold divisor.
        causal: left-padded (streamable) kernels.

    Returns:
        Qualified names of the modified blocks.
    """
    return insert_temporal_layer(
        backbone,
        lambda channels: MixTConv(
            channels, num_segments, kernel_sizes=kernel_sizes, fold_div=fold_div, causal=causal
        ),
    )
