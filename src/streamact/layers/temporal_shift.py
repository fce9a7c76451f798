"""Temporal Shift Module (Lin et al., "TSM: Temporal Shift Module for Efficient Video Understanding", ICCV 2019).

Part of the channels of each frame's feature map is replaced by the same channels of a neighbouring frame:
zero parameters, zero multiply-adds, only slicing and concatenation (export-safe). Channel layout for
``fold = C // fold_div`` (identical to the authors' ``ops/temporal_shift.py``):

    channels [0, fold)        <- frame t+1   (bi-directional only; uni-directional keeps them in place)
    channels [fold, 2*fold)   <- frame t-1
    channels [2*fold, C)      unchanged

Vacated positions (the last frame's future, the first frame's past) are zero-filled. The uni-directional form
uses only the past, so it is causal: streamed frame by frame it needs a cache of ``fold`` channels per layer
(the previous frame's ``[fold, 2*fold)`` slice). Because it moves the same past channels as the bi-directional
form, a bi-directionally trained model can be run (and fine-tuned) causally.

The shift is inserted on the residual branch of residual blocks ("residual shift"), before the first 1x1 conv,
so the shortcut keeps every frame's own features. `residual_blocks` and `insert_temporal_layer` implement that
placement for any temporal layer (TSM, MixTConv).
"""
from __future__ import annotations

import abc
from collections import OrderedDict
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "temporal_shift",
    "StreamableTemporalLayer",
    "TemporalShift",
    "residual_blocks",
    "insert_temporal_layer",
    "insert_temporal_shift",
]


def temporal_shift(x: torch.Tensor, num_segments: int, fold_div: int = 8, bidirectional: bool = True) -> torch.Tensor:
    """Shift channels along time.

    Args:
        x: frame features (N*T, C, H, W), frames of one clip contiguous (clip-major order).
        num_segments: T, the number of frames per clip.
        fold_div: ``C // fold_div`` channels move in each direction.
        bidirectional: move one fold from t+1 and one from t-1; otherwise only the one from t-1 (causal).

    Returns:
        Tensor shaped like ``x``.
    """
    nt, c, h, w = x.shape
    fold = c // fold_div
    x = x.reshape(-1, num_segments, c, h, w)  # (N, T, C, H, W)
    # F.pad's last pair pads dim 1 (T): (0, 1) appends a zero frame at the end, (1, 0) prepends one.
    past = F.pad(x[:, :-1, fold : 2 * fold], (0, 0, 0, 0, 0, 0, 1, 0))  # (N, T, fold, H, W), frame t <- t-1
    if bidirectional:
        first = F.pad(x[:, 1:, :fold], (0, 0, 0, 0, 0, 0, 0, 1))  # (N, T, fold, H, W), frame t <- t+1
    else:
        first = x[:, :, :fold]  # (N, T, fold, H, W), unchanged
    out = torch.cat([first, past, x[:, :, 2 * fold :]], dim=2)  # (N, T, C, H, W)
    return out.reshape(nt, c, h, w)  # (N*T, C, H, W)


class StreamableTemporalLayer(nn.Module, abc.ABC):
    """Base of temporal layers that can run one frame at a time with an explicit cache.

    Offline, `forward` takes (N*T, C, H, W) clips. While ``stream_cache`` is a list, `forward` instead takes
    single frames (B, C, H, W), reads its cache from that list and replaces it with the updated one; an empty
    list means "start from zeros". The recognizer sets and collects the caches around one backbone pass
    (see `TSN.forward_step`), so the backbone code itself never changes and the step graph stays traceable.
    """

    stream_cache: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stream_cache is None:
            return self.forward_clip(x)
        y, self.stream_cache = self.step(x, self.stream_cache)
        return y

    @abc.abstractmethod
    def forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Offline form on (N*T, C, H, W)."""

    @abc.abstractmethod
    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame (B, C, H, W) and the cache (empty = zeros) -> output frame and the updated cache."""

    @property
    @abc.abstractmethod
    def is_causal(self) -> bool:
        """True when the layer reads only the current and past frames (streamable)."""

    @property
    @abc.abstractmethod
    def past_frames(self) -> int:
        """How many frames before the current one the layer reads (its output at t depends on t - past_frames..t)."""

    @abc.abstractmethod
    def make_causal(self) -> None:
        """Switch a layer trained with future context to its causal (streamable) form, in place."""


