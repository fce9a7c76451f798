"""`streamact train CONFIG.yaml [--section.key=value ...] [--resume | --overwrite]`."""
from __future__ import annotations

import argparse
import logging


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name, help="train a recognizer or a detector from a YAML recipe",
        usage="streamact train [CONFIG.yaml] [--section.key=value | --section.key value ...] "
              "[--resume | --overwrite] [--no-progress]",
        description="Train a recognizer, or a detector (data.format: detection, e.g. "
                    "configs/detection_amma_effl0.yaml). Any config field can be overridden as --section.key=value or "
                    "--section.key value (e.g. --optim.lr 0.005 --data.root=data/gestures --epochs 5); a bare "
                    "boolean field means true (--amp: bf16 autocast); unknown keys are errors. --device cpu|cuda|auto "
                    "(default cpu) chooses where it trains. "
                    "Distributed on CPU: torchrun --nproc_per_node=2 -m streamact train CONFIG.yaml",
        epilog="CONFIG.yaml, the recipe, comes first (default: none, the built-in defaults apply). Config sections "
               "and fields: see src/streamact/engine/config.py or a recipe in configs/.")
    # The recipe is read from the free-form tokens, not declared as a positional: argparse would otherwise take the
    # value of `--epochs 1` for the recipe when no recipe is given.
    p.add_argument("--resume", action="store_true", help="continue from <out_dir>/last.pt (default: start afresh)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run already in out_dir (checkpoints and metrics); without it, or --resume, "
                        "training into a folder that holds a run is refused")
    p.add_argument("--no-progress", action="store_true",
                   help="no progress bars: a log line a minute (step, loss, lr, clips/s) and one per epoch instead "
                        "(default: show the bars)")
    p.set_defaults(accepts_overrides=True)
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.engine.config import load_config
    from streamact.engine.trainer import Trainer

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    tokens = list(args.overrides)
    config = tokens.pop(0) if tokens and not tokens[0].startswith("--") else None
    cfg = load_config(config, tokens)
    trainer = Trainer(cfg, progress=not args.no_progress)
    metrics = trainer.fit(resume=args.resume, overwrite=args.overwrite)
    if trainer.is_main:
        shown = {k: float(f"{v:.4g}") if isinstance(v, float) else v for k, v in metrics.items()}
        print(f"done: {shown}\ncheckpoints in {cfg.out_dir}")
    return 0
