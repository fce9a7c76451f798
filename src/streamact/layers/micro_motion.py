"""Accumulated micro-motion: a cheap motion image computed on the fly from the frames of one clip.

From "Accumulated Micro-Motion Representations for Lightweight Online Action Detection in Real-Time" (Liu,
Yang, Ginhac), Eq. (1)-(3): every frame of a clip of t frames is max-pooled by 2 and embedded by one shared
5x5 convolution with 8 filters; the per-pixel L2 distance (over the 8 channels) between each earlier frame's
embedding and the last frame's gives t - 1 "micro-motion" maps, which are stacked on channels and upsampled
back to the frame size. With the paper's t = 4 the result has 3 channels, like an RGB frame, so it can enter a
copy of an ImageNet stem unchanged.

Variants (the paper's Table 1 ablation): ``convdiff`` (the method, MM_ConvDiff), ``diff`` (MM_Diff: distances
between the pooled RGB frames themselves, no learned embedding); and ours, not the paper's, ``signed``: the frames'
RGB differences, earlier frame minus last, at full size, 3 (t - 1) maps. An L2 distance is the same whichever way a
movement runs, which the signed difference is not; and a limb a few pixels wide does not survive the pooling to half
size, nor its direction the averaging over colours (the classification probe in bench/ measures both).

The released code computes the distance with ``nn.PairwiseDistance`` on (B, 8, H*W) tensors, which reduced over
the channel dimension only in the PyTorch version it was written for; current PyTorch reduces over the last
dimension (pixels) and silently returns one number per channel. The distance here is written out explicitly
over the channel dimension.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["MicroMotion", "micro_motion_distance", "MOTION_MODES"]

MOTION_MODES = ("convdiff", "diff", "signed")


def micro_motion_distance(feats: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Per-pixel L2 distance between every frame and the last one, over channels (Eq. 2-3).

    Args:
        feats: (B, T, C, H, W) per-frame features of one clip.
        eps: added to the difference before the norm (as ``nn.PairwiseDistance``), keeping the gradient finite
            where two embeddings coincide.

    Returns:
        (B, T - 1, H, W): map i is ||f_last - f_i + eps||_2 over the C channels.
    """
    diff = feats[:, -1:] - feats[:, :-1] + eps  # (B, T-1, C, H, W)
    return diff.square().sum(2).sqrt()  # (B, T-1, H, W): reduce over channels, never over pixels


class MicroMotion(nn.Module):
    """Clip (B, 3, T, H, W) -> accumulated micro-motion (B, T - 1, H, W), or (B, 3 (T - 1), H, W) for ``signed``.

    Data flow::

        clip (B, 3, T, H, W) ── fold T into the batch ──► (B*T, 3, H, W)
          │ MaxPool 3x3 / 2                                      (H/2, W/2): motion is sparse, half size suffices
          │ Conv 5x5, 3 -> 8, with bias ("convdiff" only)        shallow embedding: edges, textures
          ▼
        (B, T, 8, H/2, W/2) ── L2 distance to the last frame over channels ──► (B, T-1, H/2, W/2)
          │ bilinear upsampling
          ▼
        (B, T-1, H, W)

        "signed": clip ── earlier frame - last frame, per colour, no pooling ──► (B, 3 (T-1), H, W)

    Args:
        mode: ``convdiff`` (learned 5x5 embedding, the method), ``diff`` (pooled RGB distances) or ``signed``
            (full-size RGB differences with their sign).
        embed_dim: filters of the shallow embedding (8 in the paper).

    Attributes:
        colour_maps: the maps come as RGB triples, one per earlier frame (``signed``).
    """

    def __init__(self, mode: str = "convdiff", *, embed_dim: int = 8) -> None:
        super().__init__()
        if mode not in MOTION_MODES:
            raise ValueError(f"unknown micro-motion mode {mode!r} (choose {', '.join(MOTION_MODES)})")
        self.mode = mode
        self.colour_maps = mode == "signed"
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.embed = nn.Conv2d(3, embed_dim, 5, stride=1, padding=2, bias=True) if mode == "convdiff" else None
        if self.embed is not None:
            nn.init.kaiming_normal_(self.embed.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(self.embed.bias)

    def out_channels(self, clip_len: int) -> int:
        """Maps for clips of `clip_len` frames."""
        return (3 if self.colour_maps else 1) * (clip_len - 1)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        b, c, t, h, w = clip.shape
        if self.colour_maps:
            return (clip[:, :, :-1] - clip[:, :, -1:]).transpose(1, 2).reshape(b, (t - 1) * c, h, w)
        x = self.pool(clip.transpose(1, 2).reshape(b * t, c, h, w))  # (B*T, 3, H/2, W/2)
        if self.embed is not None:
            x = self.embed(x)  # (B*T, 8, H/2, W/2)
        x = micro_motion_distance(x.reshape(b, t, *x.shape[1:]))  # (B, T-1, H/2, W/2)
        return F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False)  # (B, T-1, H, W)
