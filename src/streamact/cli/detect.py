"""`streamact detect SOURCE --model MODEL`: detect and track actions live, frame by frame, with a feature cache.

    SOURCE (file | frame folder | camera | rtsp/http | synthetic:detection) ──► FrameSource ──► DetectionEngine
        (a model step every t frames over the cached clip features; tubelets linked into tubes online)
        ──► JSONL per frame (boxes in source pixels, label, score, tube id; flushed) + annotated mp4 (boxes
        coloured by tube, label + score, a trail of each tube's centre) + tube summary JSON + summary on stderr

MODEL is the bundled detector by default (amma_efficientnet_lite0_actions, trained on the synthetic action set;
docs/MODEL_CARD_detection.md), a registered detector with shipped weights or a detection checkpoint (.pt, both run
on PyTorch), or an exported step graph from `streamact export MODEL --streaming` (.onnx on ONNX Runtime, .xml on
OpenVINO, with PyTorch not needed at all). Every frame gets a line. --mode zero-delay (default) answers each frame at once with the latest step's boxes;
--mode interpolated answers a frame when the clip it belongs to is complete (up to t - 1 frames later) with boxes
interpolated between key frames. Detections start at the first step (frame t; warm-up). A stream keeps one frame
size. A source that fails mid-stream ends the run cleanly: the outputs written so far stay valid, and the exit
code is 1. Exit codes: 0 done, 1 the source failed mid-stream, 2 bad arguments or an input that cannot be opened,
130 interrupted (outputs are still finalised).
"""
from __future__ import annotations

import argparse
import colorsys
import json
import sys
import time
import warnings
from array import array
from collections import deque
from pathlib import Path

import numpy as np

from streamact.errors import UserError

__all__ = ["add_parser", "main", "run_detection", "draw_detections", "load_detector"]

DEFAULT_MODEL = "amma_efficientnet_lite0_actions"  # trained on synthetic actions (docs/MODEL_CARD_detection.md)
TRAIN_HINT = ("train one with `streamact data synth detection --out data/detection` then "
              "`streamact train configs/detection_amma_effl0.yaml`")
TRAIL = 12  # frames of each tube's centre drawn as a trail


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.batch import BATCH_HELP, add_batch_options

    p = subparsers.add_parser(
        name, help="detect and track actions (boxes, labels, tube ids) live in a video, camera or stream, or in a "
                   "whole corpus",
        description=__doc__ + BATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?", help="video file, frame folder, camera index (0), rtsp:// or http(s):// URL, or "
                                  "synthetic:detection[?seed=0&frames=120&size=160&actors=2]")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a registered detector with shipped weights (default: the bundled "
                        f"{DEFAULT_MODEL}), a detection checkpoint (.pt) from `streamact train` with `data.format: "
                        "detection`, or its streaming export (.onnx / .xml) from `streamact export --streaming`")
    p.add_argument("--runtime", choices=("torch", "onnxruntime", "openvino"),
                   help="inference engine (default: the model's own: torch for a registered detector or a .pt, "
                        "onnxruntime for .onnx, openvino for .xml; a PyTorch model asked to run on onnxruntime or "
                        "openvino is exported first)")
    p.add_argument("--precision", choices=("fp32", "bf16"),
                   help="inference precision (default: the runtime's own, bf16 on openvino, fp32 otherwise)")
    p.add_argument("--mode", choices=("zero-delay", "interpolated"), default="zero-delay",
                   help="frames between model steps: latest boxes at once (default), or interpolated boxes up to "
                        "t - 1 frames later")
    p.add_argument("--min-score", type=float, default=0.3, help="boxes scoring below this are not reported "
                                                                "(default 0.3; tubes are still linked)")
    p.add_argument("--out-jsonl", help="write one JSON line per frame to FILE ('-' = stdout)")
    p.add_argument("--out-video", help="write the frames with boxes, labels, scores and tube trails to FILE.mp4")
    p.add_argument("--tubes", help="write the linked tubes (id, label, score, frames, box per frame) to FILE.json")
    p.add_argument("--realtime", action="store_true",
                   help="pace a recorded source like a live camera and drop frames when behind (counted)")
    p.add_argument("--fps", type=float, help="frame rate of the source (frame folders default to 30)")
    p.add_argument("--max-frames", type=int, help="stop after reading N frames from the source")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_batch_options(p)
    return p


