"""Safe loading of weights; the `PretrainedCfg` itself lives in `streamact.pretrained` (no PyTorch there)."""
from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from streamact.pretrained import IMAGENET_MEAN, IMAGENET_STD, WEIGHTS_DIR, PretrainedCfg

__all__ = ["PretrainedCfg", "IMAGENET_MEAN", "IMAGENET_STD", "load_state_dict", "load_weights", "WEIGHTS_DIR"]


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a state dict from a file a user hands us, without executing pickled code.

    ``.safetensors`` files are read with safetensors; anything else with ``torch.load(weights_only=True)``. A
    training checkpoint (a dict with a ``'model'`` entry) yields its model state, and a ``'module.'`` prefix left
    by DistributedDataParallel is removed.

    Args:
        path: weights or checkpoint file.

    Returns:
        Mapping from parameter / buffer name to tensor, on CPU.

    Raises:
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file does not hold a state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, Mapping) and isinstance(state.get("model"), Mapping):
            state = state["model"]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not contain a state dict of tensors")
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return dict(state)


def load_weights(model: nn.Module, path: str | Path, *, strict: bool = True, head: bool = True) -> nn.Module:
    """Load weights from ``path`` (see `load_state_dict`) into ``model``.

    Args:
        model: model to load into.
        path: weights or checkpoint file.
        strict: require the keys to match exactly.
        head: also load the classifier(s). False loads everything else and keeps ``model``'s own fresh
            classifier, so weights trained on other classes can start a fine-tune; the model must have
            ``reset_classifier`` (every streamact model does), which tells the classifier's keys apart.

    Returns:
        ``model``, for chaining.

    Raises:
        RuntimeError: on missing / unexpected keys (``strict``; without the head, only missing ones count) or
            shape mismatches, naming the file.
    """
    state = load_state_dict(path)
    if not head:
        headless = copy.deepcopy(model)
        headless.reset_classifier(0)
        body = headless.state_dict().keys()
        missing = [k for k in body if k not in state]
        if strict and missing:
            raise RuntimeError(f"cannot load {path} into {type(model).__name__}: missing keys {missing[:5]}"
                               f"{' ...' if len(missing) > 5 else ''}")
        state, strict = {k: state[k] for k in body if k in state}, False
    try:
        model.load_state_dict(state, strict=strict)
    except RuntimeError as e:
        raise RuntimeError(f"cannot load {path} into {type(model).__name__}: {e}") from e
    return model
