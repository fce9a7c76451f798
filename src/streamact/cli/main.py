"""`streamact` command-line entry point. Each subcommand lives in its own module with add_parser()/main(args)."""
from __future__ import annotations

import argparse
import importlib
import sys

from streamact import __version__

# Subcommand name -> module in streamact.cli. Modules import heavy dependencies lazily inside main().
COMMANDS = {
    "data": "data",
    "train": "train",
    "eval": "evaluate",
    "models": "models",
    "recognize": "recognize",
    "export": "export",
    "bench": "bench",
    "demo": "demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamact",
        description="Real-time video action recognition and online action detection on CPUs.",
    )
    parser.add_argument("--version", action="version", version=f"streamact {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, module in COMMANDS.items():
        mod = importlib.import_module(f"streamact.cli.{module}")
        p = mod.add_parser(sub, name)
        p.set_defaults(_main=mod.main)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # Only `train`/`eval` accept free-form --key=value overrides; anything else unknown is an error.
    if extra and not getattr(args, "accepts_overrides", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.overrides = extra
    try:
        return int(args._main(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
