"""Options shared by the subcommands that run models."""
from __future__ import annotations

import argparse

from streamact.device import DEVICES, resolve_device

__all__ = ["add_device_option", "resolve_device"]


def add_device_option(parser: argparse.ArgumentParser) -> None:
    """``--device cpu|cuda|auto`` (default cpu: streamact targets CPUs; cuda needs a CUDA build of torch and a GPU)."""
    parser.add_argument("--device", choices=DEVICES, default="cpu",
                        help="where PyTorch runs the model (cuda only if available; auto: cuda if available)")
