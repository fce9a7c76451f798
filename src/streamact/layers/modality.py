"""Input modalities computed inside the model: RGB, RGB difference, stacked RGB + RGB difference.

RGB difference (TSN, Wang et al. ECCV 2016; VTN, Kozlov et al. arXiv 1905.08711 section 4.4: "we subtracted
normalized adjacent frames") is a cheap motion representation. Computing it inside the model, from the normalised
frames it already receives, keeps the data pipeline, the preprocessing of every runtime and the exporters unchanged:
a model with ``modality="rgbdiff"`` takes the same ``(B, 3, T, H, W)`` clips and the same frames as an RGB model.

Convention: ``diff_t = x_t - x_{t-1}`` and the first frame of a clip (or of a stream) has a zero difference, so a
clip of T frames keeps T time steps. (The original VTN code drops the first frame instead, giving T - 1 steps; keeping
T lets the stacked modality pair every frame with its difference.) Streamed frame by frame, the previous frame is the
layer's state, so a stream started from zero state reproduces the offline clip exactly.

    rgb       x                  (B, 3, T, H, W)
    rgbdiff   diff(x)            (B, 3, T, H, W)
    stacked   cat(x, diff(x))    (B, 6, T, H, W)   encoder built with in_chans=6, see `widen_input_conv`
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["MODALITIES", "rgb_difference", "apply_modality", "Modality", "widen_input_conv"]

MODALITIES = ("rgb", "rgbdiff", "stacked")


def _check(modality: str) -> None:
    if modality not in MODALITIES:
        raise ValueError(f"modality must be one of {', '.join(MODALITIES)}, got {modality!r}")


def rgb_difference(x: torch.Tensor, dim: int = 2) -> torch.Tensor:
    """Difference of adjacent frames along ``dim``; the first frame's difference is zero.

    Args:
        x: frames, e.g. clips (B, C, T, H, W) with time on ``dim``.
        dim: time axis.

    Returns:
        Tensor shaped like ``x``: ``out[t] = x[t] - x[t-1]``, ``out[0] = 0``.
    """
    first = torch.zeros_like(x.narrow(dim, 0, 1))  # (..., 1, ...) no predecessor
    return torch.cat([first, x.narrow(dim, 1, x.shape[dim] - 1) - x.narrow(dim, 0, x.shape[dim] - 1)], dim=dim)


def apply_modality(x: torch.Tensor, modality: str) -> torch.Tensor:
    """Offline modality of clips (B, C, T, H, W): ``x``, its RGB difference, or both stacked (B, 2C, T, ...)."""
    _check(modality)
    if modality == "rgb":
        return x
    diff = rgb_difference(x, dim=2)
    return diff if modality == "rgbdiff" else torch.cat([x, diff], dim=1)


class Modality(nn.Module):
    """Module form of `apply_modality` with a streaming `step` (no parameters).

    Attributes:
        modality: ``"rgb"``, ``"rgbdiff"`` or ``"stacked"``.
        channel_factor: output channels per input channel (2 for ``"stacked"``, else 1).
        needs_previous_frame: whether `step` reads the previous frame (everything but ``"rgb"``).
    """

    def __init__(self, modality: str = "rgb") -> None:
        """
        Args:
            modality: one of `MODALITIES`.

        Raises:
            ValueError: for an unknown modality.
        """
        super().__init__()
        _check(modality)
        self.modality = modality

    @property
    def channel_factor(self) -> int:
        return 2 if self.modality == "stacked" else 1

    @property
    def needs_previous_frame(self) -> bool:
        return self.modality != "rgb"

    def forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Clips (B, C, T, H, W) -> (B, C * channel_factor, T, H, W)."""
        return apply_modality(x, self.modality)

    forward = forward_clip

    def step(self, frame: torch.Tensor, previous: torch.Tensor, has_previous: torch.Tensor,
             ) -> tuple[torch.Tensor, torch.Tensor]:
        """One frame of the stream.

        Args:
            frame: (B, C, H, W) current frames.
            previous: (B, C, H, W) frames of the previous step (ignored where ``has_previous`` is 0).
            has_previous: (B, 1) 1.0 where ``previous`` is a real frame, 0.0 at the start of a stream (zero state);
                a tensor rather than a flag so the exported step graph decides per stream, without control flow.

        Returns:
            (B, C * channel_factor, H, W) input of the encoder, and the new ``previous`` (= ``frame``).
        """
        if self.modality == "rgb":
            return frame, frame
        diff = (frame - previous) * has_previous[:, :, None, None]  # (B, C, H, W), zero on a stream's first frame
        return (diff if self.modality == "rgbdiff" else torch.cat([frame, diff], dim=1)), frame

    def extra_repr(self) -> str:
        return f"modality={self.modality!r}"


def widen_input_conv(backbone: nn.Module, in_chans: int) -> None:
    """Give a timm backbone's first conv ``in_chans`` = k * 3 input channels by repeating its RGB kernel, in place.

    Used for the stacked modality (RGB + RGB difference): the RGB channels keep their (ImageNet) kernel, so on a
    static scene (zero difference) the stem computes exactly what the pretrained network computes and its BatchNorm
    statistics stay valid; the difference channels start as an unscaled copy, so moving edges excite the same edge
    and colour filters, with a strength proportional to the motion. (timm's own ``in_chans`` adaptation instead
    rescales all channels by 3 / in_chans, which halves the pretrained response on static frames.)

    Args:
        backbone: timm model whose ``pretrained_cfg["first_conv"]`` names a 3-channel conv.
        in_chans: a multiple of 3.

    Raises:
        ValueError: if ``in_chans`` is not a multiple of 3 or the first conv does not take 3 channels.
    """
    if in_chans % 3:
        raise ValueError(f"in_chans must be a multiple of 3, got {in_chans}")
    name = backbone.pretrained_cfg["first_conv"]
    conv = backbone.get_submodule(name)
    if conv.in_channels != 3 or conv.groups != 1:
        raise ValueError(f"{name} of {type(backbone).__name__} takes {conv.in_channels} channels, expected 3")
    with torch.no_grad():
        weight = conv.weight.repeat(1, in_chans // 3, 1, 1)  # (O, in_chans, kh, kw)
    conv.weight = nn.Parameter(weight)
    conv.in_channels = in_chans
