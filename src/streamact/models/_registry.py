"""Model registry: `@register_model` on a thin builder function per variant, `create_model`, `list_models`.

One registry, for models only (timm style). Builders are plain functions with keyword-only arguments; the
registry adds nothing but lookup, so a variant can always be built by calling its function directly.
"""
from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Callable
from typing import Any, TypeVar

from torch import nn

from streamact.errors import UserError

__all__ = ["register_model", "create_model", "list_models", "is_model", "model_weights", "WEIGHTS",
           "UnknownModelError"]

_F = TypeVar("_F", bound=Callable[..., nn.Module])


class UnknownModelError(UserError, KeyError):
    """No registered model has the name asked for; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_WEIGHTS: dict[str, str] = {}

# What ``create_model(name, pretrained=True)`` loads, by kind. Only "action" models have a trained classifier:
# the others predict meaningless classes until trained or fine-tuned.
WEIGHTS = {
    "action": "action-trained, bundled",
    "imagenet": "ImageNet backbone only, classifier untrained",
    "none": "none, random initialisation",
}


def register_model(fn: _F | None = None, *, weights: str = "none") -> _F | Callable[[_F], _F]:
    """Register a model builder under its function name: ``@register_model`` or ``@register_model(weights=...)``.

    Args:
        fn: builder taking keyword-only arguments (``pretrained``, ``num_classes``, ...) and returning a model.
        weights: what the builder loads with ``pretrained=True``, a key of `WEIGHTS`: "action" (the variant ships
            weights trained on actions, classifier included), "imagenet" (an ImageNet backbone under a fresh
            classifier) or "none".

    Returns:
        ``fn`` unchanged, so the builder stays directly callable (or a decorator doing this, when called with
        keywords only).

    Raises:
        ValueError: if a model with the same name is already registered, or `weights` is not a key of `WEIGHTS`.
    """
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHTS)}, got {weights!r}")

    def register(builder: _F) -> _F:
        name = builder.__name__
        if name in _MODELS:
            raise ValueError(f"model {name!r} is already registered")
        _MODELS[name] = builder
        _WEIGHTS[name] = weights
        return builder

    return register if fn is None else register(fn)


def _unknown(name: str) -> str:
    close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `streamact models` for the full list"
    return f"unknown model {name!r}{hint}"


def model_weights(name: str) -> str:
    """What ``create_model(name, pretrained=True)`` loads: "action", "imagenet" or "none" (see `WEIGHTS`).

    Raises:
        UnknownModelError: for an unknown name.
    """
    if name not in _WEIGHTS:
        raise UnknownModelError(_unknown(name))
    return _WEIGHTS[name]


def is_model(name: str) -> bool:
    """Whether ``name`` is a registered model."""
    return name in _MODELS


def list_models(pattern: str = "*") -> list[str]:
    """Sorted names of registered models matching a shell-style pattern (``fnmatch``), e.g. ``'tsm_*'``."""
    return sorted(n for n in _MODELS if fnmatch.fnmatchcase(n, pattern))


def create_model(name: str, pretrained: bool = False, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Build a registered model.

    Args:
        name: registered model name (see `list_models`).
        pretrained: load the best initialisation available offline (see each builder).
        num_classes: number of output classes; ``None`` keeps the variant's default.
        **kwargs: further keyword arguments of the builder (e.g. ``num_segments``, ``dropout``).

    Returns:
        The model, in training mode.

    Raises:
        UnknownModelError: for an unknown name (a KeyError); the message lists the closest registered names.
    """
    if name not in _MODELS:
        raise UnknownModelError(_unknown(name))
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _MODELS[name](pretrained=pretrained, **kwargs)
