"""`streamact demo --out DIR`: the main job, live recognition of a synthetic gesture stream with the bundled model.

1. generates a stream of gestures back to back (real mp4 + frame-level ground-truth timeline);
2. loads the bundled causal TSM-EfficientNet-Lite0 and runs it on OpenVINO (falling back to PyTorch if OpenVINO
   is unavailable), one new frame at a time with cached state;
3. writes an annotated mp4, a timeline PNG (prediction vs truth), the JSONL predictions and summary.json
   (frame-level accuracy after the warm-up frames, latency p50/p95, frames/s), and prints a table.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.recognize import DEFAULT_MODEL

    p = subparsers.add_parser(name, help="live recognition of a synthetic gesture stream with the bundled model",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--num-gestures", type=int, default=12, help="gestures in the stream (default 12)")
    p.add_argument("--size", type=int, default=160, help="frame size of the generated stream (default 160)")
    p.add_argument("--seed", type=int, default=0, help="seed of the generated stream (default 0)")
    p.add_argument("--model", default=DEFAULT_MODEL, help=f"model to run (default: the bundled {DEFAULT_MODEL})")
    p.add_argument("--runtime", choices=("openvino", "onnxruntime", "torch"), default="openvino",
                   help="inference engine (default openvino; falls back to torch if it cannot load)")
    p.add_argument("--smoothing", choices=("none", "ema", "window"), default="none",
                   help="score smoothing (default none: the model already averages its last 8 processed frames, "
                        "and more smoothing adds lag that frame accuracy pays for)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.cli.recognize import load_streaming_runtime, run_recognition
    from streamact.data.datasets.synthetic import generate_stream
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.sources import open_source

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stream = out / "stream.mp4"
    print(f"[1/3] generating a stream of {args.num_gestures} gestures: {stream}", file=sys.stderr)
    generate_stream(stream, num_gestures=args.num_gestures, seed=args.seed, size=args.size)

    runtime_name = args.runtime
    try:
        runtime = load_streaming_runtime(args.model, runtime=runtime_name)
    except (ImportError, RuntimeError, OSError) as e:  # [export] extra missing or the runtime failed to load
        print(f"warning: {runtime_name} unavailable ({e}); falling back to torch", file=sys.stderr)
        runtime_name = "torch"
        runtime = load_streaming_runtime(args.model, runtime=runtime_name)
    print(f"[2/3] recognising live with {args.model} on {runtime_name}", file=sys.stderr)
    engine = StreamingEngine(runtime, smoothing=args.smoothing)
    with open_source(stream) as source, open(out / "predictions.jsonl", "w") as jsonl:
        summary = run_recognition(source, engine, jsonl=jsonl, video_path=out / "annotated.mp4",
                                  timeline_path=out / "timeline.png", progress=not args.no_progress)
    summary.update(model=args.model, runtime=runtime_name, frame_interval=engine.frame_interval,
                   num_gestures=args.num_gestures)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))

    print("[3/3] done\n", file=sys.stderr)
    latency = summary["latency_ms"]
    rows = [("model", args.model), ("runtime", runtime_name), ("frames", summary["frames"]),
            ("frame accuracy (after warm-up)", f"{summary['frame_accuracy']:.3f}"),
            ("warm-up frames", summary["warmup_frames"]), ("frames/s (decode+infer+write)", summary["fps"]),
            ("latency p50 / p95 (ms per processed frame)", f"{latency['p50']} / {latency['p95']}")]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    print(f"\nwrote {out}/annotated.mp4, {out}/timeline.png, {out}/predictions.jsonl, {out}/summary.json")
    return 1 if summary["error"] else 0
