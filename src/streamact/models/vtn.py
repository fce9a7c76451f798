"""VTN: Video Transformer Network (Kozlov, Andronov, Gritsenko, "Lightweight Network Architecture for Real-Time
Action Recognition", arXiv 1905.08711). Structure and hyper-parameters follow the authors' code
(openvinotoolkit/training_extensions); the streaming form follows the Open Model Zoo action
recognition demo: every frame is encoded once, and the decoder re-runs over the embeddings of the
last T frames at every step.

A 2D CNN embeds each frame into a 512-d vector; a 4-block self-attention decoder relates the T embeddings of a clip;
a linear classifier scores every time step and the clip logits are their mean. The optional RGB-difference and
stacked modalities (section 3.2, Tables 1 and 3) are computed inside the model (`streamact.layers.modality`).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from streamact.layers.attention import DecoderBlock, PositionalEmbedding
from streamact.layers.consensus import AverageConsensus
from streamact.layers.heads import ClassifierHead
from streamact.layers.modality import Modality, widen_input_conv
from streamact.layers.temporal_shift import StreamableTemporalLayer
from streamact.models._pretrained import PretrainedCfg
from streamact.models._registry import register_model
from streamact.models._state import StreamState
from streamact.models.backbones import backbone_cfg, create_backbone
from streamact.models.tsn import fold_time, unfold_time

__all__ = ["VTN", "FrameEncoder", "SelfAttentionDecoder"]


class FrameEncoder(nn.Module):
    """Per-frame embedding: backbone feature map → 1x1 conv (with bias) to ``embed_dim`` → global average pool.

    The reduction is an identity when the backbone already has ``embed_dim`` channels (ResNet-18/34). The pool
    averages whatever spatial size the input gives (7x7 at 224 px, like the original's ``avg_pool2d(7)``).
    """

    def __init__(self, backbone: nn.Module, embed_dim: int) -> None:
        """
        Args:
            backbone: timm model; its ``forward_features`` gives the final feature map (N, C, h, w).
            embed_dim: D.
        """
        super().__init__()
        self.backbone = backbone
        channels = backbone.num_features
        self.reduce = nn.Identity() if channels == embed_dim else nn.Conv2d(channels, embed_dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) frames -> (N, D) embeddings."""
        return self.reduce(self.backbone.forward_features(x)).mean((2, 3))  # (N, D, h, w) -> (N, D)


class SelfAttentionDecoder(nn.Module):
    """Positional embedding followed by `DecoderBlock`s; no causal mask (the window is attended both ways)."""

    def __init__(self, dim: int, *, num_positions: int, num_layers: int = 4, num_heads: int = 8,
                 hidden_dim: int = 1024, dropout: float = 0.1) -> None:
        """
        Args:
            dim: D.
            num_positions: longest sequence, T.
            num_layers: decoder blocks (the paper: 4 is best).
            num_heads: heads per block (the paper: 8, d_k = D / 8).
            hidden_dim: feed-forward width (the original: 2 * D).
            dropout: attention and residual dropout.
        """
        super().__init__()
        self.pos_embed = PositionalEmbedding(num_positions, dim)
        self.blocks = nn.ModuleList(
            DecoderBlock(dim, num_heads, hidden_dim, dropout=dropout) for _ in range(num_layers)
        )

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None,
                key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Decode a sequence of frame embeddings.

        Args:
            x: (B, T, D) embeddings, oldest first.
            positions: (B, T) position of each element (default 0 .. T-1).
            key_valid: (B, T) bool mask of the elements that may be attended to (default: all).

        Returns:
            (B, T, D).
        """
        x = self.pos_embed(x, positions)
        for block in self.blocks:
            x = block(x, key_valid)
        return x


class VTN(nn.Module):
    """Video Transformer Network: per-frame 2D encoder, self-attention decoder, per-step classifier, mean.

    Data flow (B clips of T frames, D = 512, K classes)::

        x (B, 3, T, H, W), normalised
          │ Modality: rgb | rgbdiff (x_t - x_{t-1}) | stacked (6 channels)
          │ fold_time
          ▼
        (B*T, C, H, W) ── 2D backbone feature map ── 1x1 conv → D ── global avg pool
          │ unfold_time
          ▼
        (B, T, D) ── + positional embedding ── 4 x [8-head self-attention, FFN] ──►  (B, T, D)   forward_features
          │ dropout → Linear
          ▼
        (B, T, K) ── mean over T ──► (B, K)                                                       forward_head

    Streaming: the state holds the embeddings of the last T frames (oldest first), how many of them are real, and
    (for the difference modalities) the previous frame. Each `forward_step` encodes the new frame only, shifts it
    into the window and decodes the window. The output equals the offline `forward` of the last min(n, T) frames after
    n frames (tested): during warm-up the empty slots are masked out of the attention and of the mean and the real
    frames take positions 0, 1, ... as offline. (With a difference modality, once n > T the window's oldest frame
    keeps its real predecessor's difference, where an offline clip starts from a zero difference.)

    Attributes:
        modality: computes the encoder input from the normalised RGB frames.
        encoder: `FrameEncoder`.
        decoder: `SelfAttentionDecoder`.
        head: dropout + linear classifier applied to every time step (init N(0, 0.02), bias 0).
        clip_len: T, the length of the positional table: clips may have 1 .. T frames.
        pretrained_cfg: input size, clip length, normalisation and labels of the model.
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        num_classes: int,
        clip_len: int,
        pretrained_cfg: PretrainedCfg,
        modality: str = "rgb",
        embed_dim: int = 512,
        num_layers: int = 4,
        num_heads: int = 8,
        hidden_dim: int = 1024,
        dropout: float = 0.0,
        decoder_dropout: float = 0.1,
    ) -> None:
        """
        Args:
            backbone: timm model whose first conv already takes the modality's channels.
            num_classes: K; 0 makes `forward` return time-averaged decoder features.
            clip_len: T.
            pretrained_cfg: the model's configuration.
            modality: ``"rgb"``, ``"rgbdiff"`` or ``"stacked"``.
            embed_dim: D, frame embedding and decoder width.
            num_layers: decoder blocks.
            num_heads: attention heads per block.
            hidden_dim: feed-forward width.
            dropout: drop probability before the classifier (0 in the original, whose Dropout2d(0.8) is unused).
            decoder_dropout: attention and residual dropout inside the decoder.
        """
        super().__init__()
        self.modality = Modality(modality)
        self.encoder = FrameEncoder(backbone, embed_dim)
        self.decoder = SelfAttentionDecoder(embed_dim, num_positions=clip_len, num_layers=num_layers,
                                            num_heads=num_heads, hidden_dim=hidden_dim, dropout=decoder_dropout)
        self.head = ClassifierHead(embed_dim, num_classes, dropout=dropout, init_std=0.02)
        self.consensus = AverageConsensus()
        self.num_features = embed_dim
        self.clip_len = clip_len
        self.pretrained_cfg = pretrained_cfg

    @property
    def num_classes(self) -> int:
        return self.head.num_classes

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Frame embeddings of clips (B, 3, T, H, W) -> (B, T, D), each frame encoded independently."""
        x = self.modality(x)  # (B, C', T, H, W)
        return unfold_time(self.encoder(fold_time(x)), x.shape[2])  # (B*T, D) -> (B, T, D)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Decoded per-step features.

        Args:
            x: clips (B, 3, T, H, W), normalised as in ``pretrained_cfg``, 1 <= T <= ``clip_len``.

        Returns:
            (B, T, D).

        Raises:
            ValueError: if the clip is longer than the positional table.
        """
        t = x.shape[2]
        if not 1 <= t <= self.clip_len:
            raise ValueError(f"VTN was built for clips of 1 to {self.clip_len} frames (its positional table), "
                             f"got {t}")
        return self.decoder(self.encode(x))

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        """Classify every step and average: (B, T, D) -> (B, K)."""
        return self.consensus(self.head(x))  # (B, T, K) -> (B, K)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Clip logits (B, K) for clips (B, 3, T, H, W)."""
        return self.forward_head(self.forward_features(x))

    # -- streaming ---------------------------------------------------------------------------------------
    # The interface the streaming tools share with TSN. VTN's frames interact only in the decoder, which re-runs
    # over the window of past frames at every step, so there is nothing to convert: it is causal as built.
    def temporal_layers(self) -> list[tuple[str, StreamableTemporalLayer]]:
        """No temporal layers inside the encoder: an empty list."""
        return []

    def non_causal_layers(self) -> list[str]:
        """Nothing reads future frames: an empty list."""
        return []

    def make_causal(self) -> VTN:
        """No-op (the streaming form needs no conversion); returns the model."""
        return self

    def init_state(self, batch_size: int = 1) -> StreamState:
        """Zero state for ``batch_size`` streams at the resolution of ``pretrained_cfg.input_size``.

        Entries: ``prev_frame`` (B, 3, H, W), the last frame (difference modalities only); ``embeddings`` (B, T, D),
        the window of frame embeddings, oldest first, real ones at the end; ``count`` (B, 1), how many slots are
        real (saturates at T). Call it again (or zero the state) when the stream jumps: new video, scene cut,
        camera switch, long gap of dropped frames.
        """
        ref = self.decoder.pos_embed.weight
        c, h, w = self.pretrained_cfg.input_size
        state = StreamState()
        if self.modality.needs_previous_frame:
            state["prev_frame"] = ref.new_zeros(batch_size, c, h, w)
        state["embeddings"] = ref.new_zeros(batch_size, self.clip_len, self.num_features)
        state["count"] = ref.new_zeros(batch_size, 1)
        return state

    def forward_step(self, frame: torch.Tensor, state: StreamState) -> tuple[torch.Tensor, StreamState]:
        """Process one new frame per stream: one encoder pass plus one decoder pass over the window.

        Args:
            frame: (B, 3, H, W) normalised frames.
            state: from `init_state` or the previous call.

        Returns:
            (B, K) logits of the window, and the new state. After n frames from a zero state the logits equal the
            offline `forward` of the last min(n, T) frames, except that with a difference modality the window's
            oldest frame keeps its difference from the frame before it once n > T.
        """
        count = state["count"]  # (B, 1) real frames in the window before this one
        new_state = StreamState()
        x = frame
        if self.modality.needs_previous_frame:
            x, new_state["prev_frame"] = self.modality.step(frame, state["prev_frame"], (count > 0).to(frame.dtype))
        embedding = self.encoder(x)  # (B, D)
        window = torch.cat([state["embeddings"][:, 1:], embedding[:, None].to(count.dtype)], dim=1)  # (B, T, D)
        count = torch.clamp(count + 1, max=self.clip_len)
        # Real frames fill the last `count` slots; they take positions 0, 1, ... exactly as in an offline clip.
        slots = torch.arange(self.clip_len, dtype=count.dtype, device=count.device)  # (T,)
        first = self.clip_len - count  # (B, 1) slot of the oldest real frame
        valid = slots >= first  # (B, T)
        positions = (slots - first).clamp(min=0).long()  # (B, T)
        step_logits = self.head(self.decoder(window, positions, valid))  # (B, T, K)
        logits = (step_logits * valid[..., None].to(step_logits.dtype)).sum(1) / count  # mean over real steps
        new_state["embeddings"], new_state["count"] = window, count
        return logits, new_state

    def reset_classifier(self, num_classes: int, *, label_names: Sequence[str] | None = None) -> None:
        """Replace the classifier (e.g. to fine-tune on another dataset) and update ``pretrained_cfg``.

        Args:
            num_classes: new K; 0 removes the classifier.
            label_names: class names of the new classifier, if known.
        """
        self.pretrained_cfg = self.pretrained_cfg.relabel(num_classes, label_names)
        self.head.reset(num_classes)


def _create_vtn(
    variant: str,
    *,
    pretrained: bool = False,
    num_classes: int | None = None,
    num_segments: int = 16,
    modality: str = "rgb",
    dropout: float = 0.0,
    decoder_dropout: float = 0.1,
    partial_bn: bool = False,
    causal: bool = True,
    img_size: int = 224,
    label_names: Sequence[str] | None = None,
    **backbone_kwargs: Any,
) -> VTN:
    """Build a registered VTN variant.

    backbone (timm, ImageNet weights if ``pretrained``) → widen the first conv for ``stacked`` → VTN wrapper.

    Args:
        variant: registered name; its `default_cfgs` entry gives the backbone.
        pretrained: ImageNet-initialised backbone (only EfficientNet-Lite0 has ImageNet weights offline).
        num_classes: K; default: the number of ``label_names`` if given, else 400 (Kinetics-400).
        num_segments: T, frames per clip and length of the decoder window (the name every recognizer builder
            takes; VTN trains on dense clips, 16 frames at frame_interval 2).
        modality: ``"rgb"``, ``"rgbdiff"`` (difference of adjacent normalised frames) or ``"stacked"`` (both, six
            input channels; the extra channels of the first conv start as a copy of its RGB kernel, see
            `streamact.layers.modality.widen_input_conv`).
        dropout: drop probability before the classifier.
        decoder_dropout: attention and residual dropout in the decoder (the original: 0.1).
        partial_bn: not supported (a TSN option); must be False.
        causal: accepted for a uniform builder interface; no effect, VTN streams exactly as built.
        img_size: default input resolution recorded in ``pretrained_cfg``.
        label_names: class names, recorded in ``pretrained_cfg``.
        **backbone_kwargs: passed to `create_backbone` (e.g. ``drop_path_rate``).

    Returns:
        The model, in training mode.
    """
    if partial_bn:
        raise ValueError("partial_bn is a TSN option; VTN trains every BatchNorm, as the original")
    spec = default_cfgs[variant]
    if label_names is not None:
        label_names = tuple(label_names)
        if num_classes is None:
            num_classes = len(label_names)
        elif len(label_names) != num_classes:
            raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
    num_classes = spec.cfg.num_classes if num_classes is None else num_classes
    backbone = create_backbone(spec.backbone, pretrained=pretrained, **backbone_kwargs)
    channel_factor = Modality(modality).channel_factor
    if channel_factor > 1:
        widen_input_conv(backbone, 3 * channel_factor)
    cfg = spec.cfg.replace(input_size=(3, img_size, img_size), clip_len=num_segments, num_classes=num_classes,
                           label_names=label_names)
    model = VTN(backbone, num_classes=num_classes, clip_len=num_segments, pretrained_cfg=cfg, modality=modality,
                dropout=dropout, decoder_dropout=decoder_dropout)
    return model.train()


@dataclass(frozen=True)
class _Variant:
    """What a registered name stands for."""

    backbone: str  # name for `create_backbone`
    cfg: PretrainedCfg  # defaults; the builder fills in clip length, classes and resolution


def _variant(backbone: str) -> _Variant:
    bcfg = backbone_cfg(backbone)
    # Dense 16-frame clips at stride 2 (a ~1 s window at 30 fps), as trained by the authors and in the OMZ model cards.
    return _Variant(backbone, PretrainedCfg(clip_len=16, num_segments=None, frame_interval=2, mean=bcfg.mean,
                                            std=bcfg.std, num_classes=400))


default_cfgs: dict[str, _Variant] = {
    "vtn_mobilenetv2_100": _variant("mobilenetv2_100"),
    "vtn_efficientnet_lite0": _variant("efficientnet_lite0"),
    "vtn_resnet34": _variant("resnet34"),
}


@register_model
def vtn_mobilenetv2_100(*, pretrained: bool = False, **kwargs: Any) -> VTN:
    """VTN on MobileNetV2-1.0 (1280 channels reduced to 512): paper Tables 3 and 5, OMZ
    driver-action-recognition-adas-0002."""
    return _create_vtn("vtn_mobilenetv2_100", pretrained=pretrained, **kwargs)


@register_model(weights="imagenet")
def vtn_efficientnet_lite0(*, pretrained: bool = False, **kwargs: Any) -> VTN:
    """VTN on EfficientNet-Lite0 (ImageNet weights available offline; 1280 channels reduced to 512)."""
    return _create_vtn("vtn_efficientnet_lite0", pretrained=pretrained, **kwargs)


@register_model
def vtn_resnet34(*, pretrained: bool = False, **kwargs: Any) -> VTN:
    """VTN on ResNet-34 (512 channels, no reduction): the paper's main model, OMZ action-recognition-0001."""
    return _create_vtn("vtn_resnet34", pretrained=pretrained, **kwargs)
