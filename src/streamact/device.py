"""Where PyTorch runs a model: the device names streamact accepts, checked against the machine.

Imports no PyTorch for "cpu", so the exported-model path (which never runs torch) stays torch-free.
"""
from __future__ import annotations

from streamact.errors import UserError

__all__ = ["DEVICES", "resolve_device", "cpu_has_bf16", "slow_bf16_warning"]

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


def cpu_has_bf16() -> bool:
    """Whether this CPU computes bf16 in hardware (AVX-512 BF16 or AMX) rather than emulating it."""
    import torch

    return torch.ops.mkldnn._is_mkldnn_bf16_supported()


def slow_bf16_warning(device: str, *, option: str) -> str | None:
    """Why bf16 autocast on `device` would be slow, or None: a CPU without AVX-512 BF16 or AMX (e.g. AVX2 only)
    emulates bf16 arithmetic: training ran 4.7 times slower than in float32 on such a machine (`python
    bench/train_throughput.py`, docs/RESULTS.md).

    Args:
        device: a resolved device name (cpu or cuda).
        option: how the user turned bf16 on (named in the warning), e.g. ``--amp``.
    """
    if device != "cpu" or cpu_has_bf16():
        return None
    import torch

    return (f"{option}: this CPU has no bf16 instructions (AVX-512 BF16 or AMX; it has "
            f"{torch.backends.cpu.get_cpu_capability()}), so bf16 autocast is emulated and several times slower than "
            f"float32; leave bf16 off here")