def load_detector(model_path: str | Path = DEFAULT_MODEL, runtime: str | None = None,
                  precision: str | None = None):
    """The runtime of a registered detector with shipped weights, a trained checkpoint or an exported step graph.

    Args:
        model_path: a registered detector (default: the bundled one), a .pt checkpoint, or an exported .onnx / .xml
            streaming graph with its sidecar.
        runtime: torch, onnxruntime or openvino; default: the one the file format implies (an exported graph runs
            without PyTorch).
        precision: fp32 or bf16; default: the runtime's own.

    Raises:
        UserError: neither a file nor a registered model, an unusable file, an exported graph whose sidecar does not
            match, not a detector, or a runtime that cannot run the file.
    """
    from streamact.cli.recognize import load_streaming_runtime

    path = Path(model_path)
    if not path.is_file() and path.suffix:  # a name without a suffix is looked up among the registered models
        raise UserError(f"model not found: {path} (the bundled {DEFAULT_MODEL}, a detection checkpoint from "
                        f"`streamact train` or its export from `streamact export --streaming`; {TRAIN_HINT})")
    try:
        with warnings.catch_warnings():  # only recognizers warn about bi-directional training, and they are refused
            warnings.simplefilter("ignore", UserWarning)
            loaded = load_streaming_runtime(path, runtime=runtime, precision=precision)
    except (ValueError, FileNotFoundError) as e:  # not a checkpoint, a sidecar that does not match, no sidecar
        raise UserError(str(e)) from None
    if getattr(loaded, "detection", None) is None:
        raise UserError(f"{path} is a recognition model; `streamact detect` needs a detection model ({TRAIN_HINT}); "
                        "use `streamact recognize` for this one")
    return loaded


def _tube_color(tube_id: int) -> tuple[int, int, int]:
    """A distinct, stable colour per tube id (golden-ratio hue steps)."""
    r, g, b = colorsys.hsv_to_rgb((tube_id * 0.618034) % 1.0, 0.85, 1.0)
    return int(r * 255), int(g * 255), int(b * 255)


