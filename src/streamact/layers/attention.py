"""Self-attention blocks of the VTN decoder (Kozlov et al., "Lightweight Network Architecture for Real-Time Action
Recognition", arXiv 1905.08711, Fig. 3), written with export-safe ops only (MatMul, Softmax, Where, Gather, ReduceMean,
Sqrt, elementwise), so the decoder converts to ONNX and OpenVINO as it is.

Faithful to the authors' code (training_extensions): per-head Q/K/V projection tensors without bias, temperature
sqrt(d_model) rather than sqrt(d_k), heads concatenated without an output projection, post-norm residual blocks,
a kernel-1 position-wise feed-forward block, and their LayerNorm formula.

    x (B, T, D) ─► MultiHeadSelfAttention ─► dropout ─► + x ─► LayerNorm ─► FeedForward ─► dropout ─► + ─► LayerNorm
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["sinusoid_table", "PositionalEmbedding", "LayerNorm", "MultiHeadSelfAttention", "FeedForward",
           "DecoderBlock"]


def sinusoid_table(num_positions: int, dim: int) -> torch.Tensor:
    """Transformer position table with an all-zero row 0 (the VTN / "attention is all you need" code's table).

    Row p > 0, column j: ``sin(p / 10000^(2*(j//2)/dim))`` for even j and ``cos(...)`` for odd j.

    Returns:
        (num_positions, dim) float32.
    """
    pos = torch.arange(num_positions, dtype=torch.float64)[:, None]  # (P, 1)
    rate = 10000.0 ** (-2.0 * (torch.arange(dim) // 2).double() / dim)  # (D,)
    angle = pos * rate  # (P, D)
    table = torch.where(torch.arange(dim) % 2 == 0, angle.sin(), angle.cos())
    table[0] = 0.0  # the original keeps row 0 at zero (it was the padding position)
    return table.float()


class PositionalEmbedding(nn.Module):
    """Trainable position table added to a sequence (an ``nn.Embedding(P, D)`` initialised by `sinusoid_table`).

    Attributes:
        weight: (P, D) table; row p is added to the p-th element of a sequence.
    """

    def __init__(self, num_positions: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_positions, dim))
        with torch.no_grad():
            self.weight.copy_(sinusoid_table(num_positions, dim))

    @property
    def num_positions(self) -> int:
        return self.weight.shape[0]

    def forward(self, x: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Add position embeddings.

        Args:
            x: (B, T, D) sequence, T <= P.
            positions: (B, T) integer position of every element; default ``0 .. T-1`` for every sequence.

        Returns:
            (B, T, D).
        """
        if positions is None:
            return x + self.weight[: x.shape[1]]  # (T, D) broadcast over the batch
        return x + self.weight[positions]  # (B, T, D) gathered

    def extra_repr(self) -> str:
        return f"num_positions={self.weight.shape[0]}, dim={self.weight.shape[1]}"


class LayerNorm(nn.Module):
    """The VTN LayerNorm ``gain * (z - mean) / (std + eps) + bias`` over the last dimension, unbiased std.

    Kept (rather than ``nn.LayerNorm``, which divides by ``sqrt(biased var + eps)``) so the decoder computes what the
    authors' decoder computes, e.g. after porting their weights; the difference is small but not zero for
    low-variance inputs (eps 1e-3 is added to the std, not 1e-5 to the variance). The original broke export through
    its ``torch.std`` call and a Python branch (a no-op for length-1 sequences, dropped here so a 1-frame clip is
    normalised like any other); this form uses only ReduceMean, Sub, Mul, Sqrt, Add and Div, which ONNX Runtime and
    OpenVINO run as they are, and costs nothing measurable on a (16, 512) sequence.
    """

    def __init__(self, dim: int, eps: float = 1e-3) -> None:
        super().__init__()
        if dim < 2:
            raise ValueError(f"LayerNorm needs dim >= 2 for an unbiased std, got {dim}")
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        self.bias = nn.Parameter(torch.zeros(dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """(..., D) -> (..., D)."""
        centred = z - z.mean(-1, keepdim=True)
        std = torch.sqrt((centred * centred).sum(-1, keepdim=True) / (z.shape[-1] - 1))  # unbiased, as torch.std
        return self.weight * centred / (std + self.eps) + self.bias

    def extra_repr(self) -> str:
        return f"{self.weight.shape[0]}, eps={self.eps}"


class MultiHeadSelfAttention(nn.Module):
    """Multi-head self-attention with per-head projections and no output projection.

    Every head h maps the sequence to ``Q_h = x W_q[h]``, ``K_h = x W_k[h]``, ``V_h = x W_v[h]`` (each (D, d_k), no
    bias, Xavier-normal initialised as (H, D, d_k) tensors like the original), computes
    ``softmax(Q_h K_h^T / sqrt(D)) V_h`` with dropout on the attention weights, and the heads are concatenated back
    to H * d_k = D channels.
    """

    def __init__(self, dim: int, num_heads: int, *, dropout: float = 0.1) -> None:
        """
        Args:
            dim: D, the model width; must be divisible by ``num_heads``.
            num_heads: H.
            dropout: drop probability of the attention weights.
        """
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.w_q = nn.Parameter(torch.empty(num_heads, dim, head_dim))
        self.w_k = nn.Parameter(torch.empty(num_heads, dim, head_dim))
        self.w_v = nn.Parameter(torch.empty(num_heads, dim, head_dim))
        for w in (self.w_q, self.w_k, self.w_v):
            nn.init.xavier_normal_(w)
        # The authors scale by sqrt(d_model), not sqrt(d_k): softer attention at initialisation.
        self.temperature = math.sqrt(dim)
        self.attn_drop = nn.Dropout(dropout)

    def _project(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        """(B, T, D) x (H, D, d_k) -> (B, H, T, d_k), all heads in one MatMul."""
        b, t, d = x.shape
        h, _, dk = w.shape
        y = x @ w.permute(1, 0, 2).reshape(d, h * dk)  # (B, T, H*d_k), head-major columns
        return y.reshape(b, t, h, dk).transpose(1, 2)  # (B, H, T, d_k)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """Attend over the sequence.

        Args:
            x: (B, T, D).
            key_valid: (B, T) bool, False for elements no query may attend to (the empty slots of a stream's window
                during warm-up); every sequence needs at least one valid element. Default: all valid.

        Returns:
            (B, T, D) concatenated head outputs.
        """
        b, t, d = x.shape
        q, k, v = (self._project(x, w) for w in (self.w_q, self.w_k, self.w_v))  # (B, H, T, d_k) each
        scores = q @ k.transpose(-2, -1) / self.temperature  # (B, H, T, T)
        if key_valid is not None:
            scores = scores.masked_fill(~key_valid[:, None, None, :], float("-inf"))
        attn = self.attn_drop(F.softmax(scores, dim=-1))
        return (attn @ v).transpose(1, 2).reshape(b, t, d)  # (B, H, T, d_k) -> (B, T, H*d_k)

    def extra_repr(self) -> str:
        return f"num_heads={self.num_heads}, temperature={self.temperature:.4g}"


class FeedForward(nn.Module):
    """Position-wise feed-forward block D -> hidden -> D with ReLU (the original's kernel-1 Conv1d pair, as Linear:
    same weights, same parameter count, no transposes)."""

    def __init__(self, dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D)."""
        return self.fc2(F.relu(self.fc1(x)))


class DecoderBlock(nn.Module):
    """One VTN decoder block: post-norm residual self-attention, then post-norm residual feed-forward."""

    def __init__(self, dim: int, num_heads: int, hidden_dim: int, *, dropout: float = 0.1) -> None:
        """
        Args:
            dim: D.
            num_heads: H.
            hidden_dim: width of the feed-forward block (the original: 2 * D).
            dropout: drop probability of the attention weights and of both residual branches.
        """
        super().__init__()
        self.attn = MultiHeadSelfAttention(dim, num_heads, dropout=dropout)
        self.drop1 = nn.Dropout(dropout)
        self.norm1 = LayerNorm(dim)
        self.ffn = FeedForward(dim, hidden_dim)
        self.drop2 = nn.Dropout(dropout)
        self.norm2 = LayerNorm(dim)

    def forward(self, x: torch.Tensor, key_valid: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``key_valid`` as in `MultiHeadSelfAttention`."""
        x = self.norm1(x + self.drop1(self.attn(x, key_valid)))
        return self.norm2(x + self.drop2(self.ffn(x)))
