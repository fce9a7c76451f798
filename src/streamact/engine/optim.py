"""Optimizers and per-step learning-rate schedules (linear warm-up, then cosine or step decay)."""
from __future__ import annotations

import math

import torch
from torch import nn

from streamact.engine.config import OptimConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor"]


def _param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    # Norm weights and biases get no weight decay (TSN/TSM optimizer policies: decay_mult 0).
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, cfg: OptimConfig) -> torch.optim.Optimizer:
    groups = _param_groups(model, cfg.weight_decay)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, nesterov=False)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr)
    raise ValueError(f"unknown optimizer '{cfg.optimizer}' (choose sgd or adamw)")


def lr_factor(step: int, *, steps_per_epoch: int, epochs: int, cfg: OptimConfig) -> float:
    """Multiplier of the peak lr at optimizer step `step` (0-based)."""
    epoch = step / max(1, steps_per_epoch)
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        return 0.01 + 0.99 * epoch / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(1e-8, epochs - cfg.warmup_epochs)
        progress = min(1.0, (epoch - cfg.warmup_epochs) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return 0.1 ** sum(epoch >= s for s in cfg.lr_steps)
    raise ValueError(f"unknown schedule '{cfg.schedule}' (choose cosine or step)")


def build_scheduler(optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int,
                    cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, steps_per_epoch=steps_per_epoch, epochs=epochs, cfg=cfg)  # validate the schedule name early
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps_per_epoch=steps_per_epoch, epochs=epochs, cfg=cfg))
