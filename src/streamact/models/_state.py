"""Explicit streaming state: named tensors passed into and returned from every `forward_step`.

Keeping the state outside the model (instead of hidden module buffers) is what lets the same step graph be
exported with the state as graph inputs/outputs, and lets one model serve several independent streams.
"""
from __future__ import annotations

from collections import OrderedDict

import torch

__all__ = ["StreamState"]


class StreamState(OrderedDict):
    """Ordered mapping name -> tensor (batch first). The order is the export order of state inputs/outputs."""

    def clone(self) -> StreamState:
        return StreamState((k, v.clone()) for k, v in self.items())

    def zeros_like(self) -> StreamState:
        return StreamState((k, torch.zeros_like(v)) for k, v in self.items())

    def shapes(self) -> dict[str, tuple[int, ...]]:
        return {k: tuple(v.shape) for k, v in self.items()}
