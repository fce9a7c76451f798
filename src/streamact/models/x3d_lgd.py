"""LIGAR: X3D-style MobileNetV3-Large 3D backbone + LGD global path + metric-learning head.

Izutov, "LIGAR: Lightweight General-purpose Action Recognition", arXiv 2108.13153, with the
structure, hyper-parameters and initialisation of the authors' public code (openvinotoolkit/training_extensions):

- local path: MobileNetV3-Large inflated X3D-style: every depthwise conv gets a temporal kernel (t_k, k, k), the
  stem is spatial only, time is halved at blocks 4 and 10 (16 -> 8 -> 4 frames), and squeeze-excitation pools
  each frame separately (over H, W);
- global path (LGD, Qiu et al. CVPR 2019): a per-clip vector updated after every module from a Global Context
  attention pooling of the local map and diffused back into it (`streamact.layers.global_context`);
- head: global average pooling + a 256-d L2-normalised embedding scored by cosine against class centres
  (`streamact.layers.metric_head`), trained with the losses of `streamact.losses.classification`.

Published (training_extensions model card, x3d-rgb-mobilenet-v3-lgd-gc, 16 x 224^2): 4.472 M parameters,
4.74 GFLOPs. Ours (tests/models/test_x3d_lgd.py, 101 classes): 4.507 M parameters, 2.253 GMACs = 4.51 GFLOPs; the
local path alone 2.816 M / 2.230 GMACs (an analytic count from the authors' code: 2.816 M / 2.232 G).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import torch
from torch import nn

from streamact.layers.global_context import GlobalContextPool, GlobalTransform
from streamact.layers.metric_head import DEFAULT_INFERENCE_SCALE, MetricHead
from streamact.models._pretrained import IMAGENET_MEAN, IMAGENET_STD, PretrainedCfg
from streamact.models._registry import register_model
from streamact.models._state import StreamState

__all__ = ["X3DLGD", "InvertedResidual3d", "SqueezeExcite3d", "BlockSpec", "MOBILENETV3_LARGE_X3D"]


class BlockSpec(NamedTuple):
    """One inverted-residual block of the local path."""

    kernel: int  # spatial kernel k of the depthwise conv
    expanded: int  # channels after the expansion conv
    out: int  # output channels
    se: bool  # squeeze-excitation after the depthwise conv
    act: str  # "relu" or "hswish"
    stride: int  # spatial stride of the depthwise conv
    t_stride: int  # temporal stride of the depthwise conv
    t_kernel: int  # temporal kernel t_k of the depthwise conv (ignored without expansion, see InvertedResidual3d)


# From the authors' code. Unlike torchvision's MobileNetV3-Large, block 12 keeps the resolution and block 13 halves it.
MOBILENETV3_LARGE_X3D: tuple[BlockSpec, ...] = (
    BlockSpec(3, 16, 16, False, "relu", 1, 1, 5),
    BlockSpec(3, 64, 24, False, "relu", 2, 1, 3),
    BlockSpec(3, 72, 24, False, "relu", 1, 1, 3),
    BlockSpec(5, 72, 40, True, "relu", 2, 1, 3),
    BlockSpec(5, 120, 40, True, "relu", 1, 2, 3),
    BlockSpec(5, 120, 40, True, "relu", 1, 1, 5),
    BlockSpec(3, 240, 80, False, "hswish", 2, 1, 5),
    BlockSpec(3, 200, 80, False, "hswish", 1, 1, 3),
    BlockSpec(3, 184, 80, False, "hswish", 1, 1, 3),
    BlockSpec(3, 184, 80, False, "hswish", 1, 1, 5),
    BlockSpec(3, 480, 112, True, "hswish", 1, 2, 3),
    BlockSpec(3, 672, 112, True, "hswish", 1, 1, 3),
    BlockSpec(5, 672, 160, True, "hswish", 1, 1, 3),
    BlockSpec(5, 672, 160, True, "hswish", 2, 1, 3),
    BlockSpec(5, 960, 160, True, "hswish", 1, 1, 3),
)
_STEM_CHANNELS = 16
_NUM_FEATURES = 960


def _first_head_size(num_classes: int | Sequence[int]) -> int:
    """Classes of the first head (what `forward` returns and ``pretrained_cfg`` describes); 0 for no head."""
    if isinstance(num_classes, int):
        return num_classes
    return next(iter(num_classes), 0)


def _act(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU(inplace=True)
    if name == "hswish":
        return nn.Hardswish(inplace=True)
    raise ValueError(f"unknown activation {name!r}")


class SqueezeExcite3d(nn.Module):
    """Per-frame squeeze-excitation: average over H, W only (T kept), 1x1x1 C->C/4 -> ReLU -> C/4->C -> hard sigmoid."""

    def __init__(self, channels: int, *, reduction: int = 4) -> None:
        super().__init__()
        self.conv_reduce = nn.Conv3d(channels, channels // reduction, 1)
        self.act = nn.ReLU(inplace=True)
        self.conv_expand = nn.Conv3d(channels // reduction, channels, 1)
        self.gate = nn.Hardsigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Gate (B, C, T, H, W) features channel-wise, frame by frame."""
        s = x.mean((3, 4), keepdim=True)  # (B, C, T, 1, 1): any spatial size, exports as ReduceMean
        return x * self.gate(self.conv_expand(self.act(self.conv_reduce(s))))


