"""TSN, TSM and MixTConv recognizers on 2D timm backbones.

- TSN: Wang et al., "Temporal Segment Networks", ECCV 2016; as the real-time baseline of Zhang et al.,
  "Towards Real-Time Action Recognition on Mobile Devices Using Deep Models", arXiv 1906.07052, which also adds
  dropout, partial BN and SE / TSM to MnasNet (sections 5.3, 5.4).
- TSM: Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV 2019.
- MixTConv (MSTNet): Shan et al., "MixTConv: Mixed Temporal Convolutional Kernels for Efficient Action
  Recognition", arXiv 2001.06769.

All three share one recognizer: frames are folded into the batch, a 2D backbone (optionally with temporal
layers inserted into its residual blocks) embeds each frame, a dropout + linear head scores each frame, and
the scores are averaged over time. TSM and MixTConv differ from TSN only in the inserted temporal layer.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from streamact.data.synthetic import GESTURE_CLASSES
from streamact.inference.events import EventCfg
from streamact.layers.consensus import AverageConsensus
from streamact.layers.heads import ClassifierHead
from streamact.layers.mixtconv import MixTConv, insert_mixtconv
from streamact.layers.squeeze_excite import insert_se
from streamact.layers.temporal_shift import StreamableTemporalLayer, TemporalShift, insert_temporal_shift
from streamact.models._pretrained import WEIGHTS_DIR, PretrainedCfg, load_weights
from streamact.models._registry import register_model
from streamact.models._state import StreamState
from streamact.models.backbones import backbone_cfg, create_backbone

__all__ = ["TSN", "fold_time", "unfold_time"]


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """Fold time into the batch: (B, C, T, H, W) -> (B*T, C, H, W), frames of one clip contiguous."""
    return x.transpose(1, 2).flatten(0, 1)  # (B, T, C, H, W) -> (B*T, C, H, W)


def unfold_time(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Inverse of `fold_time` for per-frame outputs: (B*T, ...) -> (B, T, ...)."""
    return x.reshape(-1, num_frames, *x.shape[1:])  # (B, T, ...)


