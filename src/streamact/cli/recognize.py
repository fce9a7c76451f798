"""`streamact recognize SOURCE --model MODEL`: recognise actions live, frame by frame, with cached state.

    SOURCE (file | frame folder | camera | rtsp/http | synthetic:gestures) ──► FrameSource ──► StreamingEngine
        ──► JSONL (one line per prediction, flushed) + annotated mp4 + timeline PNG + summary on stderr

Every frame is processed unless --realtime paces a recorded source like a live camera, dropping (and counting)
the frames that arrive while the model is still busy. A source that fails mid-stream ends the run cleanly: the
outputs written so far stay valid, and the exit code is 1. Exit codes: 0 done, 1 the source failed mid-stream,
2 bad arguments or an input that cannot be opened, 130 interrupted (outputs are still finalised).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from array import array
from pathlib import Path

import numpy as np

__all__ = ["add_parser", "main", "run_recognition", "annotate_frame", "load_streaming_runtime"]

_RUNTIMES = ("torch", "onnxruntime", "openvino")
DEFAULT_MODEL = "tsm_efficientnet_lite0_gestures"  # causal TSM shipped with the package (docs/MODEL_CARD_gestures.md)
_FORMATS = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".xml": "openvino"}


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name, help="recognise actions live in a video, frame folder, camera or stream",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", help="video file, frame folder, camera index (0), rtsp:// or http(s):// URL, or "
                                  "synthetic:gestures[?seed=0&num=12&size=160]")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a .pt checkpoint from `streamact train`, an exported .onnx / OpenVINO .xml, or a registered "
                        f"model with shipped weights (default: the bundled {DEFAULT_MODEL})")
    p.add_argument("--runtime", choices=_RUNTIMES,
                   help="inference engine (default: torch for .pt, onnxruntime for .onnx, openvino for .xml)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="inference precision (default: the runtime's)")
    p.add_argument("--stride", type=int, default=1, help="emit a prediction every N processed frames (default 1)")
    p.add_argument("--smoothing", choices=("ema", "window", "none"), default="ema",
                   help="score smoothing over time (default ema)")
    p.add_argument("--topk", type=int, default=3, help="classes listed per prediction (default 3)")
    p.add_argument("--out-jsonl", help="write one JSON line per prediction to FILE ('-' = stdout)")
    p.add_argument("--out-video", help="write the frames with a label / score / latency overlay to FILE.mp4")
    p.add_argument("--timeline", help="write a timeline plot (prediction vs ground truth, scores) to FILE.png")
    p.add_argument("--realtime", action="store_true",
                   help="pace a recorded source like a live camera and drop frames when behind (counted)")
    p.add_argument("--fps", type=float, help="frame rate of the source (frame folders default to 30)")
    p.add_argument("--max-frames", type=int, help="stop after N processed frames")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def load_streaming_runtime(model_path: str | Path, *, runtime: str | None = None, precision: str | None = None):
    """The runtime that steps a model file frame by frame.

    Args:
        model_path: a .pt checkpoint, an exported .onnx graph, an OpenVINO .xml, or the name of a registered model
            that ships weights (loaded with ``pretrained=True``).
        runtime: torch, onnxruntime or openvino; default: the one the file format implies. A checkpoint asked to
            run on onnxruntime or openvino is exported on the fly.
        precision: fp32 or bf16; default: the runtime's own (bf16 for OpenVINO, fp32 otherwise).

    Returns:
        A `Runtime` (``pretrained_cfg``, ``init_state``, ``step``).

    Raises:
        FileNotFoundError: no file at `model_path`.
        ValueError: an unknown file format, or a runtime that cannot run it (an exported graph on torch).
    """
    from streamact.inference.runtimes import load_runtime

    from streamact.models import create_model, is_model

    path = Path(model_path)
    if not path.is_file() and is_model(str(model_path)):
        from streamact.inference.predictor import to_streaming

        model = to_streaming(create_model(str(model_path), pretrained=True), source=str(model_path))
        return load_runtime(model, runtime=runtime, precision=precision)
    if not path.is_file():
        raise FileNotFoundError(f"model not found: {path} (and no registered model has that name)")
    implied = _FORMATS.get(path.suffix.lower())
    if implied is None:
        raise ValueError(f"{path}: unknown model format (expected a .pt checkpoint, .onnx or OpenVINO .xml)")
    if implied != "torch" and runtime == "torch":
        raise ValueError(f"{path}: an exported model runs on onnxruntime or openvino; give the .pt checkpoint "
                         "to run on torch")
    if implied == "torch":
        from streamact.inference.predictor import load_model_for_streaming

        return load_runtime(load_model_for_streaming(path), runtime=runtime, precision=precision)
    return load_runtime(path, runtime=runtime or implied, precision=precision)


def annotate_frame(frame: np.ndarray, prediction=None, *, truth: str | None = None,
                   size: tuple[int, int] | None = None) -> np.ndarray:
    """Draw the current prediction (label, score, latency) and the ground truth, if known, over a frame.

    Args:
        frame: RGB uint8 (H, W, 3).
        prediction: the latest `Prediction`, or None while the model is warming up.
        truth: ground-truth label name of this frame; the label turns green when it matches, red otherwise.
        size: (H, W) to resize the frame to first (a video file keeps one size while a stream may change it).

    Returns:
        A new annotated RGB uint8 frame.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    font = ImageFont.load_default(size=max(8, image.height // 16))
    lines = ["warming up" if prediction is None else f"{prediction.label} {prediction.score:.2f}"]
    if prediction is not None:
        lines.append(f"{prediction.latency_ms:.1f} ms")
    if truth is not None:
        lines.append(f"truth: {truth}")
    line_height = font.size + 2
    canvas = np.array(image)
    # Darken a banner behind the text so it reads on any background.
    banner = canvas[: line_height * len(lines) + 4]
    banner[...] = banner // 3
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    color = (255, 255, 255)
    if truth is not None and prediction is not None:
        color = (80, 230, 80) if prediction.label == truth else (255, 90, 90)
    for i, text in enumerate(lines):
        draw.text((3, 2 + i * line_height), text, fill=color if i == 0 else (255, 255, 255), font=font)
    return np.asarray(image)


def run_recognition(source, engine, *, jsonl=None, video_path: str | Path | None = None,
                    timeline_path: str | Path | None = None, max_frames: int | None = None,
                    progress: bool = True) -> dict:
    """Stream `source` through `engine`, writing the outputs as it goes.

    Args:
        source: a `FrameSource` (`streamact.io.sources.open_source`).
        engine: a `StreamingEngine`.
        jsonl: text file receiving one JSON line per prediction (flushed after every line), or None.
        video_path: annotated mp4 to write, or None.
        timeline_path: timeline PNG to write, or None.
        max_frames: stop after this many processed frames.
        progress: show a progress bar when the number of frames is known.

    Returns:
        Summary: ``source``, ``frames`` (processed), ``predictions``, ``dropped``, ``corrupt``, ``seconds``, ``fps``,
        ``latency_ms`` ({p50, p95}), ``error`` (why the source ended early, or None), ``interrupted``, and for
        sources with ground truth ``frame_accuracy`` over the frames after ``warmup_frames`` (a full clip).
        KeyboardInterrupt stops the stream; the outputs are still finalised.
    """
    from tqdm import tqdm

    from streamact.io.writer import VideoWriter
    from streamact.viz import plot_timeline

    names = list(engine.labels)
    truth_index = None  # source label index -> index into `names`
    if source.class_names is not None:
        names += [n for n in source.class_names if n not in names]
        truth_index = [names.index(n) for n in source.class_names]
    keep_frames = timeline_path is not None or truth_index is not None
    # Per-frame records in compact arrays (12 bytes a frame): an hour of camera at 30 frames/s is about 1 MB.
    pred_per_frame, score_per_frame, truth_per_frame, latencies = array("h"), array("f"), array("h"), array("f")
    total = source.num_frames if max_frames is None or source.num_frames is None else min(source.num_frames,
                                                                                          max_frames)
    bar = tqdm(total=total, desc="recognize", unit="frame", disable=not progress or total is None, file=sys.stderr)
    writer = VideoWriter(video_path, source.fps) if video_path is not None else None
    frames = predictions = 0
    last = None
    video_size: tuple[int, int] | None = None
    interrupted = False
    start = time.perf_counter()
    try:
        dropped = source.num_dropped
        for frame, timestamp in source:
            prediction = engine.push(frame)
            truth = None if truth_index is None or source.label is None else truth_index[source.label]
            if prediction is not None:
                last = prediction
                predictions += 1
                latencies.append(prediction.latency_ms)
                if jsonl is not None:
                    record = prediction.to_json()
                    record["time"] = round(timestamp, 4)
                    if truth is not None:
                        record["truth"] = names[truth]
                    jsonl.write(json.dumps(record) + "\n")
                    jsonl.flush()
            if keep_frames:
                pred_per_frame.append(-1 if last is None else last.label_index)
                score_per_frame.append(math.nan if last is None else last.score)
                truth_per_frame.append(-1 if truth is None else truth)
            if writer is not None:
                # The first frame fixes the video's size; later frames of another size are resized to it.
                video_size = video_size or frame.shape[:2]
                writer.write(annotate_frame(frame, last, truth=None if truth is None else names[truth],
                                            size=video_size))
            frames += 1
            bar.update(1 + source.num_dropped - dropped)
            dropped = source.num_dropped
            if prediction is not None:
                bar.set_postfix_str(prediction.label, refresh=False)
            if max_frames is not None and frames >= max_frames:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        seconds = time.perf_counter() - start
        bar.close()
        if writer is not None:
            writer.close()
    summary = {
        "source": source.name, "frames": frames, "predictions": predictions, "dropped": source.num_dropped,
        "corrupt": source.num_corrupt, "seconds": round(seconds, 3),
        "fps": round(frames / seconds, 2) if seconds > 0 else None,
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "error": None if source.error is None else str(source.error), "interrupted": interrupted,
    }
    if truth_index is not None:
        # A prediction needs a full clip of context: frames before that are the model's warm-up, not its errors.
        warmup = engine.runtime.pretrained_cfg.clip_len * engine.frame_interval
        scored = np.asarray(pred_per_frame)[warmup:] == np.asarray(truth_per_frame)[warmup:]
        summary["warmup_frames"] = warmup
        summary["frame_accuracy"] = round(float(scored.mean()), 4) if len(scored) else None
    if timeline_path is not None:
        accuracy = summary.get("frame_accuracy")
        plot_timeline(pred_per_frame, names, timeline_path,
                      true_labels=truth_per_frame if truth_index is not None else None, scores=score_per_frame,
                      fps=source.fps, title=source.name if accuracy is None else
                      f"{source.name}: frame accuracy {accuracy:.3f} after {summary['warmup_frames']} warm-up frames")
    return summary


def _percentile(values: array, q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 3) if len(values) else None


def _summary_line(s: dict) -> str:
    latency = s["latency_ms"]
    text = (f"recognize: {s['frames']} frames, {s['predictions']} predictions, {s['dropped']} dropped, "
            f"{s['corrupt']} corrupt | {s['fps'] or 0:.1f} frames/s")
    if latency["p50"] is not None:
        text += f" | latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms"
    if s.get("frame_accuracy") is not None:
        text += f" | frame accuracy {s['frame_accuracy']:.3f} (after {s['warmup_frames']} warm-up frames)"
    return text


def main(args: argparse.Namespace) -> int:
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.errors import VideoError
    from streamact.io.sources import open_source

    if not args.model:
        print("error: no model given. Pass --model CHECKPOINT.pt (from `streamact train`) or an exported "
              "MODEL.onnx / MODEL.xml (from `streamact export`); see `streamact recognize --help`.", file=sys.stderr)
        return 2
    for option in ("stride", "topk", "max_frames"):
        value = getattr(args, option)
        if value is not None and value < 1:
            print(f"error: --{option.replace('_', '-')} must be at least 1, got {value}", file=sys.stderr)
            return 2
    # The source opens first so that a mistyped path or camera index fails before the model loads.
    try:
        source = open_source(args.source, realtime=args.realtime, fps=args.fps)
    except (VideoError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        runtime = load_streaming_runtime(args.model, runtime=args.runtime, precision=args.precision)
        engine = StreamingEngine(runtime, stride=args.stride, smoothing=args.smoothing, topk=args.topk)
    except (FileNotFoundError, ValueError, ImportError) as e:
        source.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    with source:
        jsonl = None
        if args.out_jsonl == "-":
            jsonl = sys.stdout
        elif args.out_jsonl:
            Path(args.out_jsonl).parent.mkdir(parents=True, exist_ok=True)
            jsonl = open(args.out_jsonl, "w", encoding="utf-8")
        try:
            summary = run_recognition(source, engine, jsonl=jsonl, video_path=args.out_video,
                                      timeline_path=args.timeline, max_frames=args.max_frames,
                                      progress=not args.no_progress)
        finally:
            if jsonl is not None and jsonl is not sys.stdout:
                jsonl.close()
    print(_summary_line(summary), file=sys.stderr)
    written = [p for p in (args.out_jsonl, args.out_video, args.timeline) if p and p != "-"]
    if written:
        print(f"wrote {', '.join(written)}", file=sys.stderr)
    if summary["interrupted"]:
        print("interrupted", file=sys.stderr)
        return 130
    if summary["error"] is not None:
        print(f"error: the source failed mid-stream: {summary['error']} (outputs hold the {summary['frames']} "
              "frames before it)", file=sys.stderr)
        return 1
    return 0
