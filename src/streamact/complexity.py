"""Parameter and multiply-accumulate (MAC) counts.

MACs are counted with ``torch.utils.flop_counter.FlopCounterMode`` (which reports 2 FLOPs per multiply-add) on
one forward pass, heads included; MACs = FLOPs / 2, the convention of the papers' tables ("multiply and add as a
single operation"). Ops the counter does not model (pooling, activations, normalisation in eval mode, the
shift's slicing) count as zero, as in the papers. Registered models are measured on the meta device: shapes
propagate, nothing is computed, so even ResNet-50 on 8x224x224 takes a fraction of a second.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from streamact.models import backbone_cfg, create_backbone, create_model

__all__ = ["count_params", "count_macs", "count_step_macs", "model_complexity", "backbone_complexity"]


def count_params(model: nn.Module, *, trainable_only: bool = False) -> int:
    """Number of parameters (buffers such as BN running statistics excluded).

    Args:
        model: any module.
        trainable_only: count only parameters with ``requires_grad``.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def count_macs(model: nn.Module, input_shape: Sequence[int]) -> int:
    """Multiply-accumulates of one forward pass in eval mode.

    Args:
        model: module taking one tensor; its training mode is restored afterwards.
        input_shape: full input shape including the batch, e.g. (1, 3, 8, 224, 224) for a recognizer.

    Returns:
        MACs for that input (divide by the batch size for a per-sample figure).
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = torch.zeros(tuple(input_shape), device=device)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def count_step_macs(model: nn.Module) -> int:
    """Multiply-accumulates of one streaming step (`forward_step` on one new frame, batch 1) in eval mode.

    This is what a live stream pays per processed frame: one backbone pass for TSN/TSM/MixTConv, one encoder pass
    plus the decoder over the window for VTN, the whole clip for a sliding-window 3D model such as LIGAR.

    For an AMMA detector a step is one new clip of t frames: one clip embedding plus the head.

    Args:
        model: streamable model (``init_state``/``forward_step``); its training mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), torch.device(device):  # init_state's probe tensors on the model's (meta) device
            state = model.init_state(1)
            frame = torch.zeros(1, *model.pretrained_cfg.input_size)
            if hasattr(model, "forward_clip_features"):  # a detector steps on one clip of t frames
                frame = frame[:, :, None].expand(-1, -1, model.clip_len, -1, -1)
            with FlopCounterMode(display=False) as counter:
                model.forward_step(frame, state)
    finally:
        model.train(was_training)
    return counter.get_total_flops() // 2


def model_complexity(name: str, **kwargs: Any) -> dict[str, Any]:
    """Size and cost of a registered model at its default input (one clip from ``pretrained_cfg``).

    Args:
        name: registered model name.
        **kwargs: builder arguments (e.g. ``num_classes``, ``num_segments``).

    Returns:
        ``name``, ``params``, ``macs_per_clip``, ``macs_per_frame`` (one streaming step, see `count_step_macs`)
        and ``input_shape`` (B, C, T, H, W). For 2D + temporal models every frame costs one backbone pass, so per
        frame = per clip / T.
    """
    with torch.device("meta"):  # parameters are allocated but never initialised or computed on
        model = create_model(name, **kwargs)
    cfg = model.pretrained_cfg
    c, h, w = cfg.input_size
    shape = [1, c, cfg.clip_len, h, w]
    macs = count_macs(model, shape)
    if hasattr(model, "forward_clip_features"):
        return _detector_complexity(name, model, macs, shape)
    return {
        "name": name,
        "params": count_params(model),
        "macs_per_clip": macs,
        "macs_per_frame": count_step_macs(model.make_causal()),  # a bi-directional model streams in causal form
        "input_shape": shape,
    }


def _detector_complexity(name: str, model: nn.Module, tubelet_macs: int, shape: list[int]) -> dict[str, Any]:
    """AMMA's counts: per clip as the paper counts them in the streaming setting (tubelet MACs / K), the clip
    embedding alone (with the head's per-clip layers: what the cache holds), one streaming step (one new clip + the
    head over the K cached clips), and per frame (step / t)."""
    clip_macs = count_macs(_ClipFeatures(model), [1, 3, model.clip_len, *shape[-2:]])
    step = count_step_macs(model)
    return {"name": name, "params": count_params(model), "macs_per_clip": tubelet_macs // model.num_clips,
            "macs_clip_features": clip_macs, "macs_per_step": step, "macs_per_frame": step // model.clip_len,
            "input_shape": shape}


class _ClipFeatures(nn.Module):
    """What a stream computes once per clip and caches (`forward_clip_features`, then the head's per-clip layers),
    as a module's forward, for `count_macs`."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.model.head.forward_clip(self.model.forward_clip_features(clip))


def backbone_complexity(name: str, *, num_classes: int = 1000) -> dict[str, Any]:
    """Size and cost of a 2D backbone on one 224x224 frame, with its ImageNet classifier by default.

    This is the setting of the papers' backbone tables (e.g. Table 2 of the mobile TSN paper).

    Args:
        name: backbone name (see `streamact.models.list_backbones`).
        num_classes: classifier size; 0 for the pooled features alone.

    Returns:
        ``name``, ``params``, ``macs_per_frame`` and ``input_shape`` (B, C, H, W).
    """
    with torch.device("meta"):
        model = create_backbone(name, num_classes=num_classes)
    shape = [1, *backbone_cfg(name).input_size]
    return {"name": name, "params": count_params(model), "macs_per_frame": count_macs(model, shape),
            "input_shape": shape}
