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
    rows = np.maximum(np.maximum(padded[:, :, :w], padded[:, :, 1:w + 1]), padded[:, :, 2:])  # max is separable
    pooled = np.maximum(np.maximum(rows[:, :h], rows[:, 1:h + 1]), rows[:, 2:])
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
    scores = peaks[order]
    keep = scores > min_score
    order, scores = order[keep], scores[keep]
    labels, cells = np.divmod(order, h * w)
    ys, xs = np.divmod(cells, w)  # floor division: the row of each peak
    mov = movement[:, ys, xs].T.reshape(-1, k, 2).astype(np.float64)  # (N, K, 2)
    mov[:, -1] = 0.0  # the key frame's centre is the peak itself
    centres = np.stack([xs, ys], axis=1)[:, None].astype(np.float64) + mov  # (N, K, 2)
    cells = np.clip(np.floor(centres + 0.5), 0, [w - 1, h - 1]).astype(np.int64)  # where each clip's size is read
    clips = np.arange(k)[None, :, None]
    wh = size.reshape(k, 2, h, w)[clips, np.arange(2)[None, None], cells[..., 1:], cells[..., :1]]  # (N, K, 2)
    wh = np.maximum(wh.astype(np.float64), 0.0)  # a regressed size below zero (an untrained or blank input) is a point
    boxes = np.concatenate([centres - wh / 2, centres + wh / 2], axis=2) * scale  # (N, K, 4) source pixels
    boxes = np.clip(boxes, 0, [src_w - 1, src_h - 1, src_w - 1, src_h - 1]).astype(np.float32)
    return [Tubelet(int(label), float(score), frames.copy(), box)
            for label, score, box in zip(labels, scores, boxes)]
