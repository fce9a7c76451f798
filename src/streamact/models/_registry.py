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

__all__ = ["register_model", "create_model", "list_models", "is_model"]

_F = TypeVar("_F", bound=Callable[..., nn.Module])
_MODELS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: _F) -> _F:
    """Register a model builder under its function name.

    Args:
        fn: builder taking keyword-only arguments (``pretrained``, ``num_classes``, ...) and returning a model.

    Returns:
        ``fn`` unchanged, so the builder stays directly callable.

    Raises:
        ValueError: if a model with the same name is already registered.
    """
    name = fn.__name__
    if name in _MODELS:
        raise ValueError(f"model {name!r} is already registered")
    _MODELS[name] = fn
    return fn


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
        KeyError: for an unknown name; the message lists the closest registered names.
    """
    if name not in _MODELS:
        close = difflib.get_close_matches(name, list(_MODELS), n=5, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else "; see `streamact models` for the full list"
        raise KeyError(f"unknown model {name!r}{hint}")
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    return _MODELS[name](pretrained=pretrained, **kwargs)
