"""`streamact data check|synth|stats|convert-boxes`: validate a dataset, generate a synthetic one, measure its colour
statistics for CrossNorm, or convert box-track annotations to a detection pickle."""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="check a dataset or generate a synthetic one",
                              description="Dataset utilities.")
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    check = sub.add_parser("check", help="report every bad annotation line and every unreadable video of a list file "
                                         "or directory (exit code 1 if there is any); on a detection pickle "
                                         "(*-GT.pkl) or its folder: every bad tube and missing frame file")
    check.add_argument("path", help="annotation/list file, a directory of videos / frame folders, or a detection "
                                    "pickle")
    check.add_argument("--json", help="also write the report to this JSON file (default: print only)")

    synth = sub.add_parser("synth", help="generate a synthetic dataset (real mp4s + real-format annotations)")
    synth.add_argument("kind", choices=["gestures", "untrimmed", "stream", "streams", "backgrounds", "detection"],
                       help="gestures: Jester-format trimmed clips; untrimmed: long videos where the gesture fills "
                            "a minority of frames (label noise for ACS); stream: one long mp4 of back-to-back "
                            "gestures with a frame-level timeline; streams: train/val/test sets of such streams in "
                            "the IPN Hand annotation format (for training and evaluating on streams); backgrounds: PNG scenes without a hand for "
                            "background MixUp (data.mixup_backgrounds); detection: figures performing actions, "
                            "with boxes and action tubes in the UCF-24 (or, with --variant jhmdb, JHMDB) format")
    synth.add_argument("--out", required=True, help="output directory (stream: output .mp4 path)")
    synth.add_argument("--per-class", type=int, default=20, help="videos per class (gestures/untrimmed)")
    synth.add_argument("--subjects", type=int, default=None,
                       help="untrimmed: subjects whose scene is shared by all their videos, across classes "
                            "(default: a new scene per video)")
    synth.add_argument("--num-images", type=int, default=100, help="images to write (backgrounds)")
    synth.add_argument("--num-gestures", type=int, default=None,
                       help="gestures per stream (stream: default 12; streams: default 20)")
    synth.add_argument("--num-streams", type=int, nargs=3, default=[60, 10, 24], metavar=("TRAIN", "VAL", "TEST"),
                       help="streams per split (streams; default 60 10 24)")
    synth.add_argument("--num-videos", type=int, default=70, help="videos to render (detection)")
    synth.add_argument("--variant", choices=["ucf24", "jhmdb"], default="ucf24",
                       help="detection: ucf24 = untrimmed, several actors and action segments, UCF101v2-GT.pkl; "
                            "jhmdb = trimmed, one tube per video, three splits, JHMDB-GT.pkl")
    synth.add_argument("--width", type=int, default=160, help="frame width in pixels (detection)")
    synth.add_argument("--height", type=int, default=120, help="frame height in pixels (detection)")
    synth.add_argument("--frames", type=int, nargs=2, metavar=("MIN", "MAX"), default=None,
                       help="frames per video (detection; default 48 80, jhmdb 32 48)")
    synth.add_argument("--camera-shake", type=float, default=1.0, metavar="SCALE",
                       help="detection: scale of the camera jitter, 0 = a still camera (default 1); a set of the "
                            "same seed differs in the shake alone")
    synth.add_argument("--seed", type=int, default=0, help="random seed")
    synth.add_argument("--size", type=int, default=None, help="frame size in pixels, square (default 160; streams: 128)")
    synth.add_argument("--workers", type=int, default=1, help="parallel worker processes")

    convert = sub.add_parser("convert-boxes", help="convert box tracks (CSV/JSON: video,frame,actor_id,label,"
                                                   "x1,y1,x2,y2[,split]) to a UCF101v2-GT.pkl-layout detection pickle")
    convert.add_argument("annotations", help="CSV with a header, or a JSON list of objects with the same keys")
    convert.add_argument("--out", required=True, help="pickle to write, e.g. DIR/mydata-GT.pkl")
    convert.add_argument("--root", default=None,
                         help="dataset folder holding the frames (default: the pickle's folder)")
    convert.add_argument("--frame-pattern", default="rgb-images/{video}/{frame:05d}.jpg",
                         help="frame path below the dataset folder (default: %(default)s)")
    convert.add_argument("--classes", default=None, help="class list file, one name per line (default: order of "
                                                         "first appearance)")
    convert.add_argument("--test-fraction", type=float, default=0.3,
                         help="share of test videos when the file has no split column (default: %(default)s)")

    stats = sub.add_parser("stats", help="per-video channel mean/std of a training split, for CrossNorm "
                                         "(data.crossnorm_stats)")
    stats.add_argument("root", help="dataset root")
    stats.add_argument("--format", default=None, help="annotation format (default: detected)")
    stats.add_argument("--split", default="train", help="split to measure")
    stats.add_argument("--out", required=True, help="statistics file to write (lines 'm1,m2,m3 s1,s2,s3')")
    stats.add_argument("--num", type=int, default=None, help="measure this many random videos (default: all)")
    return p


