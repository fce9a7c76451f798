"""Load a trained checkpoint as the causal, streamable model that `StreamingEngine` and the exporters run.

    checkpoint.pt ──► load_checkpoint ──► config_from_dict ──► build_model_from_config ──► load_state_dict
        ──► make_causal (warns if trained bi-directionally) ──► eval()
"""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

__all__ = ["load_model_for_streaming"]


def load_model_for_streaming(path: str | Path) -> nn.Module:
    """Rebuild the model of a `streamact train` checkpoint in its causal streaming form, in eval mode.

    A model trained with bi-directional temporal layers (TSM's two-way shift, MixTConv's centred kernels) needs
    future frames; it is converted in place to the causal form, which runs but loses accuracy until fine-tuned
    causally (train with ``--model.kwargs.causal=true``), and a `UserWarning` says so.

    Args:
        path: a checkpoint written by `streamact train` (``model``, ``config`` and ``class_names`` entries).

    Returns:
        The model with the checkpoint's weights; its ``pretrained_cfg`` carries the preprocessing and labels.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: the file is not a streamact checkpoint, lacks its config or class names, or its weights do not
            fit the model its config describes.
    """
    from streamact.engine.checkpoint import load_checkpoint
    from streamact.engine.config import config_from_dict
    from streamact.engine.trainer import build_model_from_config

    ckpt = load_checkpoint(path)
    missing = [key for key in ("config", "class_names") if not ckpt.get(key)]
    if missing:
        raise ValueError(f"{path}: the checkpoint has no {' or '.join(missing)}; it was not written by "
                         "`streamact train`")
    cfg = config_from_dict(ckpt["config"], source=str(path))
    class_names = [str(name) for name in ckpt["class_names"]]
    model = build_model_from_config(cfg, class_names, pretrained=False)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit {cfg.model.name} as configured ({e})") from e
    if hasattr(model, "make_causal"):
        future = [name for name, layer in model.temporal_layers() if not _is_causal(layer)]
        if future:
            warnings.warn(
                f"{path}: {cfg.model.name} was trained with bi-directional temporal layers ({len(future)}, e.g. "
                f"{future[0]}); running it causally for streaming costs accuracy until it is fine-tuned with "
                "--model.kwargs.causal=true", UserWarning, stacklevel=2)
        model.make_causal()
    return model.eval()


def _is_causal(layer: nn.Module) -> bool:
    """Whether a temporal layer already sees only past frames (TSM spells it `bidirectional`, MixTConv `causal`)."""
    if hasattr(layer, "causal"):
        return bool(layer.causal)
    return not getattr(layer, "bidirectional", False)
