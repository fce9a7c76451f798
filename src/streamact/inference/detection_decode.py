"""Tubelets from AMMA's head outputs, in numpy only (shared by the torch, ONNX Runtime and OpenVINO runtimes).

    heatmap (C, h, w) ── keep 3x3 local maxima ── top N over classes and cells ──► (class, cell y, cell x, score)
    movement (2K, h, w) at the peak ──► centre of every clip (the last clip's is the peak itself)
    size (2K, h, w) at each clip's rounded, clamped centre ──► (w, h) of every clip
    ──► K boxes on the grid ──► source pixels (scale by source size / grid size), clipped to the frame

The peak's row is ``index // w`` (floor): rounding the float quotient, as the authors' released decoder does,
moves every peak in the right half of the map one row down.
"""
from __future__ import annotations

import numpy as np

from streamact.inference.tubes import Tubelet

__all__ = ["local_maxima", "decode_tubelets", "key_frames"]


def key_frames(end_frame: int, num_clips: int, clip_len: int) -> np.ndarray:
    """Key frames of the tubelet ending at 1-based `end_frame`: end - (K-1)t, ..., end - t, end, clamped to >= 1
    (a stream's first clips repeat frame 1)."""
    return np.maximum(end_frame - clip_len * np.arange(num_clips - 1, -1, -1), 1)


def local_maxima(heatmap: np.ndarray) -> np.ndarray:
    """`heatmap` (C, h, w) with every value that is not the maximum of its 3x3 neighbourhood set to 0."""
    padded = np.pad(heatmap, ((0, 0), (1, 1), (1, 1)), constant_values=-np.inf)
    h, w = heatmap.shape[1:]
    pooled = np.max([padded[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    return np.where(pooled == heatmap, heatmap, 0.0)


def decode_tubelets(heatmap: np.ndarray, movement: np.ndarray, size: np.ndarray, *, end_frame: int, clip_len: int,
                    source_size: tuple[int, int], top_k: int = 100, min_score: float = 0.0) -> list[Tubelet]:
    """Decode one sample's head outputs into at most `top_k` tubelets, best first.

    Args:
        heatmap: (C, h, w) centre probabilities.
        movement: (2K, h, w) per-clip (dx, dy) from the key-frame centre, grid cells.
        size: (2K, h, w) per-clip (w, h), grid cells.
        end_frame: 1-based frame of the last clip's last frame (the tubelet's key frame).
        clip_len: t, frames per clip (spacing of the key frames).
        source_size: (height, width) of the source frames, for scaling the boxes back.
        top_k: N, candidates kept over all classes (100 in the paper); the top N over all classes equals the
            top N of the per-class top N lists.
        min_score: drop candidates below this score.

    Returns:
        `Tubelet`s (label, score, key_frames (K,) 1-based, boxes (K, 4) in source pixels), best first.
    """
    c, h, w = heatmap.shape
    k = movement.shape[0] // 2
    peaks = local_maxima(heatmap).reshape(-1)
    n = min(top_k, peaks.size)
    order = np.argpartition(-peaks, n - 1)[:n]
    order = order[np.argsort(-peaks[order], kind="stable")]
    src_h, src_w = source_size
    scale = np.array([src_w / w, src_h / h, src_w / w, src_h / h])
    frames = key_frames(end_frame, k, clip_len)
    out = []
    for idx in order:
        score = float(peaks[idx])
        if score <= min_score:
            break
        label, cell = divmod(int(idx), h * w)
        y, x = divmod(cell, w)  # floor division: the row of the peak
        mov = movement[:, y, x].reshape(k, 2).astype(np.float64)  # (K, 2)
        mov[-1] = 0.0  # the key frame's centre is the peak itself
        centres = np.array([x, y], np.float64) + mov  # (K, 2)
        cells = np.clip(np.floor(centres + 0.5), 0, [w - 1, h - 1]).astype(np.int64)  # where each clip's size is read
        wh = size.reshape(k, 2, h, w)[np.arange(k), :, cells[:, 1], cells[:, 0]].astype(np.float64)  # (K, 2)
        wh = np.maximum(wh, 0.0)  # a regressed size below zero (an untrained or blank input) is a point, not x2 < x1
        boxes = np.concatenate([centres - wh / 2, centres + wh / 2], axis=1) * scale  # (K, 4) source pixels
        boxes = np.clip(boxes, 0, [src_w - 1, src_h - 1, src_w - 1, src_h - 1])
        out.append(Tubelet(label, score, frames.copy(), boxes.astype(np.float32)))
    return out
