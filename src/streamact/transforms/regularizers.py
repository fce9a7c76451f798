"""LIGAR's data-side regularisers (LIGAR paper, sections IV.ii and V.i): CrossNorm, video MixUp with background images,
and AugMix-style view pairs with a random temporal crop.

All of them work on pixel-valued frames in channels-last layout (T, H, W, C), uint8 or float in [0, 255], i.e. after
the geometric steps and before `ToTensor` / `Normalize` of `presets.build_transform`; they return the input's dtype
so they can sit anywhere in that stretch. Like the other transforms they are called as `transform(clip, rng)` and
draw every random choice from `rng`, so a sample is reproducible in any DataLoader worker.

    frames ─► ResizeShort ─► crop ─► [flip] ─► CrossNorm / BackgroundMixUp ─► ToTensor ─► Normalize
    frames (T_decode) ─► MultiViewAugment(pipeline above, clip_len=T) ─► (V, C, T, H, W)
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from streamact.data.records import VideoRecord
from streamact.io.errors import VideoError
from streamact.io.video import IMAGE_EXTENSIONS, open_video
from streamact.transforms import functional as F

__all__ = [
    "cross_norm",
    "CrossNorm",
    "collect_channel_stats",
    "save_channel_stats",
    "load_channel_stats",
    "mix_background",
    "BackgroundMixUp",
    "load_background_images",
    "temporal_crop_params",
    "MultiViewAugment",
]

logger = logging.getLogger(__name__)


def _pixels(clip: np.ndarray | torch.Tensor) -> torch.Tensor:
    clip = clip if isinstance(clip, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(clip))
    if clip.shape[-1] != 3:
        raise ValueError(f"expected channels-last RGB frames (..., H, W, 3), got shape {tuple(clip.shape)}")
    return clip


def _like(result: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """`result` (float, 0-255) clipped to [0, 255] and cast back to the reference's dtype (uint8 rounds)."""
    result = result.clamp(0.0, 255.0)
    return result.round().to(torch.uint8) if reference.dtype == torch.uint8 else result.to(reference.dtype)


# ---------------------------------------------------------------------------------------------------------------
# CrossNorm


def cross_norm(
    clip: np.ndarray | torch.Tensor, mean: Sequence[float], std: Sequence[float], *, min_std: float = 1e-3
) -> torch.Tensor:
    """Give the clip another clip's channel statistics: x' = std · (x − μ_clip) / σ_clip + mean, clipped to [0, 255].

    μ_clip and σ_clip are per channel over every frame and pixel of the clip. A clip with a (nearly) constant
    channel, σ_clip ≤ `min_std`, is returned unchanged: dividing by it would blow noise up.

    Args:
        clip: frames (..., H, W, 3), uint8 or float in [0, 255].
        mean: target channel means, pixel units.
        std: target channel standard deviations, pixel units.
        min_std: smallest clip standard deviation that is re-normalised.

    Returns:
        A tensor of the input's dtype and shape.
    """
    clip = _pixels(clip)
    x = clip.float()
    flat = x.reshape(-1, 3)  # (T*H*W, 3)
    clip_mean, clip_std = flat.mean(0), flat.std(0, unbiased=False)
    if bool((clip_std <= min_std).any()):
        return clip
    target_mean = torch.as_tensor(mean, dtype=torch.float32)
    target_std = torch.as_tensor(std, dtype=torch.float32)
    return _like((x - clip_mean) / clip_std * target_std + target_mean, clip)


class CrossNorm:
    """CrossNorm (Tang et al. 2021) as LIGAR applies it to clips: with probability `p`, the clip takes the channel
    statistics of a random entry of a list of per-clip (mean, std) pairs measured on our datasets.

    Args:
        stats: (K, 2, 3) array of (mean, std) pairs in pixel units, or a file written by `save_channel_stats`.
        p: probability of applying it.
        min_std: see `cross_norm`.

    Raises:
        ValueError: `stats` is empty or not (K, 2, 3).
    """

    def __init__(self, stats: np.ndarray | str | Path, *, p: float = 0.5, min_std: float = 1e-3) -> None:
        self.stats = load_channel_stats(stats) if isinstance(stats, (str, Path)) else np.asarray(stats, np.float32)
        if self.stats.ndim != 3 or self.stats.shape[1:] != (2, 3) or len(self.stats) == 0:
            raise ValueError(f"CrossNorm needs (K, 2, 3) channel statistics, got shape {self.stats.shape}")
        self.p = p
        self.min_std = min_std

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        if rng.random() >= self.p:
            return _pixels(clip)
        mean, std = self.stats[int(rng.integers(len(self.stats)))]
        return cross_norm(clip, mean, std, min_std=self.min_std)

    def __repr__(self) -> str:
        return f"CrossNorm({len(self.stats)} statistics, p={self.p})"


