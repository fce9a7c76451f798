"""CPU data-parallel training with torchrun (gloo). Single-process runs need none of this."""
from __future__ import annotations

import os

import torch
import torch.distributed as dist

__all__ = ["init_distributed", "is_main_process", "world_size", "rank", "all_reduce_sum", "cleanup"]


def init_distributed() -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1). Returns True if distributed."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1 or dist.is_initialized():
        return dist.is_initialized()
    dist.init_process_group(backend="gloo")
    return True


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def is_main_process() -> bool:
    return rank() == 0


def all_reduce_sum(values: list[float]) -> list[float]:
    """Sum a few scalars over ranks (metric counts); identity when not distributed."""
    if not dist.is_initialized():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(t)
    return t.tolist()


def cleanup() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
