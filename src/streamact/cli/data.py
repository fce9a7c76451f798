"""`streamact data check|synth|stats`: validate a dataset, generate a synthetic one, or measure its colour
statistics for CrossNorm."""
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
    synth.add_argument("kind", choices=["gestures", "untrimmed", "stream", "backgrounds"],
                       help="gestures: Jester-format trimmed clips; untrimmed: long videos where the gesture fills "
                            "a minority of frames (label noise for ACS); stream: one long mp4 of back-to-back "
                            "gestures with a frame-level timeline; backgrounds: PNG scenes without a hand for "
                            "background MixUp (data.mixup_backgrounds)")
    synth.add_argument("--out", required=True, help="output directory (stream: output .mp4 path)")
    synth.add_argument("--per-class", type=int, default=20, help="videos per class (gestures/untrimmed)")
    synth.add_argument("--subjects", type=int, default=None,
                       help="untrimmed: subjects whose scene is shared by all their videos, across classes "
                            "(default: a new scene per video)")
    synth.add_argument("--num-images", type=int, default=100, help="images to write (backgrounds)")
    synth.add_argument("--num-gestures", type=int, default=12, help="gestures in the stream (stream)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--size", type=int, default=160, help="frame size in pixels (square)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")

    stats = sub.add_parser("stats", help="per-video channel mean/std of a training split, for CrossNorm "
                                         "(data.crossnorm_stats)")
    stats.add_argument("root", help="dataset root")
    stats.add_argument("--format", default=None, help="annotation format (default: detected)")
    stats.add_argument("--split", default="train")
    stats.add_argument("--out", required=True, help="statistics file to write (lines 'm1,m2,m3 s1,s2,s3')")
    stats.add_argument("--num", type=int, default=None, help="measure this many random videos (default: all)")
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

    if args.data_command == "stats":
        from streamact.data.datasets import build_records, detect_format
        from streamact.transforms.regularizers import collect_channel_stats

        records, _ = build_records(args.format or detect_format(args.root), root=args.root, split=args.split)
        stats = collect_channel_stats(records, num=args.num, path=args.out)
        print(f"wrote {len(stats)} (mean, std) pairs from {args.root} ({args.split}) to {args.out}")
        return 0

    from streamact.data.datasets import synthetic

    if args.kind == "backgrounds":
        summary = synthetic.generate_backgrounds(args.out, num=args.num_images, seed=args.seed, size=args.size)
    elif args.kind == "gestures":
        summary = synthetic.generate_gestures(args.out, per_class=args.per_class, seed=args.seed, size=args.size,
                                              num_workers=args.workers)
    elif args.kind == "untrimmed":
        summary = synthetic.generate_untrimmed(args.out, per_class=args.per_class, seed=args.seed, size=args.size,
                                               subjects=args.subjects, num_workers=args.workers)
    else:
        summary = synthetic.generate_stream(args.out, num_gestures=args.num_gestures, seed=args.seed, size=args.size)
    json.dump(summary, sys.stdout, indent=2, default=str)
    print()
    return 0
