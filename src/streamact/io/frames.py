"""Frame normalisation: every reader hands out RGB uint8 frames of shape (H, W, 3), whatever the source stored."""
from __future__ import annotations

import numpy as np

__all__ = ["to_rgb"]


def to_rgb(frame: np.ndarray) -> np.ndarray:
    """Convert one frame to RGB uint8 of shape (H, W, 3).

    Accepted layouts: grayscale (H, W) or (H, W, 1), grayscale + alpha (H, W, 2), RGB (H, W, 3) and
    RGBA (H, W, 4). Alpha is dropped rather than composited: video frames are opaque, and an alpha plane in a
    frame folder is almost always a constant 255 written by the exporting tool.

    Accepted dtypes: uint8 (kept), bool (0 / 255), other integer types read as 16-bit samples (16-bit PNGs
    arrive as uint16 or int32; scaled by 255 / 65535), and floats read as [0, 1] intensities (clipped).

    Args:
        frame: the frame to convert.

    Returns:
        The frame as a C-contiguous RGB uint8 array. An input that already is one is returned unchanged.

    Raises:
        ValueError: the array is not a 2-D or 3-D image with 1 to 4 channels.
    """
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or not 1 <= frame.shape[2] <= 4:
        raise ValueError(f"expected a frame of shape (H, W), (H, W, C) with C in 1..4, got {frame.shape}")
    frame = _to_uint8(frame)
    channels = frame.shape[2]
    if channels in (1, 2):
        frame = np.repeat(frame[:, :, :1], 3, axis=2)
    elif channels == 4:
        frame = frame[:, :, :3]
    return np.ascontiguousarray(frame)


def _to_uint8(frame: np.ndarray) -> np.ndarray:
    if frame.dtype == np.uint8:
        return frame
    if frame.dtype == np.bool_:
        return frame.astype(np.uint8) * 255
    if np.issubdtype(frame.dtype, np.integer):
        # 65535 / 255 = 257 exactly, so full-scale 16-bit white maps to 255 and the rounding is symmetric.
        scaled = (np.clip(frame.astype(np.int64), 0, 65535) + 128) // 257
        return scaled.astype(np.uint8)
    if np.issubdtype(frame.dtype, np.floating):
        return np.round(np.clip(np.nan_to_num(frame), 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"unsupported frame dtype {frame.dtype}")
