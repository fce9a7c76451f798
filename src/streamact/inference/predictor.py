"""Load a trained checkpoint as the causal, streamable model that `StreamingEngine` and the exporters run.

    checkpoint.pt ──► load_checkpoint ──► config_from_dict ──► build_model_from_config ──► load_state_dict
        ──► make_causal (warns if trained bi-directionally) ──► eval()
"""
from __future__ import annotations

import warnings
from pathlib import Path

from torch import nn

from streamact.engine.config import TrainConfig

__all__ = ["load_trained_model", "to_streaming", "load_model_for_streaming"]


def load_trained_model(path: str | Path) -> tuple[nn.Module, TrainConfig]:
    """Rebuild the model of a `streamact train` checkpoint with its weights, in eval mode, and its config.

    Args:
        path: a checkpoint written by `streamact train` (``model``, ``config`` and ``class_names`` entries).

    Returns:
        The model (its ``pretrained_cfg`` carries the preprocessing and labels) and the training config.

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
    model = build_model_from_config(cfg, class_names, joint_class_names=ckpt.get("joint_class_names", ()),
                                    pretrained=False)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        raise ValueError(f"{path}: the weights do not fit {cfg.model.name} as configured ({e})") from e
    return model.eval(), cfg


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
