"""Load a trained checkpoint as the causal, streamable model that `StreamingEngine` and the exporters run.

    checkpoint.pt ──► load_trained_model (streamact.engine.build) ──► make_causal (warns if trained
        bi-directionally) ──► eval()
"""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from streamact.engine.build import load_trained_model

__all__ = ["to_streaming", "load_model_for_streaming"]


def to_streaming(model: nn.Module, *, source: str = "the model") -> nn.Module:
    """Convert a recognizer in place to its causal streaming form, warning when that changes what it computes.

    A model trained with bi-directional temporal layers (TSM's two-way shift, MixTConv's centred kernels) needs
    future frames; the causal form runs but loses accuracy until fine-tuned causally (train with
    ``--model.kwargs.causal=true``, optionally ``--model.init_weights=<checkpoint>``).

    Raises:
        TypeError: the model has no streaming form.
    """
    if not hasattr(model, "forward_step"):
        raise TypeError(f"{type(model).__name__} has no streaming form (forward_step/init_state)")
    future = model.non_causal_layers()
    if future:
        warnings.warn(
            f"{source} was trained bi-directionally ({len(future)} temporal layers read future frames, e.g. "
            f"{future[0]}); running it causally for streaming costs accuracy until it is fine-tuned with "
            "--model.kwargs.causal=true",
            UserWarning, stacklevel=2)
    return model.make_causal().eval()


def load_model_for_streaming(path: str | Path) -> nn.Module:
    """`load_trained_model` + `to_streaming`: the causal model that `StreamingEngine` and the exporters run."""
    model, _ = load_trained_model(path)
    return to_streaming(model, source=str(path))