def collect_channel_stats(
    records: Sequence[VideoRecord],
    *,
    num: int | None = None,
    frames_per_clip: int = 8,
    seed: int = 0,
    path: str | Path | None = None,
) -> np.ndarray:
    """Per-clip channel (mean, std) of videos from our datasets, the statistics `CrossNorm` draws from.

    Each video contributes one pair, measured on `frames_per_clip` evenly spaced frames of its [start, end) window.
    Unreadable videos are skipped and logged.

    Args:
        records: the videos (e.g. a training split).
        num: videos to measure, drawn at random without replacement (None = all).
        frames_per_clip: frames decoded per video.
        seed: seed of the random subset.
        path: also write the statistics there (`save_channel_stats` format).

    Returns:
        (K, 2, 3) float32 array, pixel units.

    Raises:
        ValueError: no video could be read.
    """
    chosen = list(range(len(records)))
    if num is not None and num < len(records):
        chosen = sorted(np.random.default_rng(seed).choice(len(records), size=num, replace=False).tolist())
    stats = []
    for i in chosen:
        record = records[i]
        try:
            with open_video(record.path) as reader:
                stop = reader.num_frames if record.end is None else min(record.end, reader.num_frames)
                positions = np.linspace(record.start, stop - 1, frames_per_clip).round().astype(int)
                frames = reader.get_frames(np.unique(positions).tolist())  # (N, H, W, 3) uint8
        except (VideoError, IndexError) as e:
            logger.warning("collect_channel_stats: skipping %s: %s", record.path, e)
            continue
        flat = frames.reshape(-1, 3).astype(np.float64)  # (N*H*W, 3)
        stats.append([flat.mean(0), flat.std(0)])
    if not stats:
        raise ValueError("collect_channel_stats: none of the videos could be read")
    result = np.asarray(stats, np.float32)
    if path is not None:
        save_channel_stats(result, path)
    return result


