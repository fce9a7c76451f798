"""How a model expects its input: its `PretrainedCfg`, which travels with it and with everything exported from it.

A model carries it as ``model.pretrained_cfg``; an export carries it in its JSON sidecar. Every runtime reads the
preprocessing, labels and event settings from here, so frames are prepared the way the model was trained
(DESIGN.md, struggle 4). This module needs no PyTorch: the exported-model path imports it.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streamact.inference.events import EventCfg

__all__ = ["PretrainedCfg", "IMAGENET_MEAN", "IMAGENET_STD", "WEIGHTS_DIR"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Weights shipped inside the package (package-data `weights/*`); `PretrainedCfg.weights` names a file here.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


@dataclass(frozen=True)
class PretrainedCfg:
    """How a model expects its input, and where its own weights are.

    Attributes:
        input_size: (C, H, W) of one frame at the model's default resolution.
        clip_len: frames per clip the model sees (T of the (B, C, T, H, W) input).
        num_segments: segments for TSN-style segment sampling (one frame per segment); ``None`` when the model is
            trained on dense clips.
        frame_interval: stride between sampled frames for dense / continuous sampling and for streaming.
        mean: per-channel mean subtracted from RGB frames scaled to [0, 1].
        std: per-channel std dividing the mean-subtracted frames.
        crop_pct: evaluation resize-then-centre-crop ratio (short side resized to H / crop_pct, then an H x W
            centre crop); 0.875 is the 256 -> 224 protocol of TSN / TSM.
        interpolation: resize interpolation mode.
        num_classes: size of the classifier output.
        label_names: class names in label order, when known.
        weights: file name in `WEIGHTS_DIR` with the model's own weights (safetensors), if it ships any.
        events: how a stream of its predictions is smoothed and turned into gesture events (`EventCfg`); every
            runtime reads it from here (exports carry it in their sidecar).
    """

    input_size: tuple[int, int, int] = (3, 224, 224)
    clip_len: int = 8
    num_segments: int | None = 8
    frame_interval: int = 1
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    crop_pct: float = 0.875
    interpolation: str = "bilinear"
    num_classes: int = 400
    label_names: tuple[str, ...] | None = None
    weights: str | None = None
    events: EventCfg = EventCfg()

    def replace(self, **changes: Any) -> PretrainedCfg:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def relabel(self, num_classes: int, label_names: Sequence[str] | None = None) -> PretrainedCfg:
        """A copy for a new classifier of `num_classes` classes named `label_names` (None: unknown).

        Raises:
            ValueError: the number of names differs from `num_classes`.
        """
        if label_names is not None and len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
        return self.replace(num_classes=num_classes, label_names=tuple(label_names) if label_names is not None else None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dict (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> PretrainedCfg:
        """Inverse of `to_dict`.

        Raises:
            KeyError: for a key that is not a field, so a mismatched sidecar or checkpoint fails loudly.
        """
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise KeyError(f"unknown PretrainedCfg field(s): {', '.join(unknown)}")
        d = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        if isinstance(d.get("events"), Mapping):
            d["events"] = EventCfg.from_dict(d["events"])
        return cls(**d)
