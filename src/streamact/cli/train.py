"""`streamact train CONFIG.yaml [--section.key=value ...] [--resume]`."""
from __future__ import annotations

import argparse
import logging
import sys


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name, help="train a recognizer from a YAML recipe",
        description="Train a recognizer. Any config field can be overridden as --section.key=value "
                    "(e.g. --optim.lr=0.005 --data.root=data/gestures --epochs=5); unknown keys are errors. "
                    "Distributed on CPU: torchrun --nproc_per_node=2 -m streamact train CONFIG.yaml",
        epilog="Config sections and fields: see src/streamact/engine/config.py or a recipe in configs/.")
    p.add_argument("config", nargs="?", help="YAML recipe (defaults apply when omitted)")
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt")
    p.add_argument("--amp", action="store_true", help="CPU bf16 autocast (same as --amp=true)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (logs only)")
    p.set_defaults(accepts_overrides=True)
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.engine.config import ConfigError, load_config
    from streamact.engine.trainer import NonFiniteLossError, Trainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.amp:
        cfg.amp = True
    trainer = Trainer(cfg, progress=not args.no_progress)
    try:
        metrics = trainer.fit(resume=args.resume)
    except NonFiniteLossError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    if trainer.is_main:
        shown = {k: round(v, 4) if isinstance(v, float) else v for k, v in metrics.items()}
        print(f"done: {shown}\ncheckpoints in {cfg.out_dir}")
    return 0
