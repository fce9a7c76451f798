"""Box-aware augmentation for tubelet detection (the ACT recipe as AMMA trains with it).

Every op takes the frames of one sample, (N, H, W, 3) uint8 RGB, and boxes (M, K, 4) float x1, y1, x2, y2 in pixels
(M action tubes over K key frames), and applies the SAME random draw to every frame, so motion between frames is
left intact. Order (`augment_tubelet`): photometric distortion, expansion (zoom out), a tubelet-aware SSD crop,
horizontal flip.
"""
from __future__ import annotations

import numpy as np

__all__ = ["photometric_distort", "expand", "tubelet_crop", "hflip", "resize", "resize_frame", "augment_tubelet", "CROP_SAMPLERS"]

# (min scale, min Jaccard overlap with a tube) of AMMA's crop samplers; the whole frame is always a candidate too.
CROP_SAMPLERS = ((0.6, 0.1), (0.6, 0.3), (0.5, 0.5), (0.3, 0.7), (0.3, 0.9))
# ACT's expansion fill, the dataset's mean colour (its BGR [104, 117, 123] as RGB).
FILL_RGB = (123.0, 117.0, 104.0)


def photometric_distort(frames: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Brightness (+-32), contrast and saturation (x[0.5, 1.5]) and hue (+-18 degrees), each with probability 0.5."""
    x = frames.astype(np.float32)
    if rng.random() < 0.5:
        x += rng.uniform(-32, 32)
    if rng.random() < 0.5:
        x *= rng.uniform(0.5, 1.5)
    gray = x @ np.array([0.299, 0.587, 0.114], np.float32)  # (N, H, W) luma
    if rng.random() < 0.5:
        x = gray[..., None] + (x - gray[..., None]) * rng.uniform(0.5, 1.5)
    if rng.random() < 0.5:
        # A hue shift is a rotation of the chroma plane (YIQ), which needs no per-pixel HSV round trip.
        theta = np.deg2rad(rng.uniform(-18, 18))
        to_yiq = np.array([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], np.float32)
        c, s = np.cos(theta), np.sin(theta)
        rot = np.array([[1, 0, 0], [0, c, -s], [0, s, c]], np.float32)
        x = x @ (np.linalg.inv(to_yiq) @ rot @ to_yiq).T.astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def expand(frames: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *, max_ratio: float = 2.0,
           p: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Zoom out: with probability `p`, place the frames at a random spot of a canvas up to `max_ratio` times larger,
    filled with the mean colour."""
    if rng.random() >= p or max_ratio <= 1:
        return frames, boxes
    n, h, w, _ = frames.shape
    ratio = rng.uniform(1, max_ratio)
    big_h, big_w = int(h * ratio), int(w * ratio)
    top, left = int(rng.integers(0, big_h - h + 1)), int(rng.integers(0, big_w - w + 1))
    canvas = np.empty((n, big_h, big_w, 3), np.uint8)
    canvas[:] = np.array(FILL_RGB, np.uint8)
    canvas[:, top:top + h, left:left + w] = frames
    return canvas, boxes + np.array([left, top, left, top], np.float32)


def _iou_with(rect: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one rectangle (4,) with boxes (..., 4)."""
    lt = np.maximum(rect[:2], boxes[..., :2])
    rb = np.minimum(rect[2:], boxes[..., 2:])
    inter = np.clip(rb - lt, 0, None).prod(-1)
    area = lambda b: (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])  # noqa: E731
    return inter / np.maximum(area(rect) + area(boxes) - inter, 1e-9)


def tubelet_crop(frames: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *,
                 samplers: tuple[tuple[float, float], ...] = CROP_SAMPLERS,
                 trials: int = 50) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SSD-style crop shared by all frames.

    Each sampler draws up to `trials` crops (scale in [min scale, 1], aspect ratio in [0.5, 2]) and keeps the first
    whose overlap with some tube is at least the sampler's minimum in every key frame and that contains the centre
    of at least one tube in every key frame (a sample without tubes keeps the first crop drawn); one candidate (or
    the whole frame) is chosen at random. Tubes whose centre leaves the crop in any key frame are dropped; the
    others are clipped to it.

    Returns:
        Cropped frames, the kept boxes (M', K, 4) and the kept tubes' indices (M',).
    """
    _, h, w, _ = frames.shape
    candidates = [np.array([0, 0, w, h], np.float32)]
    centres = (boxes[..., :2] + boxes[..., 2:]) / 2  # (M, K, 2)
    for min_scale, min_iou in samplers:
        for _ in range(trials):
            scale = rng.uniform(min_scale, 1.0)
            aspect = rng.uniform(max(0.5, scale ** 2), min(2.0, 1 / scale ** 2))
            cw, ch = w * scale * np.sqrt(aspect), h * scale / np.sqrt(aspect)
            if cw > w or ch > h:
                continue
            x0, y0 = rng.uniform(0, w - cw), rng.uniform(0, h - ch)
            rect = np.array([x0, y0, x0 + cw, y0 + ch], np.float32)
            inside = ((centres >= rect[:2]) & (centres <= rect[2:])).all(-1).all(-1)  # (M,) centre in every frame
            if not len(boxes) or (inside.any() and (_iou_with(rect, boxes).min(-1) >= min_iou).any()):
                candidates.append(rect)
                break
    rect = candidates[int(rng.integers(len(candidates)))]
    x0, y0, x1, y1 = (int(round(v)) for v in rect)
    keep = np.flatnonzero(((centres >= [x0, y0]) & (centres <= [x1, y1])).all(-1).all(-1))
    kept = boxes[keep] - np.array([x0, y0, x0, y0], np.float32)
    kept = np.clip(kept, 0, [x1 - x0, y1 - y0, x1 - x0, y1 - y0])
    return frames[:, y0:y1, x0:x1], kept, keep


def hflip(frames: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the frames and boxes left-right."""
    w = frames.shape[2]
    flipped = boxes.copy()
    flipped[..., 0], flipped[..., 2] = w - boxes[..., 2], w - boxes[..., 0]
    return frames[:, :, ::-1], flipped


def resize(frames: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Resize to size x size without keeping the aspect ratio (as AMMA), boxes scaled alike.

    Antialiased bilinear with Pillow on the uint8 frames (the filter PyTorch's antialiased ``interpolate`` follows;
    Pillow's fixed-point uint8 path stays within one grey level of it), so training and every runtime of the online
    engine prepare frames identically, with or without PyTorch installed. One call per frame: half the time of
    resizing float channels one by one, which matters at 640x480 and 100 frames/s.

    Returns:
        Float frames (N, size, size, 3) in [0, 255] and the scaled boxes.
    """
    n, h, w, _ = frames.shape
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        out[i] = resize_frame(frames[i], size)
    scale = np.array([size / w, size / h, size / w, size / h], np.float32)
    return out, boxes * scale


def resize_frame(frame: np.ndarray, size: int) -> np.ndarray:
    """One (H, W, 3) frame to (size, size, 3) uint8, as `resize` does it (the online engine's per-frame path)."""
    from PIL import Image

    return np.asarray(Image.fromarray(np.ascontiguousarray(frame, np.uint8)).resize((size, size), Image.BILINEAR))


def augment_tubelet(frames: np.ndarray, boxes: np.ndarray, rng: np.random.Generator, *, expand_ratio: float = 2.0,
                    flip: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    """The training augmentation of one sample: photometric, expand, crop, flip (see the module docstring).

    Returns:
        Frames, boxes of the kept tubes, their indices into the input boxes, and whether the sample was flipped
        (so that classes told apart by left and right can swap).
    """
    frames = photometric_distort(frames, rng)
    frames, boxes = expand(frames, boxes, rng, max_ratio=expand_ratio)
    frames, boxes, keep = tubelet_crop(frames, boxes, rng)
    flipped = flip and rng.random() < 0.5
    if flipped:
        frames, boxes = hflip(frames, boxes)
    return frames, boxes, keep, flipped