class InvertedResidual3d(nn.Module):
    """MobileNetV3 block inflated X3D-style (the reference's ``use_dw_temporal=1``).

    pw 1x1x1 (in->exp) + BN + act -> depthwise (t_k, k, k), stride (t_s, s, s) + BN -> SE -> act -> pw-linear
    1x1x1 (exp->out) + BN, plus the input when nothing is strided and in == out. Without expansion (in == exp,
    only block 0) there is no expansion conv and the depthwise conv is spatial only, (1, k, k). All convs are
    bias-free.
    """

    def __init__(self, in_channels: int, spec: BlockSpec) -> None:
        super().__init__()
        exp = spec.expanded
        layers: list[nn.Module] = []
        if in_channels != exp:
            layers += [nn.Conv3d(in_channels, exp, 1, bias=False), nn.BatchNorm3d(exp), _act(spec.act)]
            t_kernel = spec.t_kernel
        else:
            t_kernel = 1
        layers += [
            nn.Conv3d(exp, exp, (t_kernel, spec.kernel, spec.kernel), stride=(spec.t_stride, spec.stride, spec.stride),
                      padding=(t_kernel // 2, spec.kernel // 2, spec.kernel // 2), groups=exp, bias=False),
            nn.BatchNorm3d(exp),
        ]
        if spec.se:
            layers.append(SqueezeExcite3d(exp))
        layers += [_act(spec.act), nn.Conv3d(exp, spec.out, 1, bias=False), nn.BatchNorm3d(spec.out)]
        self.conv = nn.Sequential(*layers)
        self.use_residual = spec.stride == 1 and spec.t_stride == 1 and in_channels == spec.out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C_in, T, H, W) -> (B, C_out, T / t_s, H / s, W / s)."""
        out = self.conv(x)
        return x + out if self.use_residual else out


class X3DLGD(nn.Module):
    """LIGAR recognizer: local 3D path, LGD global path, average pooling, one metric head per dataset.

    Data flow (module m = 0 is the stem, m = 1..15 are blocks 0..14; g is the global vector)::

        x (B, 3, T, H, W), normalised
          │ stem: conv (1,3,3) stride (1,2,2) + BN + HSwish                                  m = 0
          │ blocks 0..14 (InvertedResidual3d)                                                m = 1..15
          │   after module m:  local += upsample[m](g)                      m in 1..14  (broadcast over T, H, W)
          │                    p = pool[m](local)  (GC attention pooling)  m in 0..13
          │                    g = p  (m = 0)   or   glob[m](g) + p  (m >= 1)
          │ out_conv: 1x1x1 160 -> 960 + BN + HSwish
          ▼
        (B, 960, T/4, H/32, W/32) ── mean over T, H, W ──► (B, 960)                forward_features
          │ dropout (0 in LIGAR) → heads[dataset_id] (MetricHead)
          ▼
        (B, K) = inference_scale · cos                                            forward_head → logits

    The LGD index mapping (pool at 0..13, glob at 1..13, upsample at 1..14, nothing at 15) is the one the
    reference code builds; the upsample units' last BatchNorm starts at zero, so the global path begins as a
    no-op on the local one.

    Several heads (one per dataset, LIGAR's multi-head pre-training) share the backbone; `forward` and the export
    use the first, `forward_head` / `forward_metric` take a ``dataset_id``. ``pretrained_cfg`` (classes, labels)
    describes the first head.

    Streaming (`init_state` / `forward_step`): the temporal strides and the clip-wide attention pooling make
    every activation after block 0 depend on the whole window, so the streaming form keeps a ring buffer of the
    last ``clip_len`` frames and re-runs the clip on every step: exact (equal to `forward` on the window), one
    clip of compute per streamed frame.

    Attributes:
        stem, blocks, out_conv: the local path.
        pool, glob, upsample: global-path units keyed by module index (``str(m)``).
        heads: one `MetricHead` per dataset (empty: `forward` returns pooled features).
        clip_len: frames per clip the streaming ring buffer holds.
        pretrained_cfg: input size, sampling, normalisation and labels.
    """

    num_features = _NUM_FEATURES

    def __init__(
        self,
        *,
        num_classes: int | Sequence[int],
        clip_len: int = 16,
        blocks: Sequence[BlockSpec] = MOBILENETV3_LARGE_X3D,
        lgd_factor: int = 3,
        embed_dim: int = 256,
        inference_scale: float = DEFAULT_INFERENCE_SCALE,
        dropout: float = 0.0,
        pretrained_cfg: PretrainedCfg,
    ) -> None:
        """
        Args:
            num_classes: K, or one K per dataset for several heads; 0 (or an empty list) for no head.
            clip_len: frames per clip (the streaming window).
            blocks: the local path's block table.
            lgd_factor: hidden width of the global-path units relative to their input channels.
            embed_dim: metric embedding size.
            inference_scale: logits = inference_scale * cos (see `streamact.layers.metric_head`).
            dropout: drop probability on the pooled features before the heads (LIGAR: none).
            pretrained_cfg: the model's configuration.
        """
        super().__init__()
        if clip_len < 1:
            raise ValueError(f"clip_len must be >= 1, got {clip_len}")
        self.clip_len = clip_len
        self.embed_dim = embed_dim
        self.inference_scale = inference_scale
        self.pretrained_cfg = pretrained_cfg
        self.stem = nn.Sequential(
            nn.Conv3d(3, _STEM_CHANNELS, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.BatchNorm3d(_STEM_CHANNELS), nn.Hardswish(inplace=True))
        channels = [_STEM_CHANNELS]  # output channels of module m
        block_list = []
        for spec in blocks:
            block_list.append(InvertedResidual3d(channels[-1], spec))
            channels.append(spec.out)
        self.blocks = nn.ModuleList(block_list)
        # LGD links (see the class docstring): the last module gets none, the one before it no pool / glob.
        last = len(channels) - 1
        self.pool = nn.ModuleDict({str(m): GlobalContextPool(channels[m], factor=lgd_factor) for m in range(last - 1)})
        self.glob = nn.ModuleDict({str(m): GlobalTransform(channels[m - 1], channels[m], factor=lgd_factor,
                                                           residual=True) for m in range(1, last - 1)})
        self.upsample = nn.ModuleDict({str(m): GlobalTransform(channels[m - 1], channels[m], factor=lgd_factor)
                                       for m in range(1, last)})
        self.out_conv = nn.Sequential(nn.Conv3d(channels[-1], self.num_features, 1, bias=False),
                                      nn.BatchNorm3d(self.num_features), nn.Hardswish(inplace=True))
        self.drop = nn.Dropout(dropout)
        self._init_weights()
        self._build_heads(num_classes)

    def _init_weights(self) -> None:
        """Reference init: conv ~ N(0, sqrt(2 / n)), n = kernel[0] * kernel[1] * out_channels; conv bias 0;
        BN gamma 1, beta 0; then the upsample units' last BN zeroed (global path starts as a no-op)."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                n = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / n))
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for unit in self.upsample.values():
            nn.init.zeros_(unit.last_bn.weight)
            nn.init.zeros_(unit.last_bn.bias)

    def _build_heads(self, num_classes: int | Sequence[int]) -> None:
        sizes = [num_classes] if isinstance(num_classes, int) else list(num_classes)
        if sizes == [0]:
            sizes = []
        if any(k < 1 for k in sizes):
            raise ValueError(f"every head needs >= 1 class, got {num_classes}")
        self.heads = nn.ModuleList(
            MetricHead(self.num_features, k, embed_dim=self.embed_dim, inference_scale=self.inference_scale)
            for k in sizes)

    @property
    def num_classes(self) -> int:
        """Classes of the first head (what `forward` returns); 0 without heads."""
        return self.heads[0].num_classes if len(self.heads) else 0

    @property
    def head_sizes(self) -> tuple[int, ...]:
        """Classes of every head, in dataset order."""
        return tuple(h.num_classes for h in self.heads)

    # -- offline -------------------------------------------------------------------------------------------
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled clip features.

        Args:
            x: clips (B, 3, T, H, W), normalised as in ``pretrained_cfg``; any T, H, W >= 1.

        Returns:
            (B, 960) features averaged over the output's T, H, W.

        Raises:
            ValueError: for input that is not (B, 3, T, H, W).
        """
        if x.ndim != 5 or x.shape[1] != 3:
            raise ValueError(f"expected clips (B, 3, T, H, W), got {tuple(x.shape)}")
        local = x
        g: torch.Tensor | None = None
        for m, module in enumerate((self.stem, *self.blocks)):
            local = module(local)
            key = str(m)
            if key in self.upsample:
                local = local + self.upsample[key](g)  # (B, C, 1, 1, 1) broadcast over T, H, W
            if key in self.pool:
                p = self.pool[key](local)  # (B, C, 1, 1, 1)
                g = p if g is None else self.glob[key](g) + p
        return self.out_conv(local).mean((2, 3, 4))  # (B, 960, T', H', W') -> (B, 960)

    def _head(self, dataset_id: int | None) -> MetricHead:
        if not len(self.heads):
            raise RuntimeError("the model has no classifier head (num_classes=0); use forward_features")
        index = 0 if dataset_id is None else dataset_id
        if not 0 <= index < len(self.heads):
            raise IndexError(f"dataset_id {dataset_id} out of range for {len(self.heads)} heads")
        return self.heads[index]

    def forward_head(self, features: torch.Tensor, dataset_id: int | None = None) -> torch.Tensor:
        """Logits (B, K) of one head (default: the first) for pooled features (B, 960); without heads, the features."""
        if not len(self.heads):
            return features
        return self._head(dataset_id)(self.drop(features))

    def forward_metric(self, features: torch.Tensor, dataset_id: int | None = None,
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training outputs of one head: cosines (B, K) and L2-normalised embeddings (B, E).

        Feed them, with ``self.heads[dataset_id].weight``, to `streamact.losses.classification.MetricLearningLoss`.
        """
        return self._head(dataset_id).forward_metric(self.drop(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """First head's logits (B, K) for clips (B, 3, T, H, W)."""
        return self.forward_head(self.forward_features(x))

    def reset_classifier(self, num_classes: int | Sequence[int], *, label_names: Sequence[str] | None = None) -> None:
        """Replace every head with fresh ones (e.g. to fine-tune on another dataset) and update ``pretrained_cfg``.

        Args:
            num_classes: new K, or one K per dataset; 0 removes the heads.
            label_names: class names of the (first) new head, if known.
        """
        self.pretrained_cfg = self.pretrained_cfg.relabel(_first_head_size(num_classes), label_names)
        device = self.out_conv[0].weight.device
        self._build_heads(num_classes)
        self.heads.to(device)

    # -- streaming ---------------------------------------------------------------------------------------
    def non_causal_layers(self) -> list[str]:
        """None: the streaming form re-runs the clip model on past frames only (kept for `to_streaming`)."""
        return []

    def make_causal(self) -> X3DLGD:
        """No-op: the sliding-window streaming form is exact as is (kept for `to_streaming`)."""
        return self

    def init_state(self, batch_size: int = 1) -> StreamState:
        """Zero state for `batch_size` streams at the resolution of ``pretrained_cfg.input_size``.

        The state is ``frames``, a ring buffer (B, 3, clip_len, H, W) of the last preprocessed frames, oldest
        first; zeros (the mean colour after normalisation) until ``clip_len`` frames have arrived. Start again
        from `init_state` at a new video, a scene cut or a long gap.
        """
        c, h, w = self.pretrained_cfg.input_size
        return StreamState(frames=self.out_conv[0].weight.new_zeros(batch_size, c, self.clip_len, h, w))

    def forward_step(self, frame: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Append one frame per stream to the window and classify the window.

        Cost: one full clip (``count_macs`` of ``(1, 3, clip_len, H, W)``) per call. Once ``clip_len`` frames have
        been pushed the output equals ``forward`` on the last ``clip_len`` frames (tested).

        Args:
            frame: (B, 3, H, W) normalised frames.
            state: from `init_state` or the previous call.

        Returns:
            (B, K) logits of the first head, and the new state.
        """
        window = state["frames"]
        if frame.ndim != 4 or frame.shape[:2] != window.shape[:2] or frame.shape[2:] != window.shape[3:]:
            raise ValueError(f"expected frames {(window.shape[0], window.shape[1], *window.shape[3:])}, "
                             f"got {tuple(frame.shape)}")
        window = torch.cat([window[:, :, 1:], frame[:, :, None]], dim=2)  # (B, C, T, H, W): drop the oldest
        return self(window), StreamState(frames=window)


def _create_x3d_lgd(
    variant: str,
    *,
    pretrained: bool = False,
    num_classes: int | Sequence[int] | None = None,
    clip_len: int | None = None,
    num_segments: int | None = None,
    img_size: int = 224,
    label_names: Sequence[str] | None = None,
    dropout: float = 0.0,
    partial_bn: bool = False,
    causal: bool = True,
    **kwargs: Any,
) -> X3DLGD:
    """Build a registered LIGAR variant.

    Args:
        variant: registered name (key of `default_cfgs`).
        pretrained: unsupported: no LIGAR weights are available offline (raises).
        num_classes: K or one K per dataset head; default: the number of ``label_names``, else the variant's.
        clip_len: frames per clip (16 in LIGAR).
        num_segments: the same, under the name the trainer and the TSN builders use; must agree with ``clip_len``.
        img_size: input resolution recorded in ``pretrained_cfg``.
        label_names: class names of the first head.
        dropout: drop probability before the heads (LIGAR: 0).
        partial_bn: unsupported for this model (raises if True).
        causal: accepted for the shared builder interface; the streaming form is exact either way.
        **kwargs: further `X3DLGD` arguments (``lgd_factor``, ``embed_dim``, ``inference_scale``, ``blocks``).

    Returns:
        The model, in training mode.
    """
    del causal  # the ring-buffer streaming form is exact for any model, see X3DLGD
    if pretrained:
        raise ValueError(f"{variant} has no pretrained weights available offline; build it with pretrained=False")
    if partial_bn:
        raise ValueError(f"{variant} does not support partial_bn (it is trained from scratch)")
    if clip_len is not None and num_segments is not None and clip_len != num_segments:
        raise ValueError(f"clip_len={clip_len} contradicts num_segments={num_segments}")
    cfg = default_cfgs[variant]
    clip_len = next(n for n in (clip_len, num_segments, cfg.clip_len) if n is not None)
    if num_classes is None:
        num_classes = len(label_names) if label_names is not None else cfg.num_classes
    first = _first_head_size(num_classes)
    if label_names is not None and len(label_names) != first:
        raise ValueError(f"{len(label_names)} label names for {first} classes")
    cfg = cfg.replace(input_size=(3, img_size, img_size), clip_len=clip_len, num_classes=first,
                      label_names=tuple(label_names) if label_names is not None else None)
    model = X3DLGD(num_classes=num_classes, clip_len=clip_len, dropout=dropout, pretrained_cfg=cfg, **kwargs)
    return model.train()


# Dense clips of 16 frames every 2nd frame, 224 px, ImageNet mean / std (the authors' 0-255 values / 255),
# evaluated on one centred 256 -> 224 crop; 400 classes (Kinetics-400) as for the other models by default.
default_cfgs: dict[str, PretrainedCfg] = {
    "ligar_x3d_mobilenetv3": PretrainedCfg(input_size=(3, 224, 224), clip_len=16, num_segments=None, frame_interval=2,
                                           mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=0.875, num_classes=400),
}


@register_model
def ligar_x3d_mobilenetv3(*, pretrained: bool = False, **kwargs: Any) -> X3DLGD:
    """LIGAR: X3D MobileNetV3-Large + LGD-GC global path + metric head, 16 x 224^2 dense clips."""
    return _create_x3d_lgd("ligar_x3d_mobilenetv3", pretrained=pretrained, **kwargs)
