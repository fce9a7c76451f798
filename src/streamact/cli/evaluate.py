"""`streamact eval CHECKPOINT DATA_ROOT`: real-time protocol by default (one clip, centre crop).

On a stream dataset (IPN Hand, THUMOS, `streamact data synth streams`) the model runs live over every stream, frame
by frame, and is scored as a live gesture system: frame accuracy, per-frame mAP, Levenshtein accuracy, event
precision / recall / F1 and emission delay (`streamact.evaluation.online`).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.options import add_device_option

    p = subparsers.add_parser(
        name, help="evaluate a checkpoint (real-time protocol by default)",
        description="Evaluate a trained checkpoint or a registered model with bundled action weights. The default "
                    "protocol is the real-time one a live stream allows: one clip per video, centre crop, no test-time augmentation. --num-clips N averages N evenly "
                    "spaced clips (the offline multi-view protocol). A detector checkpoint (AMMA) is streamed over "
                    "the split's videos clip by clip; its tubelets are linked into tubes and scored by frame-mAP, "
                    "video-mAP and, for classes the annotations pair by direction (motion_pairs), the share of "
                    "found actors named the right way (JHMDB splits: test1, test2, test3).")
    p.add_argument("checkpoint", help="a .pt checkpoint written by `streamact train`, or a registered model with "
                                      "shipped weights (on stream datasets also an exported .onnx / OpenVINO .xml)")
    p.add_argument("data", nargs="?", help="dataset root (default: the one the model was trained on)")
    p.add_argument("--format", help="annotation format (default: from the checkpoint's config)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--num-clips", type=int, default=1, help="clips per video, averaged (default 1)")
    p.add_argument("--batch-size", type=int, default=16, help="clips per batch (default 16)")
    p.add_argument("--num-workers", type=int, default=2, help="data loading processes (default 2)")
    p.add_argument("--out", help="output directory (default: <checkpoint dir>/eval_<split>)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast (default: fp32)")
    p.add_argument("--runtime", choices=["torch", "onnxruntime", "openvino"],
                   help="stream datasets: inference engine (default: the one the model file implies, torch for "
                        "checkpoints and registered models)")
    add_device_option(p)
    return p


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from streamact.cli.options import resolve_device
    from streamact.device import slow_bf16_warning

    device = resolve_device(args.device)
    if args.amp and (slow := slow_bf16_warning(device, option="--amp")):
        print(f"warning: {slow}", file=sys.stderr)
    if args.data and _is_stream_dataset(args.data, args.format):
        return _eval_streams(args, device)

    from streamact.data.datasets import build_records, detect_format
    from streamact.data.loader import build_loader
    from streamact.engine.trainer import build_dataset, evaluate
    from streamact.engine.build import load_model_for_eval
    from streamact.errors import UserError
    from streamact.viz import plot_confusion_matrix

    model, cfg = load_model_for_eval(args.checkpoint)
    registered = not Path(args.checkpoint).is_file()
    if registered and not args.data:
        raise UserError(f"{args.checkpoint} is a registered model: give the dataset folder to evaluate it on")
    class_names = list(model.pretrained_cfg.label_names)
    if args.data:
        cfg.data.root = args.data
    if args.format or (registered and cfg.data.format != "detection"):  # a registered detector knows its format
        cfg.data.format = args.format or detect_format(cfg.data.root)
    default_out = (Path("runs/eval") / f"{args.checkpoint}_{args.split}" if registered
                   else Path(args.checkpoint).parent / f"eval_{args.split}")
    out = Path(args.out) if args.out else default_out
    if cfg.data.format == "detection":
        return _evaluate_detector(model, cfg, args, out)
    records, data_classes = build_records(cfg.data.format, root=cfg.data.root, split=args.split)
    if not records:
        raise UserError(f"split '{args.split}' of {cfg.data.root} has no videos; choose another with --split")
    if list(data_classes) != class_names:
        raise UserError(f"the classes of {cfg.data.root} ({len(data_classes)}) differ from the checkpoint's "
                        f"({len(class_names)}); evaluate on the dataset the model was trained for")
    pcfg = model.pretrained_cfg
    dataset = build_dataset(cfg.data, records, train=False, mean=pcfg.mean, std=pcfg.std, num_clips=args.num_clips)
    loader = build_loader(dataset, args.batch_size, shuffle=False, num_workers=args.num_workers)
    meter, num_bad = evaluate(model, loader, len(class_names), class_names=class_names, amp=args.amp, progress=True,
                               device=device)
    m = meter.compute()
    m.update(checkpoint=str(args.checkpoint), split=args.split, num_clips=args.num_clips, skipped_samples=num_bad,
             protocol="real-time: 1 clip, centre crop" if args.num_clips == 1 else f"{args.num_clips} clips, centre crop")

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    np.save(out / "scores.npy", meter.scores)
    plot_confusion_matrix(np.array(m["confusion_matrix"]), class_names, out / "confusion.png",
                          title=f"{cfg.model.name} on {args.split}: top-1 {m['top1']:.3f}")
    width = max(len(c) for c in class_names)
    print(f"{'class':<{width}}  accuracy")
    for name, acc in m["per_class"].items():
        print(f"{name:<{width}}  {'-' if acc is None else f'{acc:.3f}'}")
    print(f"\n{m['protocol']} | samples {m['num_samples']} | skipped {num_bad} | top-1 {m['top1']:.4f} | "
          f"top-5 {m['top5']:.4f} | mean class acc {m['mean_class_accuracy']:.4f}\nwrote {out}/metrics.json, "
          f"{out}/confusion.png")
    return 0


def _evaluate_detector(model, cfg, args: argparse.Namespace, out: Path) -> int:
    """Stream the detector over the split's videos, link tubes, and write the detection report."""
    from streamact.data.datasets.detection import load_detection_annotations
    from streamact.engine.tasks import evaluate_detector, find_annotation_file, split_videos
    from streamact.errors import UserError
    from streamact.evaluation.detection_report import write_detection_report

    ann = load_detection_annotations(find_annotation_file(cfg.data.root), on_error="skip")
    if list(ann.labels) != list(model.pretrained_cfg.label_names):
        raise UserError(f"the classes of {cfg.data.root} ({len(ann.labels)}) differ from the checkpoint's "
                        f"({model.pretrained_cfg.num_classes}); evaluate on the dataset the model was trained for")
    videos = split_videos(ann, args.split)
    if not videos:
        raise UserError(f"split '{args.split}' of {cfg.data.root} has no videos; choose another with --split")
    result = evaluate_detector(model, ann, videos, amp=args.amp, progress=True)
    # Draw the middle frame of the first ground-truth tube of a few videos.
    draw = [(v, int(tube[len(tube) // 2, 0])) for v in videos[:6] for _, tube in list(ann.tubes(v))[:1]]
    write_detection_report(out, result, ann, draw)
    summary = result.summary()
    summary.update(checkpoint=str(args.checkpoint), split=args.split)
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))
    width = max(len(c) for c in ann.labels)
    print(f"{'class':<{width}}  frame-AP@0.5  video-AP@0.5")
    for name, row in summary["per_class"].items():
        fap, vap = row["frame_ap@0.5"], row["video_ap@0.5"]
        cells = [_fraction(v) for v in (fap, vap)]
        print(f"{name:<{width}}  {cells[0]:>12}  {cells[1]:>12}")
    for pair, row in summary["direction"].items():
        found = " / ".join(f"{c['found']} of {c['boxes']}" for c in row["classes"].values())
        low, high = (_fraction(x) for x in row["interval_95"])
        print(f"direction {pair}: {_fraction(row['balanced_accuracy'])} balanced accuracy (95% over videos "
              f"{low}-{high}) on the found true boxes ({found}; 0.5 = cannot tell them apart)")
    print(f"\n{len(videos)} videos | frame-mAP@0.5 {summary['frame_map@0.5']} | video-mAP@0.2 "
          f"{summary['video_map@0.2']} | @0.5 {summary['video_map@0.5']} | @0.75 {summary['video_map@0.75']}\n"
          f"wrote {out}/metrics.json and the detection report (detection_metrics.md, PR curves, frames)")
    return 0


def _fraction(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _is_stream_dataset(root: str, format: str | None) -> bool:
    from streamact.data.datasets import detect_format

    return (format or detect_format(root)) in ("ipn", "thumos")


def _eval_streams(args: argparse.Namespace, device: str) -> int:
    """Score a streaming model live on every stream of a split; metrics to stdout (table) and metrics.json."""
    from streamact.cli.recognize import load_streaming_runtime
    from streamact.data.datasets import build_records, detect_format
    from streamact.errors import UserError
    from streamact.evaluation.online import run_streams, score_streams

    runtime = load_streaming_runtime(args.checkpoint, runtime=args.runtime, device=device)
    pcfg = runtime.pretrained_cfg
    records, class_names = build_records(args.format or detect_format(args.data), root=args.data, split=args.split)
    if not records:
        raise UserError(f"split '{args.split}' of {args.data} has no readable streams; choose another with --split")
    if list(class_names) != list(pcfg.label_names or ()):
        raise UserError(f"the dataset's classes ({', '.join(class_names)}) differ from the model's; evaluate a model "
                        "trained on these classes")
    streams = run_streams(runtime, records, class_names)
    m = score_streams(streams, class_names, pcfg.events, background=records[0].meta["background"])
    m.update(model=str(args.checkpoint), data=str(args.data), split=args.split, event_settings=_asdict(pcfg.events),
             frame_interval=pcfg.frame_interval, clip_len=pcfg.clip_len)
    name = Path(args.checkpoint).stem if Path(args.checkpoint).is_file() else str(args.checkpoint)
    out = Path(args.out) if args.out else (Path(args.checkpoint).parent if Path(args.checkpoint).is_file()
                                           else Path("runs")) / f"eval_{name}_{args.split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    rows = [("streams", m["streams"]), ("frames", m["frames"]), ("frame accuracy", m["frame_accuracy"]),
            ("per-frame mAP", m["per_frame_map"]), ("Levenshtein accuracy", m["levenshtein_accuracy"]),
            ("gestures / events", f"{m['gestures']} / {m['events']}"), ("event precision", m["precision"]),
            ("event recall", m["recall"]), ("event F1", m["f1"]),
            ("median delay after gesture end (s)", m["delay_median_s"]), ("p90 delay (s)", m["delay_p90_s"])]
    for key, value in rows:
        print(f"{key:<36} {value:.3f}" if isinstance(value, float) else f"{key:<36} {value}")
    print(f"wrote {out}/metrics.json")
    return 0


def _asdict(cfg) -> dict:
    import dataclasses

    return dataclasses.asdict(cfg)
