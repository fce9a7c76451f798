"""LIGAR's training-side regularisers (LIGAR paper, sections IV.ii and V.iii, and the authors' code): Representation
Self-Challenging, the AugMix Jensen-Shannon consistency loss and adaptive gradient clipping.

They are pure functions around a model's `forward_features` / `forward_head` split, so the trainer adds them with a
few lines; see each docstring for the call pattern.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["bn_eval", "rsc_features", "js_consistency_loss", "adaptive_clip_grad_"]


@contextmanager
def bn_eval(module: nn.Module) -> Iterator[nn.Module]:
    """Switch the BatchNorm layers of `module` that are training to eval mode for the block, then restore them.

    Inside, the layers normalise with (and do not update) their running statistics, as RSC's re-run of the head
    needs: the masked features are not a sample of the feature distribution the statistics track.
    """
    switched = [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    for m in switched:
        m.eval()
    try:
        yield module
    finally:
        for m in switched:
            m.train()


def rsc_features(
    features: torch.Tensor,
    logits_fn: Callable[[torch.Tensor], torch.Tensor],
    labels: torch.Tensor,
    *,
    drop_p: float = 0.33,
    apply_p: float = 0.5,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Representation Self-Challenging (Huang et al. 2020) on pooled features, as LIGAR uses it.

    For each sample, the gradient of its ground-truth logit with respect to the features says which entries the
    head relies on most; the entries whose gradient lies above the sample's (1 − drop_p) quantile are zeroed and
    the rest rescaled by 1 / (1 − drop_p). Only a random `apply_p` share of the samples is challenged; the others
    pass unchanged. The mask is computed on a detached copy (so it works with a frozen backbone too) and is
    constant: the returned features backpropagate into `features` through the kept entries.

    Call pattern (the head is re-run on the masked features with its BatchNorm in eval mode, as in the authors' code)::

        feats = model.forward_features(clips)            # pooled, e.g. (B, 960, 1, 1, 1)
        with bn_eval(model.head):
            feats = rsc_features(feats, model.forward_head, labels)
            logits = model.forward_head(feats)
        loss = criterion(logits, labels)

    Args:
        features: (B, ...) features entering the head.
        logits_fn: the head, features -> (B, num_classes) logits.
        labels: (B,) ground-truth classes.
        drop_p: share of entries zeroed in a challenged sample.
        apply_p: probability that a sample is challenged.
        generator: random generator of the per-sample choice.

    Returns:
        Features of the same shape.

    Raises:
        ValueError: a probability is out of range, or labels do not match the batch.
    """
    if not 0.0 <= drop_p < 1.0 or not 0.0 <= apply_p <= 1.0:
        raise ValueError(f"rsc_features: need 0 <= drop_p < 1 and 0 <= apply_p <= 1, got {drop_p}, {apply_p}")
    batch = features.shape[0]
    if labels.shape != (batch,):
        raise ValueError(f"rsc_features: labels {tuple(labels.shape)} do not match a batch of {batch}")
    retain_p = 1.0 - drop_p
    probe = features.detach().requires_grad_(True)
    with torch.enable_grad():
        score = logits_fn(probe).gather(1, labels[:, None]).sum()  # each sample's GT logit
        (grad,) = torch.autograd.grad(score, probe)
    flat = grad.reshape(batch, -1).float()  # (B, D)
    threshold = torch.quantile(flat, retain_p, dim=1, keepdim=True)  # (B, 1)
    keep = (flat <= threshold).to(features.dtype) / retain_p  # (B, D)
    challenged = (torch.rand(batch, generator=generator) < apply_p).to(features.device)  # (B,), drawn on the CPU
    mask = torch.where(challenged[:, None], keep, torch.ones_like(keep)).reshape(features.shape)  # (B, ...)
    return features * mask


def js_consistency_loss(logits: Sequence[torch.Tensor] | torch.Tensor, *, eps: float = 1e-7) -> torch.Tensor:
    """AugMix's Jensen-Shannon consistency between the predictions of several views of the same samples.

    JS(p_1, ..., p_V) = 1/V Σ_v KL(p_v ‖ M), M = 1/V Σ_v p_v, with p_v = softmax of view v; averaged over the
    batch. AugMix weights it by 12 next to the cross-entropy of the views.

    Args:
        logits: V ≥ 2 tensors (B, num_classes), or one tensor (V, B, num_classes).
        eps: floor of M inside the logarithm.

    Returns:
        The scalar loss (0 when all views agree).

    Raises:
        ValueError: fewer than 2 views, or views of different shapes.
    """
    views = list(logits)
    if len(views) < 2 or any(v.shape != views[0].shape or v.ndim != 2 for v in views):
        raise ValueError("js_consistency_loss: needs at least 2 views of equal shape (B, num_classes)")
    probs = torch.stack([v.float().softmax(-1) for v in views])  # (V, B, num_classes)
    log_mixture = probs.mean(0).clamp(eps, 1.0).log()  # (B, num_classes)
    return sum(F.kl_div(log_mixture, p, reduction="batchmean") for p in probs) / len(views)


def _unitwise_norm(x: torch.Tensor) -> torch.Tensor:
    # One norm per output unit (dim 0) over the other dims; vectors and scalars: one unit per entry.
    if x.ndim <= 1:
        return x.abs()
    return torch.linalg.vector_norm(x, dim=tuple(range(1, x.ndim)), keepdim=True)


@torch.no_grad()
def adaptive_clip_grad_(
    parameters: Iterable[torch.Tensor] | torch.Tensor,
    clip: float = 0.2,
    *,
    eps: float = 1e-3,
    grad_eps: float = 1e-6,
) -> None:
    """Adaptive gradient clipping (Brock et al. 2021) in place, as LIGAR applies it to every parameter incl. the head.

    For each unit (a slice along dim 0; an entry of a vector): max = clip · max(‖W_unit‖, eps); if ‖g_unit‖ > max,
    g_unit ← g_unit · max / max(‖g_unit‖, grad_eps). Call it where `clip_grad_norm_` would go, between `backward`
    and `optimizer.step` (after unscaling, with a grad scaler).

    Args:
        parameters: tensors with `.grad` (those without are skipped).
        clip: ratio of gradient to weight norm allowed (0.2 in LIGAR).
        eps: floor of the weight norm, so zero-initialised units can still move.
        grad_eps: floor of the gradient norm in the division.

    Raises:
        ValueError: `clip` is not positive.
    """
    if clip <= 0:
        raise ValueError(f"adaptive_clip_grad_: clip must be positive, got {clip}")
    params = [parameters] if isinstance(parameters, torch.Tensor) else list(parameters)
    for p in params:
        if p.grad is None:
            continue
        max_norm = clip * _unitwise_norm(p).clamp_min(eps)
        grad_norm = _unitwise_norm(p.grad)
        scale = max_norm / grad_norm.clamp_min(grad_eps)
        p.grad.mul_(torch.where(grad_norm > max_norm, scale, torch.ones_like(scale)))
