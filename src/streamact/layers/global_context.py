"""Global path units of LIGAR's Local-and-Global-Diffusion (LGD) backbone ("LIGAR: Lightweight General-purpose
Action Recognition", section III.ii).

LGD (Qiu et al., CVPR 2019) runs a *global* path next to the usual *local* feature map: a single C-vector per
clip that is updated after every backbone stage and diffused back into the local map. LIGAR replaces LGD's
global average pooling (the local-to-global link) with Global Context attention pooling (GCNet, Cao et al.,
arXiv 2012.13375): a learned softmax over all T·H·W positions decides which positions the vector summarises.

    local (B, C, T, H, W) ── GlobalContextPool ──► (B, C, 1, 1, 1)       local -> global ("pool")
    g     (B, C', 1, 1, 1) ── GlobalTransform ───► (B, C, 1, 1, 1)       global -> global ("glob", residual)
                                                                          global -> local  ("upsample",
                                                                          broadcast-added over T, H, W)

All three are 1x1x1 convolutions + BatchNorm on 5-D tensors (the layout of the reference code), so they export
as plain Conv / BatchNormalization / Softmax / MatMul nodes.
"""
from __future__ import annotations

import torch
from torch import nn

__all__ = ["global_context_pool", "GlobalContextPool", "GlobalTransform"]


def global_context_pool(x: torch.Tensor, attention_logits: torch.Tensor) -> torch.Tensor:
    """Attention-weighted average of a feature map over all of its positions.

    Args:
        x: features (B, C, T, H, W).
        attention_logits: one logit per position (B, 1, T, H, W); a softmax over the T·H·W positions turns them
            into weights summing to one per clip.

    Returns:
        The context vector (B, C, 1, 1, 1).

    Raises:
        ValueError: if the shapes do not match.
    """
    if x.ndim != 5 or attention_logits.shape != (x.shape[0], 1, *x.shape[2:]):
        raise ValueError(f"expected features (B, C, T, H, W) and logits (B, 1, T, H, W), got {tuple(x.shape)} and "
                         f"{tuple(attention_logits.shape)}")
    weights = attention_logits.flatten(2).softmax(dim=-1)  # (B, 1, T*H*W)
    context = torch.bmm(x.flatten(2), weights.transpose(1, 2))  # (B, C, T*H*W) @ (B, T*H*W, 1) -> (B, C, 1)
    return context[..., None, None]  # (B, C, 1, 1, 1)


def _conv_bn(in_channels: int, out_channels: int) -> list[nn.Module]:
    """Bias-free 1x1x1 convolution + BatchNorm, the unit every global-path module is built from."""
    return [nn.Conv3d(in_channels, out_channels, 1, bias=False), nn.BatchNorm3d(out_channels)]


class GlobalContextPool(nn.Module):
    """LIGAR's local-to-global link: GC attention pooling followed by a bottleneck transform.

    logits = BN(conv C->1) per position -> softmax over T·H·W -> context (C) -> conv C->fC + BN -> HSwish ->
    conv fC->C + BN.
    """

    def __init__(self, channels: int, *, factor: int = 3) -> None:
        """
        Args:
            channels: C of the pooled feature map (and of the output vector).
            factor: width of the hidden layer of the transform, relative to C.
        """
        super().__init__()
        self.attention = nn.Sequential(*_conv_bn(channels, 1))
        self.transform = nn.Sequential(*_conv_bn(channels, factor * channels), nn.Hardswish(),
                                       *_conv_bn(factor * channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T, H, W) -> (B, C, 1, 1, 1)."""
        return self.transform(global_context_pool(x, self.attention(x)))


class GlobalTransform(nn.Module):
    """Bottleneck on the global vector: conv C_in->f·C_in + BN -> HSwish -> conv f·C_in->C_out + BN (+ identity).

    Serves as LGD's global-to-global unit (``residual=True``: the identity is added when C_in == C_out) and as
    its global-to-local "upsample" unit, whose last BatchNorm the model initialises to zero so that the global
    path starts as a no-op on the local one.
    """

    def __init__(self, in_channels: int, out_channels: int, *, factor: int = 3, residual: bool = False) -> None:
        """
        Args:
            in_channels: C_in of the incoming global vector.
            out_channels: C_out, the channels of the module it feeds.
            factor: hidden width relative to C_in.
            residual: add the input when the channel counts match.
        """
        super().__init__()
        hidden = factor * in_channels
        self.layers = nn.Sequential(*_conv_bn(in_channels, hidden), nn.Hardswish(), *_conv_bn(hidden, out_channels))
        self.residual = residual and in_channels == out_channels

    @property
    def last_bn(self) -> nn.BatchNorm3d:
        """The closing BatchNorm (zero-initialised in the upsample units)."""
        return self.layers[-1]

    def forward(self, g: torch.Tensor) -> torch.Tensor:
        """(B, C_in, 1, 1, 1) -> (B, C_out, 1, 1, 1)."""
        out = self.layers(g)
        return out + g if self.residual else out