class TSN(nn.Module):
    """Segment-based recognizer: per-frame 2D backbone, per-frame classifier, average consensus.

    Data flow (B clips of T frames, D backbone features, K classes)::

        x (B, C, T, H, W), normalised
          │ fold_time
          ▼
        (B*T, C, H, W) ── 2D backbone (+ TemporalShift / MixTConv before the first 1x1 conv of each
          │                residual block: the only place frames of a clip interact) ── global avg pool
          ▼
        (B*T, D) ── unfold_time ──► (B, T, D)        forward_features
          │ dropout → Linear
          ▼
        (B, T, K) ── average over T ──► (B, K)        forward_head → logits

    Attributes:
        backbone: timm model returning pooled features (``num_classes=0``).
        head: dropout + linear classifier applied to every frame.
        num_segments: T the temporal layers were built for.
        partial_bn: BatchNorm layers after the first stay in eval mode with frozen affine parameters while
            training (TSN's partial BN, as in the real-time mobile paper, section 5.3).
        pretrained_cfg: input size, clip length, normalisation and labels of the model.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        num_segments: int,
        dropout: float = 0.5,
        partial_bn: bool = False,
        pretrained_cfg: PretrainedCfg,
    ) -> None:
        """
        Args:
            backbone: timm model built with ``num_classes=0``, temporal layers already inserted.
            num_classes: K; 0 makes `forward` return time-averaged features.
            num_segments: T, frames per clip.
            dropout: drop probability before the classifier.
            partial_bn: freeze every BatchNorm but the first during training.
            pretrained_cfg: the model's configuration.
        """
        super().__init__()
        self.backbone = backbone
        self.num_features: int = backbone.num_features
        self.num_segments = num_segments
        self.head = ClassifierHead(self.num_features, num_classes, dropout=dropout)
        self.consensus = AverageConsensus()
        self.partial_bn = partial_bn
        self.pretrained_cfg = pretrained_cfg
        # Temporal layers reshape by num_segments, so a clip of another length would silently mix clips.
        self.has_temporal_layers = any(isinstance(m, (TemporalShift, MixTConv)) for m in backbone.modules())
        self.train()

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def train(self, mode: bool = True) -> TSN:
        """Set training mode; with ``partial_bn``, every BatchNorm but the first stays frozen in eval mode."""
        super().train(mode)
        if self.partial_bn:
            bns = [m for m in self.backbone.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
            for bn in bns[1:]:
                bn.eval()  # use (and keep) the pretrained running statistics
                for p in (bn.weight, bn.bias):
                    if p is not None:
                        p.requires_grad_(False)
        return self

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Per-frame features.

        A causal model also takes clips longer than ``num_segments`` (T): the extra leading frames are the stream's
        past, which its temporal layers carry forward (see `forward`).

        Args:
            x: clips (B, C, T', H, W), normalised as in ``pretrained_cfg``; T' = T, or T' > T for a causal model.

        Returns:
            (B, T', D) pooled backbone features.

        Raises:
            ValueError: if the model has temporal layers and T' is not T (or, causal, shorter than T).
        """
        t = x.shape[2]
        if self.has_temporal_layers and t != self.num_segments and (t < self.num_segments or self.non_causal_layers()):
            raise ValueError(f"model was built for num_segments={self.num_segments}, got clips of {t} frames (only a "
                             "causal model takes longer clips)")
        with self._clip_length(t):
            feats = self.backbone(fold_time(x))  # (B*T', D)
        return unfold_time(feats, t)  # (B, T', D)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Classify every frame and average the last T: (B, T', D) -> (B, K)."""
        return self.consensus(self.head(x[:, -self.num_segments :]))  # (B, T, K) -> (B, K)

    def forward_head_steps(self, x: torch.Tensor, num_outputs: int) -> torch.Tensor:
        """The clip logits at each of the last `num_outputs` frames: (B, T', D) -> (B, num_outputs, K).

        Output j averages the T per-frame logits ending at frame T' - num_outputs + j, the ring buffer of the
        streaming engine at that frame; `forward_head` is the last of them. For a causal model and
        T' >= T + `stream_context` + num_outputs - 1 every output is exactly the streamed one (training on stream
        windows with several labelled frames, `data.stream_outputs`).
        """
        span = num_outputs + self.num_segments - 1
        if x.shape[1] < span:
            raise ValueError(f"{num_outputs} outputs of {self.num_segments}-frame averages need {span} frames, got "
                             f"{x.shape[1]}")
        frame_logits = self.head(x[:, -span:])  # (B, span, K)
        return frame_logits.unfold(1, self.num_segments, 1).mean(-1)  # (B, num_outputs, K, T) -> (B, num_outputs, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip logits (B, K) for clips (B, C, T', H, W).

        For a causal model and T' >= T + `stream_context` this is exactly what `forward_step` returns after the
        clip's last frame, however long the stream before it: the last T per-frame logits are averaged (the ring
        buffer), and each of them sees the `stream_context` frames before it through the temporal layers, as the
        layer caches do. Training on such clips trains the model as it streams.
        """
        return self.forward_head(self.forward_features(x))

    @property
    def stream_context(self) -> int:
        """Frames before the T averaged ones that a streamed output depends on: the temporal layers are in series,
        so their reaches add up (9 for TSM on EfficientNet-Lite0, one frame per shifted block)."""
        return sum(layer.past_frames for _, layer in self.temporal_layers())

    @contextlib.contextmanager
    def _clip_length(self, num_frames: int) -> Iterator[None]:
        """Let the temporal layers fold clips of `num_frames` frames for one pass (they reshape by T)."""
        layers = [layer for _, layer in self.temporal_layers()]
        saved = [layer.num_segments for layer in layers]
        for layer in layers:
            layer.num_segments = num_frames
        try:
            yield
        finally:
            for layer, n in zip(layers, saved):
                layer.num_segments = n

    # -- streaming ---------------------------------------------------------------------------------------
    def temporal_layers(self) -> list[tuple[str, StreamableTemporalLayer]]:
        """Inserted temporal layers in network order, with their qualified names."""
        return [(n, m) for n, m in self.backbone.named_modules() if isinstance(m, StreamableTemporalLayer)]

    def non_causal_layers(self) -> list[str]:
        """Names of temporal layers that read future frames (bi-directional shift, centred MixTConv)."""
        return [name for name, layer in self.temporal_layers() if not layer.is_causal]

    def make_causal(self) -> TSN:
        """Convert in place to the causal form that `forward_step` runs (TSM: uni-directional shift; MixTConv:
        future taps dropped). A model trained bi-directionally loses accuracy this way until fine-tuned causally."""
        for _, layer in self.temporal_layers():
            layer.make_causal()
        return self

    def init_state(self, batch_size: int = 1) -> StreamState:
        """Zero state for `batch_size` streams at the resolution of ``pretrained_cfg.input_size``.

        State entries: one cache per temporal layer (``<layer>.cache<i>``) and a ring buffer of the last T
        per-frame logits with a fill counter, so the streamed output is the average over the last T frames
        (the offline consensus). Call it again (or zero the state) whenever the stream jumps: new video, scene
        cut, camera switch, or a long gap of dropped frames.
        """
        c, h, w = self.pretrained_cfg.input_size
        with torch.no_grad():
            # A probe pass on a zero frame discovers the cache shapes of every layer (they depend on the input size).
            _, state = self._step(next(self.parameters()).new_zeros(batch_size, c, h, w), None)  # model's device
        return state.zeros_like()

    def forward_step(self, frame: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Process one new frame per stream, reusing everything computed for the previous frames.

        Cost: one 2D backbone pass and a T-frame average. For a causal model started from `init_state`, the
        output after T frames equals the offline `forward` of those T frames (tested); later outputs average
        the last T per-frame logits while the layer caches carry the temporal context forward.

        Args:
            frame: (B, C, H, W) normalised frames.
            state: from `init_state` or the previous call.

        Returns:
            (B, K) logits averaged over the last T frames, and the new state.
        """
        return self._step(frame, state)

    def _step(self, frame: torch.Tensor, state: StreamState | None) -> tuple[torch.Tensor, StreamState]:
        layers = self.temporal_layers()
        new_state = StreamState()
        for name, layer in layers:
            layer.stream_cache = [] if state is None else [v for k, v in state.items() if k.startswith(name + ".cache")]
        try:
            feats = self.backbone(frame)  # (B, D)
            for name, layer in layers:
                for i, cache in enumerate(layer.stream_cache):
                    new_state[f"{name}.cache{i}"] = cache
        finally:
            for _, layer in layers:
                layer.stream_cache = None
        frame_logits = self.head(feats[:, None])  # (B, 1, K)
        if state is None:
            buffer = frame_logits.new_zeros(frame.shape[0], self.num_segments, frame_logits.shape[-1])
            count = frame_logits.new_zeros(frame.shape[0], 1)
        else:
            buffer, count = state["logit_buffer"], state["count"]
        buffer = torch.cat([buffer[:, 1:], frame_logits], dim=1)  # (B, T, K): drop the oldest frame
        count = torch.clamp(count + 1, max=self.num_segments)  # (B, 1) frames in the window so far
        new_state["logit_buffer"], new_state["count"] = buffer, count
        return buffer.sum(1) / count, new_state

    def reset_classifier(self, num_classes: int, *, label_names: Sequence[str] | None = None) -> None:
        """Replace the classifier (e.g. to fine-tune on another dataset) and update ``pretrained_cfg``.

        Args:
            num_classes: new K; 0 removes the classifier.
            label_names: class names of the new classifier, if known.
        """
        self.pretrained_cfg = self.pretrained_cfg.relabel(num_classes, label_names)
        self.head.reset(num_classes)


