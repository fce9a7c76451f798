"""AMMA: online spatio-temporal action detection with accumulated micro-motion on 2D backbones.

Liu, Yang, Ginhac, "Accumulated Micro-Motion Representations for Lightweight Online Action Detection in
Real-Time" (J. Visual Communication and Image Representation, 2023). A tubelet detector in the style of
"Actions as Moving Points" (MOC): K clips of t consecutive frames each are embedded one clip at a time (the
appearance of the clip's last frame, fused with a motion image computed from the whole clip), and a head over
the K cached clip features predicts, per class, action centres at the last clip's last frame, the movement of
each centre back through the K clips, and a box size per clip.

Where the authors' released code and the paper differ, this follows the paper: clips of t = 4 frames whose 3
micro-motion maps use every earlier frame (the code reads 5 frames and ignores one), contiguous clips (a tubelet
spans K*t frames), and bilinear upsampling (the code uses nearest). The neck's deformable convolution (DCNv2)
is replaced by a plain 3x3 convolution, which exports to ONNX / OpenVINO without custom operators and saves
DCNv2's 27-channel offset/mask convolution (512*27*9 weights, ~0.12 M params and ~10 MMACs at 288x288 for the
ResNet-18 variant) and its bilinear sampling.

Variants: ``amma_resnet18`` (AMMA_18), ``amma_mobilenetv2`` (AMMA_M), ``amma_shufflenetv2`` (AMMA_S) and
``amma_efficientnet_lite0``; ``amma_efficientnet_lite0_actions`` is the last one trained on the synthetic action set and
shipped with the package (docs/MODEL_CARD_detection.md). Only EfficientNet-Lite0 has ImageNet weights offline; the paper initialises the
others from COCO / ImageNet checkpoints that are not available here, so they train from scratch.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from streamact.data.synthetic import DETECTION_CLASSES
from streamact.layers.micro_motion import MicroMotion
from streamact.models._pretrained import WEIGHTS_DIR, PretrainedCfg, load_weights
from streamact.models._registry import register_model
from streamact.models._state import StreamState
from streamact.models.backbones import backbone_cfg, create_backbone

__all__ = ["AMMA", "TubeletOutput", "TubeletHead", "UpsampleNeck", "with_more_clips"]

FEATURE_DIM = 512  # backbone output channels entering the neck (ResNet-18's; the others are shrunk to it)
NECK_DIM = 256  # D, channels of one clip feature
HEAD_DIM = 64  # per-clip channels after the head's shrink (D / 4, "to gain efficiency")
CLIP_DIM = HEAD_DIM + 2  # per clip, cached while streaming: the shrunk channels and the box size (w, h)
MAX_FUSIONS = 3
MOTION_ENTRIES = ("lateral", "input")


class TubeletOutput(NamedTuple):
    """Head outputs on the output grid (H/8, W/8), for the K clips of a tubelet.

    Attributes:
        heatmap: (B, num_classes, h, w) centre probabilities (sigmoid applied) at the last clip's key frame.
        movement: (B, 2K, h, w) (dx, dy) of each clip's centre relative to the key-frame centre, in grid cells.
        size: (B, 2K, h, w) (w, h) of each clip's box, in grid cells.
    """

    heatmap: torch.Tensor
    movement: torch.Tensor
    size: torch.Tensor


def _conv_bn_relu(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


def _bilinear_upsampling_init_(deconv: nn.ConvTranspose2d) -> None:
    """Initialise a stride-2 transposed convolution as bilinear upsampling of every channel (CenterNet)."""
    k = deconv.kernel_size[0]
    f = (k + 1) // 2
    c = (k - 1) / (2 * f) if k % 2 == 1 else f - 0.5
    ramp = 1 - (torch.arange(k, dtype=torch.float32) / f - c / f).abs()
    with torch.no_grad():
        deconv.weight.zero_()
        for i in range(min(deconv.in_channels, deconv.out_channels)):
            deconv.weight[i, i] = ramp[:, None] * ramp[None, :]


class UpsampleNeck(nn.Module):
    """Backbone features (B, 512, H/32, W/32) -> clip feature (B, 256, H/8, W/8).

    One up-layer (the paper reduces CenterNet's three to one): 3x3 conv + BN + ReLU (in place of DCNv2), a 4x4
    stride-2 transposed conv initialised as bilinear upsampling + BN + ReLU, then bilinear upsampling by 2.
    """

    def __init__(self, in_dim: int = FEATURE_DIM, out_dim: int = NECK_DIM) -> None:
        super().__init__()
        self.conv = _conv_bn_relu(in_dim, out_dim, 3)
        self.up = nn.ConvTranspose2d(out_dim, out_dim, 4, stride=2, padding=1, bias=False)
        _bilinear_upsampling_init_(self.up)
        self.up_bn = nn.BatchNorm2d(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.up_bn(self.up(self.conv(x))))  # (B, 256, H/16, W/16)
        return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)  # (B, 256, H/8, W/8)


def _branch(cin: int, mid: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, mid, 3, padding=1), nn.ReLU(True), nn.Conv2d(mid, cout, 1))


class TubeletHead(nn.Module):
    """Centre, movement and box branches over K clip features.

    Data flow (K clips, C classes)::

        K x (B, 256, h, w) ── per clip: 1x1 conv 256 -> 64 + BN ──► K x (B, 64, h, w)       forward_clip
          ├─ per clip (B, 64, h, w) ─► 3x3 conv -> 64, ReLU, 1x1 -> 2, stacked    size     (B, 2K, h, w)
          ├─ concat (B, 64K, h, w) ─► 3x3 conv -> 256, ReLU, 1x1 -> C, sigmoid   heatmap  (B, C, h, w)
          └─ concat (B, 64K, h, w) ─► 3x3 conv -> 256, ReLU, 1x1 -> 2K           movement (B, 2K, h, w)

    Everything up to the concatenation depends on one clip only (`forward_clip`), so a stream computes it once per
    clip and caches it; `forward_tubelet` is the part that reads all K clips.

    Args:
        num_classes: C.
        num_clips: K.
        head_conv: hidden channels of the centre and movement branches (256 in the authors' code).
    """

    def __init__(self, num_classes: int, num_clips: int, *, head_conv: int = 256) -> None:
        super().__init__()
        self.num_clips = num_clips
        self.shrink = nn.Sequential(nn.Conv2d(NECK_DIM, HEAD_DIM, 1, bias=False), nn.BatchNorm2d(HEAD_DIM))
        self.center = _branch(HEAD_DIM * num_clips, head_conv, num_classes)
        self.movement = _branch(HEAD_DIM * num_clips, head_conv, 2 * num_clips)
        self.size = _branch(HEAD_DIM, HEAD_DIM, 2)
        nn.init.constant_(self.center[-1].bias, -2.19)  # prior 0.1 for a centre: stable focal loss at the start

    def forward(self, feats: torch.Tensor) -> TubeletOutput:
        """Args: feats (B, K, 256, h, w), oldest clip first. Returns: `TubeletOutput`."""
        b, k, d, h, w = feats.shape
        return self.forward_tubelet(self.forward_clip(feats.reshape(b * k, d, h, w)).reshape(b, k, CLIP_DIM, h, w))

    def forward_clip(self, feat: torch.Tensor) -> torch.Tensor:
        """The per-clip part: (N, 256, h, w) clip features -> (N, 66, h, w), the 64 shrunk channels and the
        clip's (w, h) box size."""
        x = self.shrink(feat)  # (N, 64, h, w)
        return torch.cat([x, self.size(x)], dim=1)  # (N, 66, h, w)

    def forward_tubelet(self, clips: torch.Tensor) -> TubeletOutput:
        """The K clips' `forward_clip` outputs (B, K, 66, h, w), oldest first -> `TubeletOutput`."""
        b, k, _, h, w = clips.shape
        stacked = clips[:, :, :HEAD_DIM].reshape(b, k * HEAD_DIM, h, w)  # (B, 64K, h, w), clip-major channels
        size = clips[:, :, HEAD_DIM:].reshape(b, 2 * k, h, w)  # (B, 2K, h, w): (w, h) of clip 0, 1, ...
        return TubeletOutput(torch.sigmoid(self.center(stacked)), self.movement(stacked), size)


class AMMA(nn.Module):
    """Tubelet detector: per-clip motion-aware features, cached, and a head over the last K of them.

    Data flow (one clip of t frames; F fusion stages, F <= 3)::

        clip (B, 3, t, H, W)
          ├─ last frame (B, 3, H, W) ─► rgb stage 0 ─(+)─► rgb stage 1 ─(+)─► ... ─► rest ─► (B, 512, H/32, W/32)
          │                                        ▲                ▲
          └─ MicroMotion ─► (B, M, H, W) ─► motion stage 0 ─► motion stage 1 ...   (copies of rgb stages 0..F-1)
                     (+): x_rgb <- w_i * x_rgb + (1 - w_i) * x_motion, learnable w_i initialised to 0.6
                     M maps: t-1, or 3 (t-1) RGB differences for motion "signed"
          ─► UpsampleNeck ─► clip feature (B, 256, H/8, W/8)                          forward_clip_features

        or, with motion_entry "input" (our variant, not the paper's): no motion stages, the maps enter beside
        the RGB, cat (B, 3 + M, H, W) ─► rgb stage 0 (its first convolution widened, the new filters at zero)

        K clip features (B, K, 256, H/8, W/8) ─► TubeletHead ─► heatmap, movement, size   forward_head

    Offline, `forward` takes the K clips as one (B, 3, K*t, H, W) tensor. Online, `forward_step` embeds only the
    newest clip and reads the other K - 1 clips from the state (the paper's feature cache), so a step costs one
    clip embedding plus the part of the head that reads all K clips. The cache holds each clip's per-clip head
    output (`TubeletHead.forward_clip`: 64 shrunk channels and the box size) rather than its 256-channel feature:
    a quarter of the state, and the per-clip head layers run once per clip instead of K times.

    Attributes:
        num_clips: K, clips per tubelet.
        clip_len: t, frames per clip.
        fusion_weights: (F,) appearance weights of the lateral fusions.
        pretrained_cfg: input size (clip_len = K*t frames of the offline input), normalisation, labels.
    """

    def __init__(self, rgb_stages: Sequence[nn.Module], *, num_classes: int, num_clips: int, clip_len: int,
                 motion: str, fusion_stages: int, pretrained_cfg: PretrainedCfg,
                 motion_entry: str = "lateral") -> None:
        """
        Args:
            rgb_stages: the 2D backbone as 4 sequential stages; fusion can follow stages 0, 1 and 2, the last
                one ends with 512 channels at stride 32.
            num_classes: action classes C.
            num_clips: K.
            clip_len: t (>= 2 with motion).
            motion: ``convdiff`` (the method), ``diff`` (RGB distances), ``signed`` (full-size signed RGB
                differences, our variant) or ``none`` (appearance only).
            fusion_stages: F, lateral fusions after the first F stages (0-3); 0 or motion ``none`` = RGB only.
            pretrained_cfg: the model's configuration.
            motion_entry: ``lateral`` (the paper: a motion path of stage copies, fused by weighted sums) or
                ``input`` (the maps concatenated to the RGB before the first convolution; `fusion_stages` unused).
        """
        super().__init__()
        if not 0 <= fusion_stages <= MAX_FUSIONS:
            raise ValueError(f"fusion_stages must be 0..{MAX_FUSIONS}, got {fusion_stages}")
        if motion_entry not in MOTION_ENTRIES:
            raise ValueError(f"unknown motion_entry {motion_entry!r} (choose {', '.join(MOTION_ENTRIES)})")
        uses_motion = motion != "none" and (motion_entry == "input" or fusion_stages > 0)
        if uses_motion and clip_len < 2:
            raise ValueError(f"micro-motion needs clips of at least 2 frames, got clip_len={clip_len}")
        num_fusions = fusion_stages if uses_motion and motion_entry == "lateral" else 0
        self.num_clips, self.clip_len, self.num_classes = num_clips, clip_len, num_classes
        self.motion_mode = motion if uses_motion else "none"
        self.motion_entry = motion_entry
        micro_motion = MicroMotion(motion) if uses_motion else None
        maps = micro_motion.out_channels(clip_len) if uses_motion else 0
        if uses_motion and motion_entry == "input":
            _rebuild_first_conv(rgb_stages[0], lambda w: torch.cat([w, w.new_zeros(w.shape[0], maps,
                                                                                    *w.shape[2:])], 1))
        self.rgb_stages = nn.ModuleList(rgb_stages)
        self.micro_motion = micro_motion
        self.motion_stages = nn.ModuleList(_motion_copy(rgb_stages[:num_fusions], in_chans=maps,
                                                        colour=uses_motion and micro_motion.colour_maps))
        self.fusion_weights = nn.Parameter(torch.full((num_fusions,), 0.6))
        self.neck = UpsampleNeck()
        self.head = TubeletHead(num_classes, num_clips)
        self.pretrained_cfg = pretrained_cfg

    def forward_clip_features(self, clip: torch.Tensor) -> torch.Tensor:
        """One clip (B, 3, t, H, W), normalised -> clip feature (B, 256, H/8, W/8)."""
        x = clip[:, :, -1]  # (B, 3, H, W): appearance from the clip's last frame
        m = self.micro_motion(clip) if self.micro_motion is not None else None  # (B, M, H, W)
        if m is not None and self.motion_entry == "input":
            x = torch.cat([x, m], 1)  # (B, 3 + M, H, W)
        for i, stage in enumerate(self.rgb_stages):
            x = stage(x)
            if i < len(self.motion_stages):
                m = self.motion_stages[i](m)
                w = self.fusion_weights[i]
                x = w * x + (1 - w) * m  # uni-lateral: only the appearance path sees the motion features
        return self.neck(x)

    def forward_head(self, feats: torch.Tensor | Sequence[torch.Tensor]) -> TubeletOutput:
        """K clip features, oldest first: (B, K, 256, h, w) or a sequence of K (B, 256, h, w)."""
        if not isinstance(feats, torch.Tensor):
            feats = torch.stack(list(feats), dim=1)  # (B, K, 256, h, w)
        if feats.shape[1] != self.num_clips:
            raise ValueError(f"the head was built for K={self.num_clips} clips, got {feats.shape[1]}")
        return self.head(feats)

    def forward(self, x: torch.Tensor) -> TubeletOutput:
        """A tubelet's K clips as one input (B, 3, K*t, H, W), oldest frame first."""
        b, c, n, h, w = x.shape
        k, t = self.num_clips, self.clip_len
        if n != k * t:
            raise ValueError(f"expected K*t = {k}*{t} = {k * t} frames, got {n}")
        clips = x.reshape(b, c, k, t, h, w).transpose(1, 2).reshape(b * k, c, t, h, w)  # (B*K, 3, t, H, W)
        feats = self.forward_clip_features(clips)  # (B*K, 256, h', w')
        return self.forward_head(feats.reshape(b, k, *feats.shape[1:]))  # (B, K, 256, h', w')

    # -- streaming ---------------------------------------------------------------------------------------
    def non_causal_layers(self) -> list[str]:
        """None: every clip only sees its own and earlier frames (kept for `to_streaming`)."""
        return []

    def make_causal(self) -> AMMA:
        """No-op: the streaming form is exact as is (kept for `to_streaming`)."""
        return self

    def init_state(self, batch_size: int = 1) -> StreamState:
        """Empty feature cache for `batch_size` streams at ``pretrained_cfg.input_size``.

        State: ``features`` (B, K, 66, H/8, W/8), the last K clips' per-clip head outputs
        (`TubeletHead.forward_clip`), oldest first; ``count`` (B, 1), clips seen (capped at K). Start a new state for
        every new video or after a jump in the stream.
        """
        _, h, w = self.pretrained_cfg.input_size
        p = next(self.parameters())
        feats = torch.zeros(batch_size, self.num_clips, CLIP_DIM, h // 8, w // 8, dtype=p.dtype, device=p.device)
        return StreamState(features=feats, count=torch.zeros(batch_size, 1, dtype=p.dtype, device=p.device))

    def forward_step(self, clip: torch.Tensor, state: StreamState) -> tuple[TubeletOutput, StreamState]:
        """Detect tubelets ending at the newest clip's last frame, embedding only that clip.

        The first clip of a stream fills the whole cache (a stream that starts mid-action looks static, as the
        paper pads short videos with their first frame); after K clips the output equals the offline `forward` of
        the last K clips (tested).

        Args:
            clip: (B, 3, t, H, W) the newest t frames, normalised.
            state: from `init_state` or the previous step.

        Returns:
            The head outputs and the new state.
        """
        feat = self.head.forward_clip(self.forward_clip_features(clip))[:, None]  # (B, 1, 66, h, w)
        cache = state["features"]
        first = (state["count"] == 0).reshape(-1, 1, 1, 1, 1)  # (B, 1, 1, 1, 1)
        shifted = torch.cat([cache[:, 1:], feat], dim=1)  # (B, K, 66, h, w): drop the oldest clip
        cache = torch.where(first, feat.expand_as(cache), shifted)
        count = torch.clamp(state["count"] + 1, max=self.num_clips)
        return self.head.forward_tubelet(cache), StreamState(features=cache, count=count)

    def reset_classifier(self, num_classes: int, *, label_names: Sequence[str] | None = None) -> None:
        """Replace the centre branch's classifier (fine-tuning on other classes); ``pretrained_cfg`` follows."""
        self.pretrained_cfg = self.pretrained_cfg.relabel(num_classes, label_names)
        old = self.head.center[-1]
        self.head.center[-1] = nn.Conv2d(old.in_channels, num_classes, 1)
        nn.init.constant_(self.head.center[-1].bias, -2.19)
        self.num_classes = num_classes


def with_more_clips(state: dict[str, torch.Tensor], num_clips: int) -> dict[str, torch.Tensor]:
    """The state dict of an AMMA that reads `num_clips` clips, from that of one that reads fewer, computing exactly
    what it did.

    Only the layers that read all K clips depend on K: the first convolution of the centre and movement branches
    (input channels K x 64, clip-major, oldest first) and the movement branch's output ((dx, dy) per clip). The
    extra clips are prepended as the oldest, with zero input weights, so the new detector starts as the old one
    on its newest clips and training decides what the older frames are worth; an extra clip's movement output
    starts as a copy of the old oldest clip's.

    Raises:
        ValueError: `num_clips` is not larger than the state's K.
    """
    state = dict(state)
    old = state["head.center.0.weight"].shape[1] // HEAD_DIM
    if num_clips <= old:
        raise ValueError(f"the detector already reads {old} clips; num_clips must be larger, got {num_clips}")
    extra = num_clips - old
    for branch in ("center", "movement"):
        w = state[f"head.{branch}.0.weight"]  # (hidden, 64 K, 3, 3)
        state[f"head.{branch}.0.weight"] = torch.cat([w.new_zeros(w.shape[0], extra * HEAD_DIM, *w.shape[2:]), w], 1)
    for name in ("head.movement.2.weight", "head.movement.2.bias"):
        v = state[name]  # (2 K, ...): (dx, dy) of clip 0, 1, ...
        state[name] = torch.cat([v[:2]] * extra + [v], 0)
    return state


def _motion_copy(stages: Sequence[nn.Module], *, in_chans: int, colour: bool) -> list[nn.Module]:
    """Copies of the first stages for the motion path (same initial weights, as in the paper). The first
    convolution is rebuilt for `in_chans` maps: `colour` maps (RGB triples, one per earlier frame) each take the
    RGB filters, divided by their number, so the copy starts on the mean difference; other maps, when not 3, the
    weights averaged over the RGB channels (the TSN recipe for difference inputs)."""
    copies = [copy.deepcopy(s) for s in stages]
    if copies and colour:
        _rebuild_first_conv(copies[0], lambda w: w.repeat(1, in_chans // 3, 1, 1) / (in_chans // 3))
    elif copies and in_chans != 3:
        _rebuild_first_conv(copies[0], lambda w: w.mean(1, keepdim=True).repeat(1, in_chans, 1, 1))
    return copies


def _rebuild_first_conv(stage: nn.Module, new_weight: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Swap the first convolution of `stage` for a copy whose weight is `new_weight(old weight)`, (out, in, k, k)
    with any number of input channels; the conv's own padding rule stays (EfficientNet-Lite pads TF-style "same")."""
    parent, name, conv = next((p, n, c) for p in stage.modules() for n, c in p.named_children()
                              if isinstance(c, nn.Conv2d))
    new = copy.deepcopy(conv)
    new.weight = nn.Parameter(new_weight(conv.weight.detach()))
    new.in_channels = new.weight.shape[1]
    setattr(parent, name, new)


# -- backbones split into stages ------------------------------------------------------------------------
def _shrink(cin: int) -> nn.Sequential:
    """1x1 conv to the neck's 512 channels + BN (the code's `shrink` after MobileNetV2 / ShuffleNetV2)."""
    return nn.Sequential(nn.Conv2d(cin, FEATURE_DIM, 1, bias=False), nn.BatchNorm2d(FEATURE_DIM))


def _resnet18_stages(pretrained: bool) -> list[nn.Module]:
    """Stem + maxpool | layer1 | layer2 | layer3 + layer4 (fusions after the first three stages)."""
    m = create_backbone("resnet18", pretrained=pretrained)
    return [nn.Sequential(m.conv1, m.bn1, m.act1, m.maxpool), m.layer1, m.layer2, nn.Sequential(m.layer3, m.layer4)]


def _efficientnet_stages(name: str, pretrained: bool) -> list[nn.Module]:
    """timm MobileNetV2 / EfficientNet: stem + first block | 2nd stage | 3rd stage | rest + conv_head + shrink.

    For MobileNetV2 these are the paper's fusion points, the outputs of its 1st, 3rd and 6th bottleneck blocks.
    """
    m = create_backbone(name, pretrained=pretrained)
    b = m.blocks
    return [nn.Sequential(m.conv_stem, m.bn1, b[0]), b[1], b[2],
            nn.Sequential(*b[3:], m.conv_head, m.bn2, _shrink(m.conv_head.out_channels))]


def _shufflenetv2_stages(pretrained: bool) -> list[nn.Module]:
    """torchvision ShuffleNetV2 1.0x: conv1 + maxpool | stage2 | stage3 | stage4 + conv5 + shrink."""
    if pretrained:
        raise ValueError("no ImageNet weights for ShuffleNetV2 are available offline; use pretrained=False")
    m = torchvision.models.shufflenet_v2_x1_0(weights=None)
    return [nn.Sequential(m.conv1, m.maxpool), m.stage2, m.stage3, nn.Sequential(m.stage4, m.conv5, _shrink(1024))]


@dataclass(frozen=True)
class _Variant:
    stages: Callable[[bool], list[nn.Module]]  # pretrained -> the 4 stages
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


_IMAGENET, _LITE0 = backbone_cfg("resnet18"), backbone_cfg("efficientnet_lite0")
default_cfgs: dict[str, _Variant] = {
    "amma_resnet18": _Variant(_resnet18_stages, _IMAGENET.mean, _IMAGENET.std),
    "amma_mobilenetv2": _Variant(lambda p: _efficientnet_stages("mobilenetv2_100", p), _IMAGENET.mean, _IMAGENET.std),
    "amma_shufflenetv2": _Variant(_shufflenetv2_stages, _IMAGENET.mean, _IMAGENET.std),
    "amma_efficientnet_lite0": _Variant(lambda p: _efficientnet_stages("efficientnet_lite0", p), _LITE0.mean,
                                        _LITE0.std),
}


def _create_amma(variant: str, *, pretrained: bool = False, num_classes: int = 24, num_clips: int = 5,
                 clip_len: int = 4, motion: str = "convdiff", fusion_stages: int = 3, motion_entry: str = "lateral",
                 img_size: int = 288, label_names: Sequence[str] | None = None) -> AMMA:
    """Build a registered AMMA variant.

    Args:
        variant: registered name.
        pretrained: ImageNet-initialised backbone (only EfficientNet-Lite0 has weights offline); the motion
            path's stage copies start from the same weights.
        num_classes: action classes (default 24, UCF101-24).
        num_clips: K clips per tubelet (5, the paper's JHMDB setting; 3 for UCF101-24).
        clip_len: t frames per clip (4 in the paper).
        motion: ``convdiff``, ``diff`` or ``none`` (the paper's Table 1 ablation), or ``signed`` (ours).
        fusion_stages: number of lateral fusions, 0-3 (the paper's Table 2 ablation; 3 is its default).
        motion_entry: ``lateral`` (the paper's motion path) or ``input`` (maps beside the RGB at the first layer).
        img_size: square input side recorded in ``pretrained_cfg`` (288 in the paper); a multiple of 32.
        label_names: class names.
    """
    if img_size % 32:
        raise ValueError(f"AMMA needs an input size divisible by 32, got {img_size}")
    if label_names is not None and len(label_names) != num_classes:
        raise ValueError(f"{len(label_names)} label names for {num_classes} classes")
    spec = default_cfgs[variant]
    cfg = PretrainedCfg(input_size=(3, img_size, img_size), clip_len=num_clips * clip_len, num_segments=None,
                        mean=spec.mean, std=spec.std, crop_pct=1.0, num_classes=num_classes,
                        label_names=tuple(label_names) if label_names is not None else None)
    return AMMA(spec.stages(pretrained), num_classes=num_classes, num_clips=num_clips, clip_len=clip_len,
                motion=motion, fusion_stages=fusion_stages, motion_entry=motion_entry, pretrained_cfg=cfg)


@register_model
def amma_resnet18(*, pretrained: bool = False, **kwargs: Any) -> AMMA:
    """AMMA_18: ResNet-18 with micro-motion fused after the stem, layer1 and layer2 (no offline weights)."""
    return _create_amma("amma_resnet18", pretrained=pretrained, **kwargs)


@register_model
def amma_mobilenetv2(*, pretrained: bool = False, **kwargs: Any) -> AMMA:
    """AMMA_M: MobileNetV2-1.0, fusions after its 1st, 3rd and 6th bottleneck blocks (no offline weights)."""
    return _create_amma("amma_mobilenetv2", pretrained=pretrained, **kwargs)


@register_model
def amma_shufflenetv2(*, pretrained: bool = False, **kwargs: Any) -> AMMA:
    """AMMA_S: ShuffleNetV2 1.0x, fusions after conv1, stage 2 and stage 3 (no offline weights)."""
    return _create_amma("amma_shufflenetv2", pretrained=pretrained, **kwargs)


@register_model(weights="imagenet")
def amma_efficientnet_lite0(*, pretrained: bool = False, **kwargs: Any) -> AMMA:
    """AMMA on EfficientNet-Lite0 (ImageNet weights offline), fusions at strides 2, 4 and 8 as for MobileNetV2."""
    return _create_amma("amma_efficientnet_lite0", pretrained=pretrained, **kwargs)


# The bundled detector's architecture and data settings (docs/MODEL_CARD_detection.md): what it was trained with.
_ACTIONS = dict(num_classes=len(DETECTION_CLASSES), label_names=tuple(DETECTION_CLASSES), num_clips=3, clip_len=4,
                img_size=160, motion="convdiff", fusion_stages=3)
_ACTIONS_WEIGHTS = "amma_efficientnet_lite0_actions.safetensors"


@register_model(weights="action")
def amma_efficientnet_lite0_actions(*, pretrained: bool = False, num_classes: int | None = None,
                                    label_names: Sequence[str] | None = None, **kwargs: Any) -> AMMA:
    """The bundled detector: `amma_efficientnet_lite0` trained on the 7 synthetic action classes, K = 3 clips of
    t = 4 frames at 160 px. ``pretrained=True`` loads the shipped weights; other ``num_classes`` / ``label_names``
    get a fresh classifier (fine-tuning)."""
    model = _create_amma("amma_efficientnet_lite0", **{**_ACTIONS, **kwargs})
    model.pretrained_cfg = model.pretrained_cfg.replace(weights=_ACTIONS_WEIGHTS)
    if pretrained:
        load_weights(model, WEIGHTS_DIR / _ACTIONS_WEIGHTS)
    names = None if label_names is None else tuple(label_names)
    if num_classes is not None and (num_classes, names) != (_ACTIONS["num_classes"], _ACTIONS["label_names"]):
        model.reset_classifier(num_classes, label_names=names)
    return model