def draw_detections(frame: np.ndarray, detections, trails: dict[int, deque] | None = None) -> np.ndarray:
    """`frame` with each box drawn in its tube's colour, "label score #tube" above it and the tube's recent
    centres (`trails`: tube id -> deque of (x, y)) as a polyline."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=max(8, image.height // 20))
    for tube_id, points in (trails or {}).items():
        if len(points) > 1:
            draw.line(list(points), fill=_tube_color(tube_id), width=2)
    for box, name, score, tube_id in zip(detections.boxes, detections.label_names, detections.scores,
                                         detections.tube_ids):
        color = _tube_color(int(tube_id))
        draw.rectangle([float(v) for v in box], outline=color, width=2)
        text = f"{name} {score:.2f} #{tube_id}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        x = max(0.0, min(float(box[0]), image.width - (right - left) - 3))  # the label stays inside the frame
        y = max(0.0, float(box[1]) - (bottom - top) - 2)
        draw.rectangle([x + left, y, x + right + 2, y + bottom - top + 2], fill=color)
        draw.text((x + 1, y), text, fill=(0, 0, 0), font=font)
    return np.asarray(image)


def run_detection(source, engine, *, jsonl=None, video_path: str | Path | None = None,
                  max_frames: int | None = None, progress: bool = True) -> tuple[dict, list]:
    """Stream `source` through `engine`, writing a JSON line per frame and the annotated video as it goes.

    In interpolated mode a frame's detections come up to t - 1 frames after it, so the video writer holds those
    frames back until they are answered. Frames a realtime source dropped are not pushed (the engine counts pushed
    frames); their JSON lines are absent and ``dropped`` counts them.

    A frame of another size than the first ends the stream like a failing source (``error`` says so).

    Returns:
        (summary, tubes): ``source``, ``frames``, ``detections``, ``tubes``, ``dropped``, ``corrupt``, ``seconds``,
        ``fps``, ``latency_ms`` ({p50, p95}), ``error`` (why the source ended early, or None), ``interrupted``; and
        the linked `Tube`s.
    """
    from tqdm import tqdm

    from streamact.io.writer import VideoWriter

    total = source.num_frames if max_frames is None or source.num_frames is None else min(source.num_frames,
                                                                                          max_frames)
    bar = tqdm(total=total, desc="detect", unit="frame", disable=not progress or total is None, file=sys.stderr)
    writer = VideoWriter(video_path, source.fps) if video_path is not None else None
    pending: deque[tuple[np.ndarray, float, int]] = deque()  # frames waiting for their detections
    trails: dict[int, deque] = {}
    latencies = array("f")  # 4 bytes a frame: an hour of camera at 30 frames/s is 0.4 MB
    counts = {"frames": 0, "detections": 0}
    interrupted = False
    error = None

    def emit(answered) -> None:
        for det in answered:
            frame, timestamp, index = pending.popleft()
            latencies.append(det.latency_ms)
            counts["detections"] += len(det)
            if jsonl is not None:
                jsonl.write(json.dumps({**det.to_json(), "source_index": index, "time": round(timestamp, 4)}) + "\n")
                jsonl.flush()
            if writer is not None:
                for tube_id in list(trails):
                    if tube_id not in det.tube_ids:
                        trails[tube_id].popleft()  # the trail fades out after the tube stops being shown
                        if not trails[tube_id]:
                            del trails[tube_id]
                for box, tube_id in zip(det.boxes, det.tube_ids):
                    centre = (float(box[0] + box[2]) / 2, float(box[1] + box[3]) / 2)
                    trails.setdefault(int(tube_id), deque(maxlen=TRAIL)).append(centre)
                writer.write(draw_detections(frame, det, trails))

    start = time.perf_counter()
    tubes: list = []
    try:
        try:
            for frame, timestamp in source:
                pending.append((frame if writer is not None else None, timestamp, source.index))
                emit(engine.push(frame))
                counts["frames"] += 1
                bar.update(1)
                if max_frames is not None and counts["frames"] >= max_frames:
                    break
        except KeyboardInterrupt:
            interrupted = True
        except UserError as e:  # a frame of another size ends the stream; what came before stays valid
            error = str(e)
            pending.pop()
        answered, tubes = engine.finish()
        emit(answered)
    finally:
        seconds = time.perf_counter() - start
        bar.close()
        if writer is not None:
            writer.close()
    summary = {
        "source": source.name, "frames": counts["frames"], "detections": counts["detections"], "tubes": len(tubes),
        "dropped": source.num_dropped, "corrupt": source.num_corrupt, "seconds": round(seconds, 3),
        "fps": round(counts["frames"] / seconds, 2) if seconds > 0 else None,
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "error": error or (None if source.error is None else str(source.error)), "interrupted": interrupted,
    }
    return summary, tubes


def _percentile(values: array, q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _tube_summary(tubes, labels: list[str], source: str, fps: float) -> dict:
    return {"source": source, "fps": fps, "tubes": [
        {"id": t.tube_id, "label": labels[t.label], "score": round(t.score, 5), "start_frame": int(t.frames[0]),
         "end_frame": int(t.frames[-1]), "seconds": round(len(t.frames) / fps, 3),
         "boxes": [[int(f), *(round(float(v), 1) for v in box)] for f, box in zip(t.frames, t.boxes)]}
        for t in tubes]}


def main(args: argparse.Namespace) -> int:
    from streamact.cli.recognize import finish_run, open_output
    from streamact.inference.detection import DetectionEngine
    from streamact.io.errors import VideoError
    from streamact.io.sources import open_source

    if args.max_frames is not None and args.max_frames < 1:
        print(f"error: --max-frames must be at least 1, got {args.max_frames}", file=sys.stderr)
        return 2
    if args.batch is not None:
        from streamact.cli.batch import run_batch
        from streamact.inference.corpus import CorpusJob

        job = CorpusJob("detect", args.model, runtime=args.runtime, max_frames=args.max_frames,
                        options={"mode": args.mode, "min_score": args.min_score})
        return run_batch(args, job, ("out_jsonl", "out_video", "tubes", "realtime"))
    if args.source is None or args.out is not None or args.ray is not None:
        raise UserError("give a SOURCE (video file, frame folder, camera, URL) alone, or --batch LIST_OR_DIR "
                        "--out DIR [--ray]")
    try:  # the source opens first so that a mistyped path or camera index fails before the model loads
        source = open_source(args.source, realtime=args.realtime, fps=args.fps)
    except (VideoError, ValueError, ImportError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        engine = DetectionEngine(load_detector(args.model, args.runtime, args.precision), mode=args.mode,
                                 min_display_score=args.min_score)
    except UserError as e:
        source.close()
        print(f"error: {e}", file=sys.stderr)
        return 2
    with source:
        jsonl = None
        try:
            jsonl = open_output(args.out_jsonl)
            summary, tubes = run_detection(source, engine, jsonl=jsonl, video_path=args.out_video,
                                           max_frames=args.max_frames, progress=not args.no_progress)
        finally:
            if jsonl is not None and jsonl is not sys.stdout:
                jsonl.close()
    if args.tubes:
        Path(args.tubes).parent.mkdir(parents=True, exist_ok=True)
        Path(args.tubes).write_text(json.dumps(_tube_summary(tubes, engine.labels, summary["source"], source.fps),
                                               indent=1) + "\n")
    print(f"{summary['source']}: {summary['frames']} frames, {summary['detections']} boxes, {summary['tubes']} "
          f"tubes, {summary['fps']} frames/s, latency p50 {summary['latency_ms']['p50']} ms", file=sys.stderr)
    return finish_run(summary, (args.out_jsonl, args.out_video, args.tubes))