def save_channel_stats(stats: np.ndarray, path: str | Path) -> Path:
    """Write (K, 2, 3) statistics as lines "m1,m2,m3 s1,s2,s3" (the format of LIGAR's `mean_std_list.txt`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [" ".join(",".join(f"{v:.4f}" for v in part) for part in pair) for pair in np.asarray(stats)]
    path.write_text("\n".join(lines) + "\n")
    return path


def load_channel_stats(path: str | Path) -> np.ndarray:
    """Read a `save_channel_stats` file (blank lines ignored) into a (K, 2, 3) float32 array.

    Raises:
        ValueError: a line is not "m1,m2,m3 s1,s2,s3", or the file holds none.
    """
    stats = []
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = [part.split(",") for part in line.split()]
        if len(parts) != 2 or any(len(p) != 3 for p in parts):
            raise ValueError(f"{path}:{number}: expected 'm1,m2,m3 s1,s2,s3', got {line!r}")
        try:
            stats.append([[float(v) for v in p] for p in parts])
        except ValueError as e:
            raise ValueError(f"{path}:{number}: {e}") from e
    if not stats:
        raise ValueError(f"{path}: no channel statistics")
    return np.asarray(stats, np.float32)


# ---------------------------------------------------------------------------------------------------------------
# Video MixUp with background images


def mix_background(clip: np.ndarray | torch.Tensor, image: np.ndarray | torch.Tensor, weight: float) -> torch.Tensor:
    """Blend one image into every frame: x' = (1 − weight) · x + weight · image (the label is unchanged).

    Args:
        clip: frames (T, H, W, 3), uint8 or float in [0, 255].
        image: (H, W, 3) in the same units.
        weight: the image's share, in [0, 1].

    Returns:
        A tensor of the clip's dtype and shape.

    Raises:
        ValueError: the image does not match the frame size, or weight is outside [0, 1].
    """
    clip, image = _pixels(clip), _pixels(image)
    if tuple(image.shape) != tuple(clip.shape[-3:]):
        raise ValueError(f"background {tuple(image.shape)} does not match frames {tuple(clip.shape[-3:])}")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"mixing weight must be in [0, 1], got {weight}")
    return _like((1.0 - weight) * clip.float() + weight * image.float(), clip)


class BackgroundMixUp:
    """Video MixUp of LIGAR (section V.i, from its ASL work): one random image blended into all frames of the clip.

    As in the authors' pipeline, the image's weight is λ ~ Beta(α, α) folded to min(λ, 1 − λ) ≤ 0.5, so the video
    always dominates and keeps its label; the image is rescaled so that its shorter side is `scale` times the
    frame's (and it covers the frame), randomly cropped to the frame size and randomly mirrored.

    Args:
        images: background images (H, W, 3) uint8, e.g. from `load_background_images`.
        alpha: Beta parameter (0.2 in the authors' configs: mostly faint backgrounds).
        p: probability of applying it.
        scale: image shorter side relative to the frame's before the random crop.

    Raises:
        ValueError: no images.
    """

    def __init__(self, images: Sequence[np.ndarray], *, alpha: float = 0.2, p: float = 0.5,
                 scale: float = 1.15) -> None:
        if len(images) == 0:
            raise ValueError("BackgroundMixUp needs at least one background image")
        self.images = [np.ascontiguousarray(image) for image in images]
        self.alpha = alpha
        self.p = p
        self.scale = scale

    def _background(self, height: int, width: int, rng: np.random.Generator) -> torch.Tensor:
        image = self.images[int(rng.integers(len(self.images)))]
        img_h, img_w = image.shape[:2]
        factor = max(self.scale * min(height, width) / min(img_h, img_w), height / img_h, width / img_w)
        resized = F.resize(image, (max(height, round(img_h * factor)), max(width, round(img_w * factor))))
        top = int(rng.integers(0, resized.shape[0] - height + 1))
        left = int(rng.integers(0, resized.shape[1] - width + 1))
        background = F.crop(resized, top, left, height, width)
        return F.hflip(background) if rng.random() < 0.5 else background

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        clip = _pixels(clip)
        if rng.random() >= self.p:
            return clip
        weight = float(rng.beta(self.alpha, self.alpha))
        weight = min(weight, 1.0 - weight)
        return mix_background(clip, self._background(clip.shape[-3], clip.shape[-2], rng), weight)

    def __repr__(self) -> str:
        return f"BackgroundMixUp({len(self.images)} images, alpha={self.alpha}, p={self.p})"


def load_background_images(folder: str | Path, *, max_side: int | None = 256) -> list[np.ndarray]:
    """Read every image of a folder (recursively; jpg, png, bmp) as RGB uint8, shrunk to `max_side` if larger.

    Shrinking keeps the list small, since it is copied into every DataLoader worker each epoch.

    Raises:
        ValueError: the folder holds no image.
    """
    paths = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not paths:
        raise ValueError(f"{folder}: no background images ({', '.join(IMAGE_EXTENSIONS)})")
    images = []
    for path in paths:
        with Image.open(path) as image:
            image = image.convert("RGB")
            if max_side is not None and max(image.size) > max_side:
                image.thumbnail((max_side, max_side), Image.Resampling.BILINEAR)
            images.append(np.array(image))  # a writable copy (torch warns on read-only arrays)
    return images


# ---------------------------------------------------------------------------------------------------------------
# AugMix-style views with a random temporal crop


def temporal_crop_params(num_frames: int, length: int, rng: np.random.Generator) -> int:
    """Start of a random run of `length` consecutive frames among `num_frames`.

    Raises:
        ValueError: fewer frames than `length`.
    """
    if not 1 <= length <= num_frames:
        raise ValueError(f"temporal crop of {length} frames from {num_frames}")
    return int(rng.integers(0, num_frames - length + 1))


class MultiViewAugment:
    """Views of one sample for the AugMix-style consistency loss: each view is its own random temporal crop of
    `clip_len` consecutive decoded frames, then its own random draw of `transform` (LIGAR: rotate, crop, flip,
    CrossNorm; the temporal crop makes the consistency task harder, LIGAR paper section V.i).

    The sampler decodes more frames than the model takes (e.g. `ClipSampler(mode='dense', clip_len=24)` for
    16-frame views at the same stride), so the views see overlapping but different time segments. The output has
    the multi-view layout (V, C, T, H, W) that `VideoDataset` and `collate_skip_bad` already pass through as
    (B, V, C, T, H, W).

    Args:
        transform: the per-view pipeline `transform(frames (T, H, W, 3), rng) -> (C, T, H', W')`.
        clip_len: frames per view.
        num_views: views per sample (2 or 3).

    Raises:
        ValueError: fewer than 2 views.
    """

    def __init__(self, transform: Callable, *, clip_len: int, num_views: int = 2) -> None:
        if num_views < 2:
            raise ValueError(f"MultiViewAugment needs at least 2 views, got {num_views}")
        self.transform = transform
        self.clip_len = clip_len
        self.num_views = num_views

    def __call__(self, frames, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        views = []
        for _ in range(self.num_views):
            start = temporal_crop_params(len(frames), self.clip_len, rng)
            views.append(self.transform(frames[start : start + self.clip_len], rng))
        return torch.stack(views)  # (V, C, T, H, W)

    def __repr__(self) -> str:
        return f"MultiViewAugment({self.transform!r}, clip_len={self.clip_len}, num_views={self.num_views})"
