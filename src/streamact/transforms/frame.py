"""One frame to model input with numpy and Pillow only: the preprocessing of every streaming runtime.

    RGB uint8 (H, W, 3) ─► resize shorter side to S * 256 // 224 (antialiased bilinear) ─► centre crop S x S
        ─► float [0, 1] ─► (x - mean) / std ─► (1, 3, S, S) float32

The steps are those of the test pipeline of `streamact.transforms.presets.build_transform` (the clips a model is
trained and evaluated on). That pipeline resizes with torchvision; this one with Pillow, whose antialiased
bilinear filter torchvision's uint8 kernel was ported from: the two differ by at most one grey level on about 1 %
of the pixels (tests/transforms/test_frame.py), and no PyTorch is needed, so a deployment without it prepares
frames exactly like one with it. All runtimes (torch included) take their frames from here, so streaming results
do not depend on the runtime.
"""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image

__all__ = ["preprocess_frame"]


@lru_cache(maxsize=8)
def _normalizer(mean: tuple[float, ...], std: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Scale and offset so that ``x * scale + offset == (x / 255 - mean) / std`` per channel."""
    mean_a, std_a = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    return (1.0 / (255.0 * std_a)).astype(np.float32), (-mean_a / std_a).astype(np.float32)


def preprocess_frame(frame: np.ndarray, pretrained_cfg) -> np.ndarray:
    """One RGB uint8 frame (H, W, 3) -> model input (1, 3, S, S) float32 for the model's ``pretrained_cfg``.

    Args:
        frame: RGB uint8 (H, W, 3).
        pretrained_cfg: the model's `PretrainedCfg` (input size, mean, std).

    Returns:
        The normalised frame, channels first, with a batch axis.

    Raises:
        ValueError: the frame is not (H, W, 3) uint8.
    """
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
    _, _, size = pretrained_cfg.input_size
    short = size * 256 // 224  # the test pipeline's scale: 224 -> 256, 112 -> 128
    height, width = frame.shape[:2]
    if height <= width:
        new_h, new_w = short, max(1, round(width * short / height))
    else:
        new_h, new_w = max(1, round(height * short / width)), short
    if (new_h, new_w) != (height, width):
        frame = np.asarray(Image.fromarray(frame).resize((new_w, new_h), Image.BILINEAR))
    top, left = (new_h - size) // 2, (new_w - size) // 2  # an odd margin's extra pixel goes bottom / right
    crop = frame[top:top + size, left:left + size]  # (S, S, 3)
    scale, offset = _normalizer(tuple(pretrained_cfg.mean), tuple(pretrained_cfg.std))
    x = crop.astype(np.float32) * scale + offset  # (S, S, 3)
    return np.ascontiguousarray(x.transpose(2, 0, 1))[None]  # (1, 3, S, S)
