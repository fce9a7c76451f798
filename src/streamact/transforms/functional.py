"""Pure clip operations shared by training, evaluation and every inference runtime.

Geometric operations take a uint8 clip in channels-last layout (..., H, W, C), as decoders produce it: a clip
(T, H, W, C), several clips (N * T, H, W, C) or a single frame (H, W, C). They accept numpy arrays or torch
tensors and return torch tensors, applying one set of parameters to every frame. `to_tensor` then turns
(T, H, W, C) uint8 into the (C, T, H, W) float layout models take, and `normalize` standardises channels.

Random parameters are drawn by the `*_params` functions from an explicit numpy Generator, so a sample is
reproducible from its seed whatever process decodes it.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF

__all__ = [
    "resize",
    "resize_short",
    "crop",
    "center_crop",
    "hflip",
    "resized_crop",
    "multi_scale_crop_params",
    "random_resized_crop_params",
    "to_tensor",
    "normalize",
]

def _as_tensor(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(clip, torch.Tensor):
        return clip
    # Negative strides (numpy flips) cannot be shared with torch; everything else is wrapped without a copy.
    if any(s < 0 for s in clip.strides):
        clip = np.ascontiguousarray(clip)
    return torch.from_numpy(clip)


def resize(clip: np.ndarray | torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize every frame to `size` = (height, width) with antialiased bilinear interpolation.

    Args:
        clip: uint8 frames (..., H, W, C).
        size: output (height, width).

    Returns:
        uint8 tensor (..., height, width, C).
    """
    clip = _as_tensor(clip)
    if tuple(clip.shape[-3:-1]) == tuple(size):
        return clip
    lead = clip.shape[:-3]
    frames = clip.reshape(-1, *clip.shape[-3:]).permute(0, 3, 1, 2)  # (N, C, H, W), channels-last memory
    out = TF.resize(frames, list(size), antialias=True)  # (N, C, height, width)
    return out.permute(0, 2, 3, 1).reshape(*lead, *size, clip.shape[-1])


def resize_short(clip: np.ndarray | torch.Tensor, size: int) -> torch.Tensor:
    """Resize so the shorter side is `size`, keeping the aspect ratio (longer side rounded).

    Args:
        clip: uint8 frames (..., H, W, C).
        size: target length of the shorter side.

    Returns:
        uint8 tensor (..., H', W', C) with min(H', W') == size.
    """
    clip = _as_tensor(clip)
    height, width = clip.shape[-3:-1]
    if height <= width:
        new = (size, max(1, round(width * size / height)))
    else:
        new = (max(1, round(height * size / width)), size)
    return resize(clip, new)


def crop(clip: np.ndarray | torch.Tensor, top: int, left: int, height: int, width: int) -> torch.Tensor:
    """Crop the box (top, left, height, width) from every frame (a view, no copy).

    Raises:
        ValueError: the box is not inside the frame.
    """
    clip = _as_tensor(clip)
    frame_h, frame_w = clip.shape[-3:-1]
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > frame_h or left + width > frame_w:
        raise ValueError(f"crop box (top={top}, left={left}, {height}x{width}) outside a {frame_h}x{frame_w} frame")
    return clip[..., top : top + height, left : left + width, :]


