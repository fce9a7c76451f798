"""`streamact demo [--task gestures|detection] --out DIR`: the bundled models live on synthetic streams.

--task gestures (default): live recognition of a synthetic gesture stream with the bundled recognizer.
1. loads the bundled causal TSM-EfficientNet-Lite0 (or --model; a model that cannot run is refused before
   anything is written) with the same defaults as `streamact recognize` (OpenVINO, falling back to PyTorch; the
   model's own smoothing and event settings);
2. generates a stream of gestures back to back (real mp4 + frame-level ground-truth timeline) and runs the
   model on it one new frame at a time with cached state, reporting each gesture once as an event;
3. writes an annotated mp4, a timeline PNG (prediction and events vs truth), the JSONL predictions and events,
   and summary.json with the online metrics, and prints them: frame accuracy and per-frame mAP after the warm-up
   frames, Levenshtein accuracy of the event sequence, event precision / recall / F1 and emission delay (an
   event counts when its label matches a gesture it overlaps and it comes at most 0.5 s after that gesture's
   end), latency and frames/s.

--task detection: live spatio-temporal detection of a synthetic scene with the bundled detector.

1. loads the bundled AMMA-EfficientNet-Lite0 (or --model) the way `streamact detect` does (PyTorch unless
   --runtime says otherwise);
2. renders a scene of figures idling, walking and performing actions (the generator of the synthetic action set,
   with its ground-truth tubes) and detects frame by frame: a model step every t frames over the cached clip
   features, tubelets linked into tubes online;
3. writes an annotated mp4 (boxes coloured by tube, label + score, each tube's trail), the JSONL detections per
   frame, the linked tubes and summary.json, and prints frame-mAP@0.5 and video-mAP@0.2 / 0.5 of the streamed
   detections against the scene's ground truth (`streamact.evaluation.detection`, the protocol of `streamact
   eval`), tubes found vs true, latency and frames/s.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.options import add_device_option
    from streamact.cli.recognize import DEFAULT_MODEL

    from streamact.cli.detect import DEFAULT_MODEL as DEFAULT_DETECTOR

    p = subparsers.add_parser(name, help="the bundled models live on synthetic streams: gesture recognition "
                                         "(default) or action detection (--task detection)",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=("gestures", "detection"), default="gestures",
                   help="recognize gestures (default) or detect and track actions")
    p.add_argument("--out", help="output directory (default runs/demo, detection: runs/demo_detection)")
    p.add_argument("--num-gestures", type=int, default=12, help="gestures: gestures in the stream (default 12)")
    p.add_argument("--frames", type=int, default=144, help="detection: frames in the scene (default 144, 12 s)")
    p.add_argument("--actors", type=int, default=3, help="detection: figures in the scene (default 3)")
    p.add_argument("--size", type=int, default=160, help="frame width of the generated stream (default 160)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated stream (default 0)")
    p.add_argument("--model", help=f"model to run (default: the bundled {DEFAULT_MODEL}, detection: the bundled "
                                   f"{DEFAULT_DETECTOR})")
    p.add_argument("--allow-untrained", action="store_true",
                   help="gestures: run a registered model even if its classifier was never trained on actions "
                        "(default: refuse)")
    p.add_argument("--runtime", choices=("openvino", "onnxruntime", "torch"),
                   help="inference engine (default: gestures on openvino, falling back to torch if it cannot load; "
                        "detection as `streamact detect`, torch for the bundled detector)")
    add_device_option(p)
    p.add_argument("--smoothing", choices=("none", "ema", "window"),
                   help="gestures: score smoothing (default: the model's own, which its event thresholds are tuned "
                        "with)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (default: show it)")
    return p


def main(args: argparse.Namespace) -> int:
    return (_detection if args.task == "detection" else _gestures)(args)


def _gestures(args: argparse.Namespace) -> int:
    from streamact.cli.options import resolve_device
    from streamact.cli.recognize import DEFAULT_MODEL, load_runtime_or_fallback, run_recognition
    from streamact.data.synthetic import generate_stream
    from streamact.inference.events import EventDetector
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.sources import open_source

    device = resolve_device(args.device)  # before any work: a machine without the device fails at once
    # The model next, before anything is written: a model that cannot run (untrained, missing) fails at once too.
    model = args.model or DEFAULT_MODEL
    runtime, runtime_name = load_runtime_or_fallback(model, runtime=args.runtime,
                                                     allow_untrained=args.allow_untrained, device=device)
    out = Path(args.out or "runs/demo")
    out.mkdir(parents=True, exist_ok=True)
    stream = out / "stream.mp4"
    print(f"[1/3] generating a stream of {args.num_gestures} gestures: {stream}", file=sys.stderr)
    generate_stream(stream, num_gestures=args.num_gestures, seed=args.seed, size=args.size)

    engine = StreamingEngine(runtime, smoothing=args.smoothing)
    detector = EventDetector(engine.labels, runtime.pretrained_cfg.events)
    print(f"[2/3] recognizing live with {model} on {runtime_name} (smoothing {engine.smoothing})",
          file=sys.stderr)
    with open_source(stream) as source, open(out / "predictions.jsonl", "w") as jsonl, \
            open(out / "events.jsonl", "w") as events:
        summary = run_recognition(source, engine, detector=detector, jsonl=jsonl, events=events, echo_events=True,
                                  video_path=out / "annotated.mp4", timeline_path=out / "timeline.png",
                                  progress=not args.no_progress)
    summary.update(model=model, runtime=runtime_name, smoothing=engine.smoothing,
                   frame_interval=engine.frame_interval, num_gestures=args.num_gestures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    print("[3/3] done\n", file=sys.stderr)
    latency, m = summary["latency_ms"], summary["metrics"]
    rows = [("model", model), ("runtime", runtime_name), ("frames", summary["frames"]),
            ("warm-up frames", summary["warmup_frames"]),
            ("frame accuracy (after warm-up)", _fmt(m["frame_accuracy"])),
            ("per-frame mAP (after warm-up)", _fmt(m["per_frame_map"])),
            ("gestures / events / correct events", f"{m['gestures']} / {m['events']} / {m['true_positives']}"),
            ("Levenshtein accuracy", _fmt(m["levenshtein_accuracy"])),
            ("event precision / recall / F1", " / ".join(_fmt(m[k]) for k in ("precision", "recall", "f1"))),
            ("emission delay median / p90 (s after gesture end)",
             f"{_fmt(m['delay_median_s'], '+.2f')} / {_fmt(m['delay_p90_s'], '+.2f')}"),
            ("frames/s (decode+infer+write)", summary["fps"]),
            ("latency p50 / p95 (ms per processed frame)", f"{latency['p50']} / {latency['p95']}")]
    _print_rows(rows)
    print(f"\nwrote {out}/annotated.mp4, {out}/timeline.png, {out}/predictions.jsonl, {out}/events.jsonl, "
          f"{out}/summary.json")
    return 1 if summary["error"] else 0


def _detection(args: argparse.Namespace) -> int:
    from streamact.cli.detect import DEFAULT_MODEL, _tube_summary, load_detector, run_detection
    from streamact.errors import UserError
    from streamact.evaluation.detection import evaluate_detections, scene_annotations
    from streamact.inference.detection import DetectionEngine
    from streamact.io.sources import open_source

    if args.device != "cpu":
        raise UserError("the detection demo runs on the CPU (--device cpu)")
    model = args.model or DEFAULT_MODEL
    runtime = load_detector(model, args.runtime)  # before anything is written: a model that cannot run fails here
    out = Path(args.out or "runs/demo_detection")
    out.mkdir(parents=True, exist_ok=True)
    steps = []  # (end frame, tubelets) of every model step, for the evaluation
    engine = DetectionEngine(runtime, on_step=lambda frame, tubelets: steps.append((frame, tubelets)))
    spec = f"synthetic:detection?seed={args.seed}&frames={args.frames}&size={args.size}&actors={args.actors}"
    print(f"[1/3] rendering a scene of {args.actors} figures, {args.frames} frames ({spec})", file=sys.stderr)
    print(f"[2/3] detecting live with {model} on {runtime.name} (a step every {engine.clip_len} frames over "
          f"{engine.num_clips} cached clips)", file=sys.stderr)
    with open_source(spec) as source, open(out / "detections.jsonl", "w") as jsonl:
        summary, tubes = run_detection(source, engine, jsonl=jsonl, video_path=out / "annotated.mp4",
                                       progress=not args.no_progress)
        truth = source.tubes
    (out / "tubes.json").write_text(json.dumps(_tube_summary(tubes, engine.labels, summary["source"], source.fps),
                                               indent=1) + "\n")
    video = "scene"
    annotations = scene_annotations(video, truth, engine.labels, num_frames=summary["frames"],
                                    size=(args.size * 3 // 4, args.size))  # the synthetic source's 4:3 frames
    metrics = evaluate_detections({video: steps}, annotations, [video]).summary()
    summary.update(model=model, runtime=runtime.name, warmup_frames=engine.clip_len, true_tubes=len(truth),
                   metrics={k: metrics[k] for k in ("frame_map@0.5", "video_map@0.2", "video_map@0.5",
                                                    "frame_errors")})
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    print("[3/3] done\n", file=sys.stderr)
    latency, m = summary["latency_ms"], summary["metrics"]
    _print_rows([("model", model), ("runtime", runtime.name), ("frames", summary["frames"]),
                 ("warm-up frames (first step)", engine.clip_len),
                 ("frame-mAP@0.5", _fmt(m["frame_map@0.5"])),
                 ("video-mAP@0.2 / @0.5", f"{_fmt(m['video_map@0.2'])} / {_fmt(m['video_map@0.5'])}"),
                 ("true tubes / linked tubes", f"{len(truth)} / {summary['tubes']}"),
                 ("boxes shown (score >= 0.3)", summary["detections"]),
                 ("frames/s (render+infer+link+write)", summary["fps"]),
                 ("latency p50 / p95 (ms per frame)", f"{latency['p50']} / {latency['p95']}")])
    print(f"\nwrote {out}/annotated.mp4, {out}/detections.jsonl, {out}/tubes.json, {out}/summary.json")
    return 1 if summary["error"] else 0


def _print_rows(rows: list[tuple[str, object]]) -> None:
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "n/a" if value is None else format(value, spec)