def _create_tsn(
    variant: str,
    *,
    pretrained: bool = False,
    num_classes: int | None = None,
    num_segments: int = 8,
    dropout: float = 0.5,
    partial_bn: bool = False,
    causal: bool = False,
    bidirectional: bool | None = None,
    fold_div: int = 8,
    img_size: int = 224,
    label_names: Sequence[str] | None = None,
    **backbone_kwargs: Any,
) -> TSN:
    """Build a registered TSN / TSM / MixTConv variant.

    backbone (timm, ImageNet weights if ``pretrained``) → insert SE → insert temporal layers → TSN wrapper.

    Args:
        variant: registered name; its `default_cfgs` entry gives the backbone and the temporal layer.
        pretrained: the variant's own weights if it ships them (``pretrained_cfg.weights``), otherwise an
            ImageNet-initialised backbone (only EfficientNet-Lite0 has ImageNet weights offline).
        num_classes: K; default: the number of ``label_names`` if given, else the variant's (400, Kinetics-400,
            the setting of the papers' complexity tables, unless it ships weights for other classes).
        num_segments: T, frames per clip.
        dropout: drop probability before the classifier (TSM / MixTConv recipes use 0.5; the real-time
            mobile paper uses 0.8).
        partial_bn: freeze every BatchNorm but the first while training.
        causal: uni-directional shift (TSM) or left-padded kernels (MixTConv), for streaming; no effect on TSN.
        bidirectional: TSM spelling of ``not causal``; leave ``None`` or pass a consistent value.
        fold_div: ``C // fold_div`` channels shift each way (per group for MixTConv's shift-like init).
        img_size: default input resolution recorded in ``pretrained_cfg``.
        label_names: class names, recorded in ``pretrained_cfg`` (default: the variant's, if any).
        **backbone_kwargs: passed to `create_backbone` (e.g. ``drop_path_rate``).

    Returns:
        The model, in training mode.
    """
    if bidirectional is not None:
        if bidirectional and causal:
            raise ValueError("causal=True contradicts bidirectional=True")
        causal = not bidirectional
    spec = default_cfgs[variant]
    if label_names is not None:
        label_names = tuple(label_names)
        if num_classes is None:
            num_classes = len(label_names)
        elif len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
    elif num_classes is None or num_classes == spec.cfg.num_classes:
        label_names = spec.cfg.label_names
    num_classes = spec.cfg.num_classes if num_classes is None else num_classes
    own_weights = pretrained and spec.cfg.weights is not None
    backbone = create_backbone(spec.backbone, pretrained=pretrained and not own_weights, **backbone_kwargs)
    if spec.se:
        insert_se(backbone)
    if spec.temporal == "shift":
        insert_temporal_shift(backbone, num_segments, fold_div=fold_div, bidirectional=not causal)
    elif spec.temporal == "mixtconv":
        insert_mixtconv(backbone, num_segments, fold_div=fold_div, causal=causal)
    cfg = spec.cfg.replace(input_size=(3, img_size, img_size), clip_len=num_segments,
                           num_segments=num_segments if spec.cfg.num_segments is not None else None)
    if not own_weights:
        cfg = cfg.replace(num_classes=num_classes, label_names=label_names)
    model = TSN(
        backbone,
        num_classes=cfg.num_classes,
        num_segments=num_segments,
        dropout=dropout,
        partial_bn=partial_bn,
        pretrained_cfg=cfg,
    )
    if own_weights:
        # Shipped weights include their classifier: load it as trained, then replace it to fine-tune elsewhere.
        load_weights(model, WEIGHTS_DIR / spec.cfg.weights)
        if (num_classes, label_names) != (cfg.num_classes, cfg.label_names):
            model.reset_classifier(num_classes, label_names=label_names)
    return model