def center_crop(clip: np.ndarray | torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """Crop the central `size` (an int for a square, or (height, width)) from every frame.

    With an odd margin the extra pixel goes to the bottom / right, as in torchvision.

    Raises:
        ValueError: the frame is smaller than `size`.
    """
    clip = _as_tensor(clip)
    height, width = (size, size) if isinstance(size, int) else size
    frame_h, frame_w = clip.shape[-3:-1]
    return crop(clip, (frame_h - height) // 2, (frame_w - width) // 2, height, width)


def hflip(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Mirror every frame left to right."""
    return _as_tensor(clip).flip(-2)


def resized_crop(
    clip: np.ndarray | torch.Tensor, top: int, left: int, height: int, width: int, size: tuple[int, int]
) -> torch.Tensor:
    """Crop the box (top, left, height, width) and resize it to `size` = (height, width)."""
    return resize(crop(clip, top, left, height, width), size)


def multi_scale_crop_params(
    height: int,
    width: int,
    size: int,
    *,
    rng: np.random.Generator,
    scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
    max_distort: int = 1,
    fix_crop: bool = True,
    more_fix_crop: bool = True,
) -> tuple[int, int, int, int]:
    """TSN's multi-scale crop box (GroupMultiScaleCrop) for a frame of height x width.

    Crop sides are scales of the shorter frame side; height and width scales are drawn independently among
    pairs at most `max_distort` steps apart in `scales` (mild aspect jitter). Sides within 3 px of `size` snap
    to it, avoiding a near-identity resize. With `fix_crop` the box sits at one of 5 positions (corners,
    centre) or, with `more_fix_crop`, 13 (adding edge midpoints and quarter points); otherwise anywhere.

    Args:
        height: frame height.
        width: frame width.
        size: the output side the crop is resized to afterwards.
        rng: random generator.
        scales: crop sides relative to min(height, width).
        max_distort: largest index difference between the height and width scales.
        fix_crop: restrict positions to the fixed grid.
        more_fix_crop: use the 13-position grid instead of 5.

    Returns:
        (top, left, crop_height, crop_width).
    """
    base = min(height, width)
    sides = [int(base * s) for s in scales]
    sides = [size if abs(s - size) < 3 else max(1, min(s, base)) for s in sides]
    pairs = [(h, w) for i, h in enumerate(sides) for j, w in enumerate(sides) if abs(i - j) <= max_distort]
    crop_h, crop_w = pairs[int(rng.integers(len(pairs)))]
    crop_h, crop_w = min(crop_h, height), min(crop_w, width)
    if not fix_crop:
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        return top, left, crop_h, crop_w
    h_step, w_step = (height - crop_h) // 4, (width - crop_w) // 4
    grid = [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]  # (row, column) in quarter steps
    if more_fix_crop:
        grid += [(2, 0), (2, 4), (4, 2), (0, 2), (1, 1), (1, 3), (3, 1), (3, 3)]
    row, col = grid[int(rng.integers(len(grid)))]
    return row * h_step, col * w_step, crop_h, crop_w


def random_resized_crop_params(
    height: int,
    width: int,
    *,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.08, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> tuple[int, int, int, int]:
    """Inception-style random crop box: random area fraction in `scale`, log-uniform aspect ratio in `ratio`.

    Follows torchvision's RandomResizedCrop: ten attempts, then a centre crop clamped to `ratio`.

    Returns:
        (top, left, crop_height, crop_width).
    """
    area = height * width
    log_ratio = np.log(ratio)
    for _ in range(10):
        target_area = area * rng.uniform(*scale)
        aspect = float(np.exp(rng.uniform(*log_ratio)))
        crop_w = round(np.sqrt(target_area * aspect))
        crop_h = round(np.sqrt(target_area / aspect))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            top = int(rng.integers(0, height - crop_h + 1))
            left = int(rng.integers(0, width - crop_w + 1))
            return top, left, crop_h, crop_w
    in_ratio = width / height
    if in_ratio < ratio[0]:
        crop_w, crop_h = width, round(width / ratio[0])
    elif in_ratio > ratio[1]:
        crop_h, crop_w = height, round(height * ratio[1])
    else:
        crop_h, crop_w = height, width
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def to_tensor(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 channels-last (T, H, W, C) -> float32 channels-first (C, T, H, W) in [0, 1].

    Any number of leading dimensions works: the channel axis moves to the front ((H, W, C) -> (C, H, W)).
    """
    clip = _as_tensor(clip)
    order = (clip.ndim - 1, *range(clip.ndim - 1))
    return clip.permute(order).contiguous().float().div_(255.0)  # (C, T, H, W)


def normalize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Standardise channels of a channels-first float tensor (C, ...): (x - mean) / std.

    `mean` and `std` are in the units of `x` ([0, 1] after `to_tensor`, e.g. ImageNet's (0.485, 0.456, 0.406)).
    """
    shape = (-1,) + (1,) * (x.ndim - 1)
    mean_t = torch.as_tensor(mean, dtype=x.dtype).reshape(shape)
    std_t = torch.as_tensor(std, dtype=x.dtype).reshape(shape)
    return (x - mean_t) / std_t
