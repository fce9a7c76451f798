"""`streamact bench [--quick] [--format json]`: streaming speed, side by side in one run; writes docs/RESULTS.md."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact import benchmark

    p = subparsers.add_parser(name, help="benchmark streaming speed (writes docs/RESULTS.md)",
                              description=benchmark.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="fewer repeats and frames (a few minutes)")
    p.add_argument("--format", choices=("table", "json"), default="table", help="what to print")
    p.add_argument("--data", type=Path, default=Path("data/bench_gestures"),
                   help="synthetic gesture set for the bf16 agreement check (skipped if absent)")
    p.add_argument("--json-out", type=Path, default=Path("docs/bench_streaming.json"), help="JSON result file")
    p.add_argument("--no-write", action="store_true", help="do not update docs/RESULTS.md")
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.benchmark import run_benchmark, to_markdown
    from streamact.results import write_section

    result = run_benchmark(quick=args.quick, data_root=args.data)
    command = f"streamact bench{' --quick' if args.quick else ''}"
    if not args.no_write:
        args.json_out.parent.mkdir(parents=True, exist_ok=True)
        args.json_out.write_text(json.dumps(result, indent=2))
        write_section("streaming", to_markdown(result), command=command)
    if args.format == "json":
        json.dump(result, sys.stdout, indent=2)
        print()
    else:
        print(to_markdown(result))
    return 0
