"""One small interface over the engines that run a streaming step: PyTorch eager now, exported graphs later.

A runtime holds a model and exposes `pretrained_cfg`, `init_state()` and `step(frame, state) -> (logits, state)`
with numpy-or-tensor frames (1, C, H, W) float32 already preprocessed. State is opaque to the caller.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

__all__ = ["Runtime", "TorchRuntime", "as_runtime"]


@runtime_checkable
class Runtime(Protocol):
    pretrained_cfg: Any

    def init_state(self) -> Any: ...

    def step(self, frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...


class TorchRuntime:
    """PyTorch eager execution of `model.forward_step` (batch 1, inference mode, fp32 or bf16 autocast)."""

    name = "torch"

    def __init__(self, model: nn.Module, *, bf16: bool = False) -> None:
        if not hasattr(model, "forward_step"):
            raise TypeError(f"{type(model).__name__} has no streaming form (forward_step/init_state)")
        self.model = model.eval()
        self.pretrained_cfg = model.pretrained_cfg
        self.bf16 = bf16

    def init_state(self):
        return self.model.init_state(1)

    @torch.inference_mode()
    def step(self, frame, state):
        x = torch.as_tensor(frame)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits, state = self.model.forward_step(x, state)
        return logits.float().numpy(), state


def as_runtime(model_or_runtime) -> Runtime:
    """Wrap a torch model in `TorchRuntime`; pass runtimes through."""
    if isinstance(model_or_runtime, nn.Module):
        return TorchRuntime(model_or_runtime)
    if isinstance(model_or_runtime, Runtime):
        return model_or_runtime
    raise TypeError(f"expected a streamable model or a Runtime, got {type(model_or_runtime).__name__}")
