"""Where PyTorch runs a model: the device names streamact accepts, checked against the machine.

Imports no PyTorch for "cpu", so the exported-model path (which never runs torch) stays torch-free.
"""
from __future__ import annotations

from streamact.errors import UserError

__all__ = ["DEVICES", "resolve_device"]

DEVICES = ("cpu", "cuda", "auto")  # auto: cuda where torch sees a GPU, else cpu


def resolve_device(name: str, *, option: str = "--device") -> str:
    """The device to run on: `name` checked against the machine, "auto" resolved to "cuda" or "cpu".

    Args:
        name: cpu, cuda or auto.
        option: how the user set it (named in the error), e.g. ``--device``.

    Raises:
        UserError: an unknown name, or cuda asked for on a machine where torch sees no CUDA GPU.
    """
    if name not in DEVICES:
        raise UserError(f"{option} {name}: unknown device; choose {', '.join(DEVICES)}")
    if name == "cpu":  # no torch import: see the module docstring
        return name
    import torch

    if torch.cuda.is_available():
        return "cuda"
    if name == "cuda":
        raise UserError(f"{option} cuda: torch sees no CUDA GPU on this machine (or is a CPU-only build); "
                        f"use {option} cpu (or auto)")
    return "cpu"
