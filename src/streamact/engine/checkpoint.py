"""Checkpoints: one dict, written atomically (temp file + rename), loaded with `weights_only=True`.

Layout: {"version", "model", "optimizer", "scheduler", "config", "epoch", "step", "rng", "best_metric",
"class_names"}. `epoch` counts completed epochs, so resuming starts at epoch `epoch`.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from streamact.errors import UserError

__all__ = ["CHECKPOINT_VERSION", "CheckpointError", "CheckpointNotFoundError", "save_checkpoint", "load_checkpoint"]

CHECKPOINT_VERSION = 1


class CheckpointError(UserError, ValueError):
    """A file given as a checkpoint cannot be loaded as one; the message names it."""


class CheckpointNotFoundError(CheckpointError, FileNotFoundError):
    """No file where a checkpoint was expected."""


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write `state` to `path` atomically: a crash mid-write never leaves a truncated checkpoint behind."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"version": CHECKPOINT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load a streamact checkpoint safely (no arbitrary code: `weights_only=True`).

    Raises:
        CheckpointNotFoundError: no file at `path`.
        CheckpointError: the file is not a loadable streamact checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointNotFoundError(f"checkpoint not found: {path}; `streamact train` writes <out_dir>/last.pt "
                                      "and best.pt (e.g. runs/gestures_tsm_effl0_8f/best.pt)")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, truncated zip, foreign objects
        raise CheckpointError(f"{path}: not a loadable checkpoint ({exc})") from exc
    if not isinstance(ckpt, dict) or "model" not in ckpt:
        raise CheckpointError(f"{path}: not a streamact checkpoint (no 'model' entry)")
    return ckpt
