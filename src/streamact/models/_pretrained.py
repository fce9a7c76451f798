"""Pretrained configuration of a model and safe loading of weights.

A model's `PretrainedCfg` travels with it (``model.pretrained_cfg``) and with everything exported from it, so
every runtime preprocesses frames the same way the model was trained (DESIGN.md, struggle 4).
"""
from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["PretrainedCfg", "IMAGENET_MEAN", "IMAGENET_STD", "load_state_dict", "load_weights", "WEIGHTS_DIR"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Weights shipped inside the package (package-data `weights/*`); `PretrainedCfg.weights` names a file here.
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"


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
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a file a user hands us, without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``. A
    training checkpoint (a dict with a ``'model'`` entry) yields its model state, and a ``'module.'`` prefix left
    by DistributedDataParallel is removed.

    Args:
        path: weights or checkpoint file.

    Returns:
        Mapping from parameter / buffer name to tensor, on CPU.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file does not hold a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not contain a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True, head: bool = True) -> nn.Module:
    """Load weights from ``path`` (see `load_state_dict`) into ``model``.

    Args:
        model: model to load into.
        path: weights or checkpoint file.
        strict: require the keys to match exactly.
        head: also load the classifier(s). False loads everything else and keeps ``model``'s own fresh
            classifier, so weights trained on other classes can start a fine-tune; the model must have
            ``reset_classifier`` (every streamact model does), which tells the classifier's keys apart.

    Returns:
        ``model``, for chaining.

    Raises:
        RuntimeError: on missing / unexpected keys (``strict``; without the head, only missing ones count) or
            shape mismatches, naming the file.
    """
    state = load_state_dict(path)
    if not head:
        headless = copy.deepcopy(model)
        headless.reset_classifier(0)
        body = headless.state_dict().keys()
        missing = [k for k in body if k not in state]
        if strict and missing:
            raise RuntimeError(f"cannot load {path} into {type(model).__name__}: missing keys {missing[:5]}"
                               f"{' ...' if len(missing) > 5 else ''}")
        state, strict = {k: state[k] for k in body if k in state}, False
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise RuntimeError(f"cannot load {path} into {type(model).__name__}: {e}") from e
    return model
