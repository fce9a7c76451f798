"""Callable clip transforms composing `functional`; random parameters are drawn once per clip.

Every transform is called as `transform(clip, rng)`: `rng` is the numpy Generator of the sample (the dataset
derives it from seed, epoch and index), so a sample decodes to the same tensor in any worker. Deterministic
transforms ignore it; random ones fall back to a fresh unseeded generator when it is None.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from streamact.transforms import functional as F

__all__ = [
    "Compose",
    "ResizeShort",
    "CenterCrop",
    "MultiScaleCrop",
    "RandomResizedCrop",
    "RandomHorizontalFlip",
    "ToTensor",
    "Normalize",
]


class Compose:
    """Apply transforms in order, passing the same generator to each."""

    def __init__(self, transforms: Sequence) -> None:
        self.transforms = list(transforms)

    def __call__(self, clip, rng: np.random.Generator | None = None):
        for transform in self.transforms:
            clip = transform(clip, rng)
        return clip

    def __repr__(self) -> str:
        inner = ", ".join(repr(t) for t in self.transforms)
        return f"Compose([{inner}])"


class ResizeShort:
    """Resize so the shorter side is `size` (aspect ratio kept)."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        return F.resize_short(clip, self.size)

    def __repr__(self) -> str:
        return f"ResizeShort({self.size})"


class CenterCrop:
    """Crop the central size x size square."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        return F.center_crop(clip, self.size)

    def __repr__(self) -> str:
        return f"CenterCrop({self.size})"


class MultiScaleCrop:
    """TSN multi-scale crop resized to size x size (see `functional.multi_scale_crop_params`)."""

    def __init__(
        self,
        size: int,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        *,
        max_distort: int = 1,
        fix_crop: bool = True,
        more_fix_crop: bool = True,
    ) -> None:
        self.size = size
        self.scales = tuple(scales)
        self.max_distort = max_distort
        self.fix_crop = fix_crop
        self.more_fix_crop = more_fix_crop

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        height, width = clip.shape[-3:-1]
        box = F.multi_scale_crop_params(
            height, width, self.size, rng=rng, scales=self.scales, max_distort=self.max_distort,
            fix_crop=self.fix_crop, more_fix_crop=self.more_fix_crop,
        )
        return F.resized_crop(clip, *box, (self.size, self.size))

    def __repr__(self) -> str:
        return f"MultiScaleCrop({self.size}, scales={self.scales})"


class RandomResizedCrop:
    """Inception-style random crop resized to size x size (see `functional.random_resized_crop_params`)."""

    def __init__(
        self, size: int, scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3)
    ) -> None:
        self.size = size
        self.scale = scale
        self.ratio = ratio

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        height, width = clip.shape[-3:-1]
        box = F.random_resized_crop_params(height, width, rng=rng, scale=self.scale, ratio=self.ratio)
        return F.resized_crop(clip, *box, (self.size, self.size))

    def __repr__(self) -> str:
        return f"RandomResizedCrop({self.size}, scale={self.scale}, ratio={self.ratio})"


class RandomHorizontalFlip:
    """Mirror the whole clip with probability `p`.

    Do not use it for datasets with left/right classes (Jester, Something-Something, synthetic gestures): a
    mirrored "swipe left" is a "swipe right" with the wrong label.
    """

    def __init__(self, p: float = 0.5) -> None:
        self.p = p

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        rng = rng if rng is not None else np.random.default_rng()
        return F.hflip(clip) if rng.random() < self.p else clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class ToTensor:
    """uint8 (T, H, W, C) -> float (C, T, H, W) in [0, 1]."""

    def __call__(self, clip, rng: np.random.Generator | None = None) -> torch.Tensor:
        return F.to_tensor(clip)

    def __repr__(self) -> str:
        return "ToTensor()"


class Normalize:
    """(x - mean) / std per channel of a (C, ...) float tensor."""

    def __init__(self, mean: Sequence[float], std: Sequence[float]) -> None:
        self.mean = tuple(mean)
        self.std = tuple(std)

    def __call__(self, clip: torch.Tensor, rng: np.random.Generator | None = None) -> torch.Tensor:
        return F.normalize(clip, self.mean, self.std)

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean}, std={self.std})"