def _detection_pickle(path: str) -> Path | None:
    """The detection ground-truth pickle `path` names: the file itself, or in a folder its UCF101v2-GT.pkl or
    JHMDB-GT.pkl, else its single *-GT.pkl."""
    path = Path(path)
    if path.suffix == ".pkl":
        return path
    if not path.is_dir():
        return None
    found = [path / n for n in ("UCF101v2-GT.pkl", "JHMDB-GT.pkl") if (path / n).is_file()] or sorted(
        path.glob("*-GT.pkl"))
    return found[0] if len(found) == 1 else None


def main(args: argparse.Namespace) -> int:
    if args.data_command == "check" and _detection_pickle(args.path):
        from streamact.data.datasets.detection import check_detection_annotations

        report = check_detection_annotations(_detection_pickle(args.path))
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        print(f"{report['num_videos']} videos, {report['num_tubes']} tubes, {report['num_frames']} frames: "
              f"{len(report['problems'])} annotation problem(s), {len(report['missing_frames'])} video(s) with "
              f"missing frames")
        for line in report["problems"] + report["missing_frames"]:
            print(f"  {line}")
        return 1 if report["problems"] or report["missing_frames"] else 0

    if args.data_command == "convert-boxes":
        from streamact.data.datasets.box_tracks import convert_box_tracks
        from streamact.data.datasets.common import load_class_list

        ann = convert_box_tracks(args.annotations, args.out, root=args.root, frame_pattern=args.frame_pattern,
                                 classes=load_class_list(args.classes) if args.classes else None,
                                 test_fraction=args.test_fraction)
        num_tubes = sum(len(t) for by_label in ann.gttubes.values() for t in by_label.values())
        print(f"wrote {args.out}: {len(ann.nframes)} videos ({len(ann.train_videos[0])} train, "
              f"{len(ann.test_videos[0])} test), {len(ann.labels)} classes, {num_tubes} tubes")
        return 0

    if args.data_command == "check":
        from streamact.data.check import check_path

        report = check_path(args.path)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(report, f, indent=2)
        for bad in report["bad_lines"]:
            where = bad["path"] if bad["line"] is None else f"{bad['path']}:{bad['line']}"
            print(f"  {where}: {bad['reason']}")
        for bad in report["bad"]:
            print(f"  {bad['reason']}")
        summary = f"{report['num_ok']}/{report['num_videos']} videos readable, {report['num_bad']} unreadable"
        if report["num_bad_lines"]:
            summary += f"; {report['num_bad_lines']} bad annotation line(s), their videos not checked"
        print(summary)
        return 1 if report["num_bad"] or report["num_bad_lines"] else 0

    if args.data_command == "stats":
        from streamact.data.datasets import build_records, detect_format
        from streamact.transforms.regularizers import collect_channel_stats

        records, _ = build_records(args.format or detect_format(args.root), root=args.root, split=args.split)
        stats = collect_channel_stats(records, num=args.num, path=args.out)
        print(f"wrote {len(stats)} (mean, std) pairs from {args.root} ({args.split}) to {args.out}")
        return 0

    from streamact.data import synthetic

    size = args.size or (128 if args.kind == "streams" else 160)
    if args.kind == "detection":
        summary = synthetic.generate_detection(args.out, variant=args.variant, num_videos=args.num_videos,
                                               seed=args.seed, width=args.width, height=args.height,
                                               frames=args.frames, camera_shake=args.camera_shake,
                                               num_workers=args.workers)
    elif args.kind == "backgrounds":
        summary = synthetic.generate_backgrounds(args.out, num=args.num_images, seed=args.seed, size=size)
    elif args.kind == "gestures":
        summary = synthetic.generate_gestures(args.out, per_class=args.per_class, seed=args.seed, size=size,
                                              num_workers=args.workers)
    elif args.kind == "untrimmed":
        summary = synthetic.generate_untrimmed(args.out, per_class=args.per_class, seed=args.seed, size=size,
                                               subjects=args.subjects, num_workers=args.workers)
    elif args.kind == "streams":
        summary = synthetic.generate_stream_set(args.out, num_streams=args.num_streams,
                                                num_gestures=args.num_gestures or 20, seed=args.seed, size=size,
                                                num_workers=args.workers)
    else:
        summary = synthetic.generate_stream(args.out, num_gestures=args.num_gestures or 12, seed=args.seed, size=size)
    print(json.dumps(_short(summary), default=str))
    return 0


def _short(summary: dict) -> dict:
    """A generator's summary without its per-record and per-frame lists (those are in the files it wrote)."""
    short = {k: v for k, v in summary.items() if not isinstance(v, list) and k != "records"}
    if "classes" in summary:
        short["num_classes"] = len(summary["classes"])
    return short
