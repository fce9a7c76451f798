"""Standard train / test pipelines (TSN / TSM protocol), built from a model's input size and normalisation.

Streaming runtimes prepare single frames with `streamact.transforms.frame.preprocess_frame` (same steps, no torch).
"""
from __future__ import annotations

from collections.abc import Sequence

from streamact.transforms.video import (
    CenterCrop,
    Compose,
    MultiScaleCrop,
    Normalize,
    RandomHorizontalFlip,
    ResizeShort,
    ToTensor,
)

__all__ = ["build_transform", "default_scale_size", "MULTI_SCALES"]

# GroupMultiScaleCrop scales of TSN / TSM training.
MULTI_SCALES = (1.0, 0.875, 0.75, 0.66)


def default_scale_size(input_size: int) -> int:
    """The shorter side frames are resized to before an `input_size` crop (224 -> 256, 112 -> 128)."""
    return input_size * 256 // 224


def build_transform(
    *,
    train: bool,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    scale_size: int | None = None,
    flip: bool = False,
    pixel_augment: Sequence = (),
) -> Compose:
    """The clip pipeline uint8 (T, H, W, 3) -> normalised float (3, T, input_size, input_size).

    Both pipelines first resize the shorter side to `scale_size`, so the crops see the same scale whatever the
    source resolution (TSN / TSM resize their frames to a 256 shorter side offline for 224 input).

    - Training: resize -> multi-scale crop (scales 1, .875, .75, .66 of the shorter side, 13 fixed positions)
      resized to input_size -> optional horizontal flip -> tensor -> normalise.
    - Testing (the real-time protocol: one clip, one centre crop): resize -> centre crop -> tensor -> normalise.

    Args:
        train: training (random) or test (deterministic) pipeline.
        input_size: side of the square model input.
        mean: per-channel mean in [0, 1] units.
        std: per-channel standard deviation in [0, 1] units.
        scale_size: shorter side before cropping; default input_size * 256 // 224 (224 -> 256, 112 -> 128).
        flip: random horizontal flip in training; keep it off for datasets with left/right classes.
        pixel_augment: training steps on the cropped 0-255 frames before normalisation (CrossNorm, background
            MixUp; see `streamact.transforms.regularizers`).

    Returns:
        A `Compose` called as `transform(clip, rng)`.

    Raises:
        ValueError: scale_size is smaller than input_size.
    """
    scale_size = scale_size if scale_size is not None else default_scale_size(input_size)
    if scale_size < input_size:
        raise ValueError(f"scale_size {scale_size} is smaller than input_size {input_size}")
    if train:
        steps = [ResizeShort(scale_size), MultiScaleCrop(input_size, MULTI_SCALES)]
        if flip:
            steps.append(RandomHorizontalFlip())
        steps += list(pixel_augment)
    else:
        steps = [ResizeShort(scale_size), CenterCrop(input_size)]
    return Compose([*steps, ToTensor(), Normalize(mean, std)])
