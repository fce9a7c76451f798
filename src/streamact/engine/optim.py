"""Optimizers and per-step learning-rate schedules (linear warm-up, then cosine or step decay; LIGAR's staged
schedule), and freezing the backbone for head-only training."""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from streamact.engine.config import OptimConfig

__all__ = ["build_optimizer", "build_scheduler", "lr_factor", "staged_lr_factor", "freeze_backbone"]


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
    if cfg.schedule == "staged":
        return staged_lr_factor(step, steps_per_epoch=steps_per_epoch, epochs=epochs, freeze_epochs=cfg.freeze_epochs,
                                warmup_epochs=cfg.warmup_epochs, freeze_factor=cfg.freeze_lr_mult,
                                warmup_start=cfg.warmup_start, end_factor=cfg.final_lr_ratio, alpha=cfg.alpha)
    epoch = step / max(1, steps_per_epoch)
    if cfg.warmup_epochs > 0 and epoch < cfg.warmup_epochs:
        return 0.01 + 0.99 * epoch / cfg.warmup_epochs
    if cfg.schedule == "cosine":
        span = max(1e-8, epochs - cfg.warmup_epochs)
        progress = min(1.0, (epoch - cfg.warmup_epochs) / span)
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    if cfg.schedule == "step":
        return 0.1 ** sum(epoch >= s for s in cfg.lr_steps)
    raise ValueError(f"unknown schedule '{cfg.schedule}' (choose cosine, step or staged)")


def build_scheduler(optimizer: torch.optim.Optimizer, *, steps_per_epoch: int, epochs: int,
                    cfg: OptimConfig) -> torch.optim.lr_scheduler.LambdaLR:
    lr_factor(0, steps_per_epoch=steps_per_epoch, epochs=epochs, cfg=cfg)  # validate the schedule early
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: lr_factor(s, steps_per_epoch=steps_per_epoch, epochs=epochs, cfg=cfg))


def staged_lr_factor(
    step: int,
    *,
    steps_per_epoch: int,
    epochs: float,
    freeze_epochs: float = 0.0,
    warmup_epochs: float = 0.0,
    freeze_factor: float = 10.0,
    warmup_start: float = 0.01,
    end_factor: float = 0.01,
    alpha: float = 1.5,
) -> float:
    """LIGAR's three-stage schedule (section V.iii, Eq. 3), as a multiplier of the base lr at optimizer step `step`.

    With epoch e = step / steps_per_epoch, F = freeze_epochs and W = warmup_epochs:

    - e < F: head-only training with the backbone frozen (see `freeze_backbone`) at a constant `freeze_factor`
      (the paper: 1e-2 for a base of 1e-3);
    - F <= e < F + W: cosine warm-up from `warmup_start` to 1: w + (1 − w)·½(1 − cos(π·p)), p = (e − F) / W;
    - afterwards the α-cosine from 1 to `end_factor`: end + (1 − end)·½(1 + cos(π·p^α)), p = (e − F − W) /
      (epochs − F − W), held at `end_factor` past the end. α > 1 keeps the rate high for longer (α = 1.5).

    Args:
        step: optimizer step, 0-based.
        steps_per_epoch: optimizer steps per epoch.
        epochs: total epochs, all stages included.
        freeze_epochs: length of the head-only stage.
        warmup_epochs: length of the warm-up stage.
        freeze_factor: multiplier during the head-only stage.
        warmup_start: multiplier at the start of the warm-up (1e-5 / 1e-3 in the paper).
        end_factor: multiplier at the end of training (1e-5 / 1e-3 in the paper).
        alpha: exponent of the progress in the cosine.

    Raises:
        ValueError: the head-only and warm-up stages do not leave room for the α-cosine, or alpha <= 0.
    """
    main = epochs - freeze_epochs - warmup_epochs
    if freeze_epochs < 0 or warmup_epochs < 0 or main <= 0:
        raise ValueError(f"staged schedule: freeze ({freeze_epochs}) and warm-up ({warmup_epochs}) epochs must be "
                         f">= 0 and leave some of the {epochs} epochs for the cosine stage")
    if alpha <= 0:
        raise ValueError(f"staged schedule: alpha must be positive, got {alpha}")
    epoch = step / max(1, steps_per_epoch)
    if epoch < freeze_epochs:
        return freeze_factor
    epoch -= freeze_epochs
    if epoch < warmup_epochs:
        return warmup_start + (1.0 - warmup_start) * 0.5 * (1.0 - math.cos(math.pi * epoch / warmup_epochs))
    progress = min(1.0, (epoch - warmup_epochs) / main)
    return end_factor + (1.0 - end_factor) * 0.5 * (1.0 + math.cos(math.pi * progress**alpha))


def freeze_backbone(model: nn.Module, frozen: bool = True, *, trainable: Sequence[str] = ("head", "heads")) -> int:
    """Freeze (or unfreeze) everything but the classifier, for LIGAR's head-only first stage.

    Freezing sets `requires_grad=False` on every parameter outside the child modules named in `trainable` and puts
    the BatchNorm layers outside them in eval mode (they keep their pretrained statistics, LIGAR paper section V.iii).
    `model.train()` switches those layers back to training, so call this again after every `model.train()` (it is
    idempotent); the trainer does both at each epoch start. Unfreezing makes every parameter trainable and then
    calls `model.train(model.training)`, which re-applies a model's own freezing (TSN's partial BN) and restores
    the BatchNorm modes.

    Build the optimizer before freezing (`build_optimizer` leaves out parameters that do not require gradients;
    SGD skips parameters without gradients, so frozen ones neither move nor decay), and under DDP re-wrap the model
    whenever the set of trainable parameters changes.

    Args:
        model: the recognizer (not its DDP wrapper).
        frozen: freeze (True) or unfreeze (False).
        trainable: names of the top-level child modules that stay trainable.

    Returns:
        The number of frozen parameter tensors.

    Raises:
        ValueError: the model has no child module named in `trainable`.
    """
    children = dict(model.named_children())
    if not any(name in children for name in trainable):
        raise ValueError(f"freeze_backbone: none of {tuple(trainable)} is a child of {type(model).__name__} "
                         f"(children: {', '.join(children)})")
    if not frozen:
        for p in model.parameters():
            p.requires_grad_(True)
        model.train(model.training)
        return 0
    count = 0
    for name, child in children.items():
        if name in trainable:
            continue
        for p in child.parameters():
            p.requires_grad_(False)
            count += 1
        for m in child.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.eval()
    for p in model.parameters(recurse=False):  # parameters owned by the model itself belong to the backbone
        p.requires_grad_(False)
        count += 1
    return count