@dataclass(frozen=True)
class _Variant:
    """What a registered name stands for."""

    backbone: str  # name for `create_backbone`
    temporal: str | None  # "shift", "mixtconv" or None (plain TSN)
    se: bool  # squeeze-excitation in the residual inverted-residual blocks
    cfg: PretrainedCfg  # defaults; the builder fills in clip length, classes and resolution


def _variant(backbone: str, temporal: str | None, *, se: bool = False) -> _Variant:
    bcfg = backbone_cfg(backbone)
    return _Variant(backbone, temporal, se, PretrainedCfg(mean=bcfg.mean, std=bcfg.std))


_BACKBONE_NAMES = ("mobilenetv2_100", "mnasnet_100", "efficientnet_lite0", "resnet18", "resnet50")
default_cfgs: dict[str, _Variant] = {
    **{f"tsn_{b}": _variant(b, None) for b in _BACKBONE_NAMES},
    **{f"tsm_{b}": _variant(b, "shift") for b in _BACKBONE_NAMES},
    **{f"mixtconv_{b}": _variant(b, "mixtconv") for b in _BACKBONE_NAMES},
    "tsn_se_mnasnet_100": _variant("mnasnet_100", None, se=True),
    "tsm_se_mnasnet_100": _variant("mnasnet_100", "shift", se=True),
    # The bundled default: causal TSM fine-tuned on synthetic gestures (docs/MODEL_CARD_gestures.md).
    "tsm_efficientnet_lite0_gestures": _Variant("efficientnet_lite0", "shift", False, PretrainedCfg(
        input_size=(3, 112, 112), clip_len=8, num_segments=None, frame_interval=2,
        mean=backbone_cfg("efficientnet_lite0").mean, std=backbone_cfg("efficientnet_lite0").std,
        num_classes=len(GESTURE_CLASSES), label_names=tuple(GESTURE_CLASSES),
        weights="tsm_efficientnet_lite0_gestures.safetensors")),
    # The default since it was trained on continuous streams (docs/MODEL_CARD_stream_gestures.md): the same network,
    # averaging 4 frames instead of 8.
    "tsm_efficientnet_lite0_stream_gestures": _Variant("efficientnet_lite0", "shift", False, PretrainedCfg(
        input_size=(3, 112, 112), clip_len=4, num_segments=None, frame_interval=2,
        mean=backbone_cfg("efficientnet_lite0").mean, std=backbone_cfg("efficientnet_lite0").std,
        num_classes=len(GESTURE_CLASSES), label_names=tuple(GESTURE_CLASSES),
        weights="tsm_efficientnet_lite0_stream_gestures.safetensors",
        # Tuned on the validation streams (bench/stream_recognition.py, docs/RESULTS.md).
        events=EventCfg(alpha=0.5, on_threshold=0.7, min_frames=2, off_threshold=0.4, release_frames=1,
                        early_margin=0.9, late_threshold=0.3, switch_frames=16))),
}


