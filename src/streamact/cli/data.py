"""`streamact data check|synth`: validate a dataset, or generate a synthetic one."""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="check a dataset or generate a synthetic one",
                              description="Dataset utilities.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="decode every video of a list file or directory; report unreadable ones")
    check.add_argument("path", help="annotation/list file or a directory of videos / frame folders")
    check.add_argument("--json", help="also write the report here")

    synth = sub.add_parser("synth", help="generate a synthetic dataset (real mp4s + real-format annotations)")
    synth.add_argument("kind", choices=["gestures", "untrimmed", "stream"],
                       help="gestures: Jester-format trimmed clips; untrimmed: long videos where the gesture fills "
                            "a minority of frames (label noise for ACS); stream: one long mp4 of back-to-back "
                            "gestures with a frame-level timeline")
    synth.add_argument("--out", required=True, help="output directory (stream: output .mp4 path)")
    synth.add_argument("--per-class", type=int, default=20, help="videos per class (gestures/untrimmed)")
    synth.add_argument("--num-gestures", type=int, default=12, help="gestures in the stream (stream)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=int, default=160, help="frame size in pixels (square)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")
    return p


def main(args: argparse.Namespace) -> int:
    if args.data_command == "check":
        from streamact.data.check import check_path

        report = check_path(args.path)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        print(f"{report['num_ok']}/{report['num_videos']} readable, {report['num_bad']} unreadable")
        for bad in report["bad"]:
            print(f"  {bad['path']}: {bad['reason']}")
        return 1 if report["num_bad"] else 0

    from streamact.data.datasets import synthetic

    if args.kind == "gestures":
        summary = synthetic.generate_gestures(args.out, per_class=args.per_class, seed=args.seed, size=args.size,
                                              num_workers=args.workers)
    elif args.kind == "untrimmed":
        summary = synthetic.generate_untrimmed(args.out, per_class=args.per_class, seed=args.seed, size=args.size,
                                               num_workers=args.workers)
    else:
        summary = synthetic.generate_stream(args.out, num_gestures=args.num_gestures, seed=args.seed, size=args.size)
    json.dump(summary, sys.stdout, indent=2, default=str)
    print()
    return 0
