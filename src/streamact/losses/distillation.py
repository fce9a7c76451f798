"""Knowledge distillation from a (multi-modal) teacher (Hinton et al. 2015; VTN, arXiv 1905.08711 section 3.2).

VTN distils a two-stream teacher (an RGB and an RGB-difference VTN, fused) into a single student, e.g. a stacked
RGB + RGB-difference model (paper Table 1: 75.2 -> 76.0 Video@1 on Mini-Kinetics, at the cost of one stream).
The authors' code uses a temperature of 8 and a KD weight of 0.4 (openvinotoolkit/training_extensions)::

    loss = CE(student, labels) + 0.4 * kd_loss(student_logits, teacher(clips), temperature=8)

Every member of the teacher computes its own modality from the same normalised RGB clips the student gets (see
`streamact.layers.modality`), so one data pipeline feeds student and teacher.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from streamact.engine.build import load_trained_model

__all__ = ["kd_loss", "TwoStreamTeacher", "load_teacher"]


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 8.0) -> torch.Tensor:
    """``T^2 * KL(softmax(teacher / T) || softmax(student / T))``, averaged over the batch.

    The T^2 factor keeps the gradient scale independent of T (the softened gradients shrink as 1/T^2): the gradient
    with respect to the student logits is ``T * (softmax(student / T) - softmax(teacher / T)) / B``. The teacher's
    logits are a fixed target (detached).

    Args:
        student_logits: (B, K).
        teacher_logits: (B, K).
        temperature: T > 0.

    Returns:
        Scalar loss.

    Raises:
        ValueError: for mismatched shapes or a non-positive temperature.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ in shape")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    log_teacher = F.log_softmax(teacher_logits.detach() / temperature, dim=-1)
    kl = F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)
    return kl * temperature**2


class TwoStreamTeacher(nn.Module):
    """Frozen ensemble of recognizers whose logits are averaged (late fusion).

    The paper calls its teacher a "fusion of two models" without giving the rule; the authors' two-stream model
    (``VideoTransformerTwoStream``) returns ``0.5 * logits_rgb + 0.5 * logits_motion``, i.e. the mean of the members'
    logits, which is what this does for any number of members. The teacher is always in eval mode (BatchNorm uses its
    running statistics, dropout is off, even when a trainer calls ``train()`` on everything), has no trainable
    parameters and runs without building a graph.
    """

    def __init__(self, models: Sequence[nn.Module]) -> None:
        """
        Args:
            models: recognizers taking the same clips (B, C, T, H, W) and returning (B, K) logits of the same classes.

        Raises:
            ValueError: if ``models`` is empty.
        """
        super().__init__()
        if not models:
            raise ValueError("a teacher needs at least one model")
        self.members = nn.ModuleList(models)
        self.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> TwoStreamTeacher:
        """Stays in eval mode whatever ``mode`` is: a teacher's predictions must not depend on the student's phase."""
        return super().train(False)

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Mean of the members' logits (B, K) for clips (B, C, T, H, W)."""
        return torch.stack([member(x) for member in self.members]).mean(0)  # (M, B, K) -> (B, K)


def load_teacher(checkpoint_paths: Sequence[str | Path], class_names: Sequence[str]) -> TwoStreamTeacher:
    """Build a `TwoStreamTeacher` from `streamact train` checkpoints (e.g. an RGB and an RGB-difference VTN).

    Args:
        checkpoint_paths: one checkpoint per member; each holds its ``config`` and ``class_names``.
        class_names: the student's classes, in label order; every member must have exactly these.

    Returns:
        The frozen teacher.

    Raises:
        FileNotFoundError: a checkpoint does not exist.
        ValueError: no checkpoint given, a file is not a `streamact train` checkpoint, or a member's classes differ
            from the student's (the message names the checkpoint and the first difference).
    """
    if not checkpoint_paths:
        raise ValueError("load_teacher needs at least one checkpoint")
    expected = tuple(class_names)
    members = []
    for path in checkpoint_paths:
        model, _ = load_trained_model(path)
        found = tuple(model.pretrained_cfg.label_names or ())
        if found != expected:
            raise ValueError(f"teacher checkpoint {path} was trained on different classes than the student: "
                             f"{_first_difference(found, expected)}")
        members.append(model)
    return TwoStreamTeacher(members)


def _first_difference(found: tuple[str, ...], expected: tuple[str, ...]) -> str:
    if len(found) != len(expected):
        return f"{len(found)} classes, the student has {len(expected)}"
    i = next(i for i, (a, b) in enumerate(zip(found, expected)) if a != b)
    return f"class {i} is {found[i]!r}, the student's is {expected[i]!r}"