@register_model
def tsn_mobilenetv2_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on MobileNetV2-1.0 (real-time mobile paper, Table 2)."""
    return _create_tsn("tsn_mobilenetv2_100", pretrained=pretrained, **kwargs)


@register_model
def tsn_mnasnet_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on MnasNet-B1 1.0, the baseline of the real-time mobile paper, sections 5.3-5.4."""
    return _create_tsn("tsn_mnasnet_100", pretrained=pretrained, **kwargs)


@register_model(weights="imagenet")
def tsn_efficientnet_lite0(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on EfficientNet-Lite0 (ImageNet weights available offline)."""
    return _create_tsn("tsn_efficientnet_lite0", pretrained=pretrained, **kwargs)


@register_model
def tsn_resnet18(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on ResNet-18."""
    return _create_tsn("tsn_resnet18", pretrained=pretrained, **kwargs)


@register_model
def tsn_resnet50(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on ResNet-50 (real-time mobile paper, Table 1; the baseline of MixTConv's Table 1)."""
    return _create_tsn("tsn_resnet50", pretrained=pretrained, **kwargs)


@register_model
def tsn_se_mnasnet_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSN on MnasNet-B1 with SE in its 10 residual blocks (real-time mobile paper, Table 6, "SE")."""
    return _create_tsn("tsn_se_mnasnet_100", pretrained=pretrained, **kwargs)


@register_model
def tsm_mobilenetv2_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM on MobileNetV2-1.0: shift in the 10 residual blocks, as in the TSM online demo."""
    return _create_tsn("tsm_mobilenetv2_100", pretrained=pretrained, **kwargs)


@register_model
def tsm_mnasnet_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM on MnasNet-B1 1.0 (real-time mobile paper, Table 6, "TSM")."""
    return _create_tsn("tsm_mnasnet_100", pretrained=pretrained, **kwargs)


@register_model(weights="imagenet")
def tsm_efficientnet_lite0(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM on EfficientNet-Lite0: shift in its 9 residual blocks."""
    return _create_tsn("tsm_efficientnet_lite0", pretrained=pretrained, **kwargs)


@register_model
def tsm_resnet18(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM on ResNet-18: residual shift in every block."""
    return _create_tsn("tsm_resnet18", pretrained=pretrained, **kwargs)


@register_model
def tsm_resnet50(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM on ResNet-50: residual shift in every Bottleneck (TSM "blockres")."""
    return _create_tsn("tsm_resnet50", pretrained=pretrained, **kwargs)


@register_model
def tsm_se_mnasnet_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """TSM + SE on MnasNet-B1, 10 of each (real-time mobile paper, Table 6, "TSM + SE + dropout": ``dropout=0.8``)."""
    return _create_tsn("tsm_se_mnasnet_100", pretrained=pretrained, **kwargs)


@register_model
def mixtconv_mobilenetv2_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """MixTConv on MobileNetV2-1.0, before the expansion conv of each residual block."""
    return _create_tsn("mixtconv_mobilenetv2_100", pretrained=pretrained, **kwargs)


@register_model
def mixtconv_mnasnet_100(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """MixTConv on MnasNet-B1 1.0."""
    return _create_tsn("mixtconv_mnasnet_100", pretrained=pretrained, **kwargs)


@register_model(weights="imagenet")
def mixtconv_efficientnet_lite0(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """MixTConv on EfficientNet-Lite0."""
    return _create_tsn("mixtconv_efficientnet_lite0", pretrained=pretrained, **kwargs)


@register_model
def mixtconv_resnet18(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """MixTConv on ResNet-18."""
    return _create_tsn("mixtconv_resnet18", pretrained=pretrained, **kwargs)


@register_model
def mixtconv_resnet50(*, pretrained: bool = False, **kwargs: Any) -> TSN:
    """MSTNet: MixTConv (kernels 1, 3, 5, 7) before conv1 of every ResNet-50 Bottleneck (MixTConv paper)."""
    return _create_tsn("mixtconv_resnet50", pretrained=pretrained, **kwargs)


@register_model(weights="action")
def tsm_efficientnet_lite0_gestures(*, pretrained: bool = False, causal: bool = True, img_size: int = 112,
                                    **kwargs: Any) -> TSN:
    """The bundled streaming model: causal TSM on EfficientNet-Lite0 (ImageNet init) trained on the 15 synthetic
    gesture classes, 8 frames at frame_interval 2, 112 px. ``pretrained=True`` loads the shipped weights."""
    return _create_tsn("tsm_efficientnet_lite0_gestures", pretrained=pretrained, causal=causal, img_size=img_size,
                       **kwargs)


@register_model(weights="action")
def tsm_efficientnet_lite0_stream_gestures(*, pretrained: bool = False, causal: bool = True, img_size: int = 112,
                                           num_segments: int = 4, **kwargs: Any) -> TSN:
    """The bundled default streaming model: `tsm_efficientnet_lite0_gestures` fine-tuned on windows of continuous
    gesture streams labelled by their last frame, averaging the last 4 frames at frame_interval 2.
    ``pretrained=True`` loads the shipped weights."""
    return _create_tsn("tsm_efficientnet_lite0_stream_gestures", pretrained=pretrained, causal=causal,
                       img_size=img_size, num_segments=num_segments, **kwargs)