class TemporalShift(StreamableTemporalLayer):
    """Module form of `temporal_shift` (no parameters); streamable when uni-directional."""

    def __init__(self, num_segments: int, *, fold_div: int = 8, bidirectional: bool = True) -> None:
        """
        Args:
            num_segments: T, the number of frames per clip.
            fold_div: ``C // fold_div`` channels move in each direction.
            bidirectional: shift from both neighbours; ``False`` is the causal, uni-directional form.
        """
        super().__init__()
        self.num_segments = num_segments
        self.fold_div = fold_div
        self.bidirectional = bidirectional

    def forward_clip(self, x: torch.Tensor) -> torch.Tensor:
        """Shift (N*T, C, H, W) features; see `temporal_shift`."""
        return temporal_shift(x, self.num_segments, self.fold_div, self.bidirectional)

    def step(self, x: torch.Tensor, cache: list[torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """One frame (B, C, H, W) of the uni-directional shift; the cache is the previous frame's past fold.

        Raises:
            RuntimeError: for the bi-directional form, which needs the next frame (convert it with
                `TSN.make_causal` first).
        """
        if self.bidirectional:
            raise RuntimeError("a bi-directional temporal shift needs future frames; make the model causal first")
        fold = x.shape[1] // self.fold_div
        past = cache[0] if cache else torch.zeros_like(x[:, fold : 2 * fold])  # (B, fold, H, W) from t-1
        y = torch.cat([x[:, :fold], past, x[:, 2 * fold :]], dim=1)  # (B, C, H, W)
        return y, [x[:, fold : 2 * fold]]

    @property
    def is_causal(self) -> bool:
        return not self.bidirectional

    @property
    def past_frames(self) -> int:
        return 1

    def make_causal(self) -> None:
        """Keep only the shift from t-1 (the future fold stays in place); no weights change."""
        self.bidirectional = False

    def extra_repr(self) -> str:
        return f"num_segments={self.num_segments}, fold_div={self.fold_div}, bidirectional={self.bidirectional}"


def residual_blocks(backbone: nn.Module) -> list[tuple[str, nn.Module, str]]:
    """Residual blocks of a timm backbone that take a temporal layer, and the attribute of their first 1x1 conv.

    Supported: timm ``InvertedResidual`` blocks with a skip connection (MobileNetV2, MnasNet, EfficientNet;
    blocks without a skip and ``DepthwiseSeparableConv`` blocks are left out, as in TSM's MobileNetV2), where the
    first conv is the 1x1 expansion ``conv_pw``; and every ResNet ``BasicBlock`` / ``Bottleneck``, where it is
    ``conv1``. In both the conv sits on the residual branch only.

    Args:
        backbone: a timm model.

    Returns:
        ``(qualified_name, block, conv_attribute)`` for each block, in network order.
    """
    from timm.models._efficientnet_blocks import InvertedResidual
    from timm.models.resnet import BasicBlock, Bottleneck

    found = []
    for name, module in backbone.named_modules():
        if isinstance(module, InvertedResidual) and module.has_skip:
            found.append((name, module, "conv_pw"))
        elif isinstance(module, (BasicBlock, Bottleneck)):
            found.append((name, module, "conv1"))
    return found


def insert_temporal_layer(backbone: nn.Module, make_layer: Callable[[int], nn.Module]) -> list[str]:
    """Put a temporal layer in front of the first 1x1 conv of every block found by `residual_blocks`.

    The conv is replaced by ``nn.Sequential(temporal=layer, conv=conv)``: plain module composition, so the
    model stays traceable and exportable, and inserted layers are found with ``isinstance`` on ``.temporal``.
    Load ImageNet weights before inserting (the conv's state-dict key gains a ``.conv`` suffix).

    Args:
        backbone: timm backbone, modified in place.
        make_layer: builds the temporal layer from the conv's input channel count.

    Returns:
        Qualified names of the modified blocks.

    Raises:
        ValueError: if the backbone has no supported residual block, or a block already has a temporal layer.
    """
    blocks = residual_blocks(backbone)
    if not blocks:
        raise ValueError(
            f"{type(backbone).__name__} has no residual block to insert a temporal layer into; supported are timm "
            "InvertedResidual blocks (MobileNetV2, MnasNet, EfficientNet) and ResNet BasicBlock/Bottleneck"
        )
    for name, block, attr in blocks:
        conv = getattr(block, attr)
        if not isinstance(conv, nn.Conv2d):
            raise ValueError(f"block {name!r} already has a temporal layer before {attr}")
        setattr(block, attr, nn.Sequential(OrderedDict(temporal=make_layer(conv.in_channels), conv=conv)))
    return [name for name, _, _ in blocks]


def insert_temporal_shift(
    backbone: nn.Module, num_segments: int, *, fold_div: int = 8, bidirectional: bool = True
) -> list[str]:
    """Insert a residual `TemporalShift` into every residual block (TSM "blockres" placement).

    Args:
        backbone: timm backbone, modified in place.
        num_segments: T, frames per clip.
        fold_div: ``C // fold_div`` channels move in each direction.
        bidirectional: ``False`` for the causal, uni-directional shift.

    Returns:
        Qualified names of the modified blocks.
    """
    return insert_temporal_layer(
        backbone, lambda _: TemporalShift(num_segments, fold_div=fold_div, bidirectional=bidirectional)
    )
