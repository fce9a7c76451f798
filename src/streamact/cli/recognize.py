"""`streamact recognize SOURCE --model MODEL`: recognize actions live, frame by frame, with cached state.

    SOURCE (file | frame folder | camera | rtsp/http | synthetic:gestures) ──► FrameSource ──► StreamingEngine
        ──► EventDetector (each gesture once) ──► JSONL of predictions and of events (flushed) + annotated mp4
        + timeline PNG + summary on stderr

The model gets a new frame every frame_interval source frames (the bundled model: every 2nd), so predictions
come at that rate; all outputs count and time frames on the source's clock. --realtime paces a recorded source
like a live camera and drops (and counts) the frames that arrive while the model is still busy: they keep their
place in the outputs (the annotated video repeats the last frame, marked "dropped", so it lasts as long as the
source; the JSONL's "dropped" counts them). The runtime defaults to OpenVINO, falling back to PyTorch; smoothing
and event thresholds default to the ones stored with the model. A source that fails mid-stream ends the run
cleanly: the outputs written so far stay valid, and the exit code is 1. Exit codes: 0 done, 1 the source failed
mid-stream, 2 bad arguments or an input that cannot be opened, 130 interrupted (outputs are still finalised).
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

from streamact.errors import UserError

__all__ = ["add_parser", "main", "run_recognition", "annotate_frame", "load_streaming_runtime"]

_RUNTIMES = ("torch", "onnxruntime", "openvino")
DEFAULT_MODEL = "tsm_efficientnet_lite0_stream_gestures"  # trained on streams (docs/MODEL_CARD_stream_gestures.md)
_FORMATS = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".xml": "openvino"}


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.batch import BATCH_HELP, add_batch_options
    from streamact.cli.options import add_device_option

    p = subparsers.add_parser(
        name, help="recognize actions live in a video, frame folder, camera or stream, or in a whole corpus",
        description=__doc__ + BATCH_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", nargs="?",
                   help="video file, frame folder, camera index (0), rtsp:// or http(s):// URL, or "
                        "synthetic:gestures[?seed=0&num=12&size=160]")
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="a .pt checkpoint from `streamact train`, an exported .onnx / OpenVINO .xml, or a registered "
                        f"model with shipped weights (default: the bundled {DEFAULT_MODEL})")
    p.add_argument("--allow-untrained", action="store_true",
                   help="run a registered model even if its classifier was never trained on actions (default: refuse)")
    p.add_argument("--runtime", choices=_RUNTIMES,
                   help="inference engine (default: openvino, falling back to torch for a checkpoint or "
                        "registered model and to onnxruntime for an .onnx file when OpenVINO cannot load it)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="inference precision (default: the runtime's)")
    add_device_option(p)
    p.add_argument("--stride", type=int, default=1,
                   help="emit a prediction every N model steps (default 1); the model steps once every "
                        "frame_interval source frames (the bundled model: every 2nd frame)")
    p.add_argument("--smoothing", choices=("ema", "window", "none"),
                   help="score smoothing over time (default: the model's own, which its event thresholds are "
                        "tuned with; none for the bundled model)")
    p.add_argument("--topk", type=int, default=3, help="classes listed per prediction (default 3)")
    p.add_argument("--out-jsonl", help="write one JSON line per prediction to FILE ('-' = stdout)")
    p.add_argument("--events", help="write one JSON line per gesture event to FILE ('-' = stdout): each gesture "
                                    "reported once (label, start / end / emission frame, score); each event is "
                                    "also printed on stderr as it happens, unless the events go to stdout")
    p.add_argument("--out-video", help="write the frames with a label / score / latency / last event overlay to "
                                       "FILE.mp4, at the source's frame rate")
    p.add_argument("--timeline", help="write a timeline plot (prediction and events vs ground truth, scores) to "
                                      "FILE.png")
    p.add_argument("--realtime", action="store_true",
                   help="pace a recorded source like a live camera and drop frames when behind (counted; they keep "
                        "their place in the outputs, which stay on the source's clock)")
    p.add_argument("--fps", type=float, help="frame rate of the source (frame folders default to 30)")
    p.add_argument("--max-frames", type=int, help="stop after reading N frames from the source")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_batch_options(p)
    return p


def load_streaming_runtime(model_path: str | Path, *, runtime: str | None = None, precision: str | None = None,
                           allow_untrained: bool = False, device: str = "cpu", num_threads: int | None = None):
    """The runtime that steps a model file frame by frame.

    Args:
        model_path: a .pt checkpoint, an exported .onnx graph, an OpenVINO .xml, or the name of a registered model
            that ships action-trained weights: on openvino its shipped IR (`streamact.export.bundle`), else the
            model built with ``pretrained=True``.
        runtime: torch, onnxruntime or openvino; default: the one the file format implies. A checkpoint asked to
            run on onnxruntime or openvino is exported on the fly.
        precision: fp32 or bf16; default: the runtime's own (bf16 for OpenVINO, fp32 otherwise).
        allow_untrained: run a registered model whose classifier was never trained (see
            `streamact.engine.build.load_model`).
        device: where the torch runtime runs the model (cpu or cuda).
        num_threads: inference threads of the exported runtimes (default: the runtime's choice).

    Returns:
        A `Runtime` (``pretrained_cfg``, ``init_state``, ``step``).

    Raises:
        UserError: no such file or model, an unknown file format, a runtime that cannot run it (an exported graph
            on torch), or a model without a trained classifier.
    """
    from streamact.export.bundle import bundled_export
    from streamact.inference.runtimes import load_runtime

    path = Path(model_path)
    if not path.is_file():
        shipped = bundled_export(str(model_path))
        if shipped is not None and runtime in (None, "openvino"):  # the shipped IR: no PyTorch, no graph rebuilt
            return load_runtime(shipped, runtime="openvino", precision=precision, num_threads=num_threads)
    implied = _FORMATS.get(path.suffix.lower()) if path.is_file() else "torch"
    if implied is None:
        raise UserError(f"{path}: unknown model format (expected a .pt checkpoint, .onnx or OpenVINO .xml)")
    if implied != "torch":
        if runtime == "torch":
            raise UserError(f"{path}: an exported model runs on onnxruntime or openvino; give the .pt checkpoint "
                            "to run on torch")
        return load_runtime(path, runtime=runtime or implied, precision=precision, device=device,
                            num_threads=num_threads)
    from streamact.engine.build import load_model  # PyTorch from here on
    from streamact.inference.predictor import to_streaming

    model, _ = load_model(model_path, allow_untrained=allow_untrained)
    return load_runtime(to_streaming(model, source=str(model_path)), runtime=runtime, precision=precision,
                        device=device, num_threads=num_threads)


def load_runtime_or_fallback(model_path: str | Path, *, runtime: str | None = None,
                             precision: str | None = None, allow_untrained: bool = False, device: str = "cpu",
                             num_threads: int | None = None):
    """The runtime `recognize` and `demo` use by default: OpenVINO, falling back when it cannot run the model.

    Args:
        model_path: as for `load_streaming_runtime`.
        runtime: a runtime to use as is (no fallback); None for the default.
        precision, allow_untrained, device, num_threads: as for `load_streaming_runtime`; a device other than the
            CPU means the torch runtime (the exported runtimes run on the CPU).

    Returns:
        (runtime, its name). Without `runtime`, OpenVINO (the fastest on CPUs; docs/RESULTS.md) unless it is not
        installed or cannot load the model, in which case torch (or ONNX Runtime for an .onnx file) runs it, with
        a warning on stderr.
    """
    from streamact.export.sidecar import ExportMismatchError

    options = {"precision": precision, "allow_untrained": allow_untrained, "device": device,
               "num_threads": num_threads}
    runtime = "torch" if runtime is None and device != "cpu" else runtime
    if runtime is not None:
        return load_streaming_runtime(model_path, runtime=runtime, **options), runtime
    try:
        return load_streaming_runtime(model_path, runtime="openvino", **options), "openvino"
    except (FileNotFoundError, UserError, ExportMismatchError):  # the user's to fix, whatever the runtime
        raise
    except (ImportError, RuntimeError, OSError, ValueError, TypeError) as e:  # missing extra, model not exportable
        fallback = "onnxruntime" if Path(model_path).suffix.lower() == ".onnx" else "torch"
        print(f"warning: openvino unavailable ({e}); falling back to {fallback}", file=sys.stderr)
        return load_streaming_runtime(model_path, runtime=fallback, **options), fallback


def annotate_frame(frame: np.ndarray, prediction=None, *, truth: str | None = None, event=None,
                   dropped: bool = False, size: tuple[int, int] | None = None) -> np.ndarray:
    """Draw the current prediction (label, score, latency), the last event and the ground truth over a frame.

    Args:
        frame: RGB uint8 (H, W, 3).
        prediction: the latest `Prediction`, or None while the model is warming up.
        truth: ground-truth label name of this frame; the label turns green when it matches, red otherwise.
        event: the last gesture `Event`, shown in yellow, or None.
        dropped: the frame stands in for a source frame that was dropped (realtime): marked "dropped" in red.
        size: (H, W) to resize the frame to first (a video file keeps one size while a stream may change it).

    Returns:
        A new annotated RGB uint8 frame.
    """
    from PIL import Image, ImageDraw, ImageFont

    image = Image.fromarray(frame)
    if size is not None and (image.height, image.width) != tuple(size):
        image = image.resize((size[1], size[0]), Image.BILINEAR)
    font = ImageFont.load_default(size=max(8, image.height // 16))
    white, yellow, red = (255, 255, 255), (255, 220, 60), (255, 90, 90)
    color = white
    if truth is not None and prediction is not None:
        color = (80, 230, 80) if prediction.label == truth else red
    lines = [("warming up" if prediction is None else f"{prediction.label} {prediction.score:.2f}", color)]
    if prediction is not None:
        lines.append((f"{prediction.latency_ms:.1f} ms", white))
    if truth is not None:
        lines.append((f"truth: {truth}", white))
    if event is not None:
        lines.append((f"event: {event.label} {event.score:.2f}", yellow))
    if dropped:
        lines.append(("dropped", red))
    line_height = font.size + 2
    canvas = np.array(image)
    # Darken a banner behind the text so it reads on any background.
    banner = canvas[: line_height * len(lines) + 4]
    banner[...] = banner // 3
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    for i, (text, fill) in enumerate(lines):
        draw.text((3, 2 + i * line_height), text, fill=fill, font=font)
    return np.asarray(image)


def run_recognition(source, engine, *, detector=None, jsonl=None, events=None, echo_events: bool = False,
                    video_path: str | Path | None = None, timeline_path: str | Path | None = None,
                    max_frames: int | None = None, progress: bool = True) -> dict:
    """Stream `source` through `engine` (and `detector`), writing the outputs as it goes.

    Frames, predictions and events are indexed and timed on the source's clock (`FrameSource.index`): frames a
    realtime source dropped keep their place (the video repeats the frame before them, marked "dropped").

    Args:
        source: a `FrameSource` (`streamact.io.sources.open_source`).
        engine: a `StreamingEngine`.
        detector: an `EventDetector` over the engine's predictions, or None for no events.
        jsonl: text file receiving one JSON line per prediction (flushed after every line), or None.
        events: text file receiving one JSON line per event (flushed), or None.
        echo_events: also print each event on stderr as it happens.
        video_path: annotated mp4 to write (at the source's exact frame rate), or None.
        timeline_path: timeline PNG to write, or None.
        max_frames: stop after this many frames read from the source.
        progress: show a progress bar when the number of frames is known.

    Returns:
        Summary: ``source``, ``frames`` (read), ``source_frames`` (read + dropped), ``predictions``, ``events``,
        ``dropped``, ``corrupt``, ``seconds``, ``fps``, ``latency_ms`` ({p50, p95}), ``error`` (why the source
        ended early, or None), ``interrupted``, and for sources with ground truth ``warmup_frames`` (a full clip),
        ``frame_accuracy`` and ``metrics`` (`streamact.evaluation.stream.StreamMetrics`: frame accuracy and
        per-frame mAP after the warm-up on the frames read, and over the whole stream Levenshtein accuracy, event
        precision / recall / F1 and emission delay; the event metrics only with a detector). KeyboardInterrupt
        stops the stream; the outputs are still finalised.
    """
    from tqdm import tqdm

    from streamact.evaluation.stream import StreamMetrics, match_events
    from streamact.io.writer import VideoWriter
    from streamact.viz import plot_timeline

    names = list(engine.labels)
    truth_index = None  # source label index -> index into `names`
    if source.class_names is not None:
        names += [n for n in source.class_names if n not in names]
        truth_index = [names.index(n) for n in source.class_names]
    keep_frames = timeline_path is not None or truth_index is not None
    # Per-frame records in compact arrays (12 bytes a frame): an hour of camera at 30 frames/s is about 1.3 MB.
    pred_per_frame, score_per_frame, truth_per_frame = array("h"), array("f"), array("h")
    step_per_frame, latencies = array("i"), array("f")  # the prediction in force at each frame (-1: none yet)
    step_probs: list[np.ndarray] = []  # each prediction's probabilities, kept only to score against truth
    emitted: list = []
    total = source.num_frames if max_frames is None or source.num_frames is None else min(source.num_frames,
                                                                                          max_frames)
    bar = tqdm(total=total, desc="recognize", unit="frame", disable=not progress or total is None, file=sys.stderr)
    writer = VideoWriter(video_path, source.fps) if video_path is not None else None
    frames = 0
    dropped_since_prediction = 0
    last = last_event = previous_frame = None
    timestamp = 0.0
    video_size: tuple[int, int] | None = None
    interrupted = False

    def record(prediction, truth: int) -> None:
        if keep_frames:
            pred_per_frame.append(-1 if prediction is None else prediction.label_index)
            score_per_frame.append(math.nan if prediction is None else prediction.score)
            truth_per_frame.append(truth)
            step_per_frame.append(len(latencies) - 1)

    def emit(event, time_s: float) -> None:
        nonlocal last_event
        last_event = event
        emitted.append(event)
        line = {**event.to_json(), "time": round(time_s, 4)}
        if events is not None:
            events.write(json.dumps(line) + "\n")
            events.flush()
        if echo_events:
            tqdm.write(f"event: {event.label} ({event.score:.2f}, {event.trigger}) at {time_s:.2f} s, frames "
                       f"{event.start_frame}-{event.end_frame}", file=sys.stderr)

    start = time.perf_counter()
    last_index = -1
    try:
        for frame, timestamp in source:
            index = source.index
            missed = index - last_index - 1  # frames the realtime source dropped just before this one
            last_index = index
            if missed:
                dropped_since_prediction += missed
                for _ in range(missed):
                    record(last, -1)  # their truth is unknown: the source never read them out
                if writer is not None:  # the video keeps the source's clock and duration
                    video_size = video_size or frame.shape[:2]
                    held = frame if previous_frame is None else previous_frame  # a source may drop its first frame
                    stand_in = annotate_frame(held, last, event=last_event, dropped=True, size=video_size)
                    for _ in range(missed):
                        writer.write(stand_in)
            prediction = engine.push(frame, index)
            truth = -1 if truth_index is None or source.label is None else truth_index[source.label]
            if prediction is not None:
                last = prediction
                latencies.append(prediction.latency_ms)
                if truth_index is not None:
                    step_probs.append(prediction.probs.astype(np.float32))
                if jsonl is not None:
                    line = {**prediction.to_json(), "time": round(timestamp, 4), "dropped": dropped_since_prediction}
                    if truth >= 0:
                        line["truth"] = names[truth]
                    jsonl.write(json.dumps(line) + "\n")
                    jsonl.flush()
                dropped_since_prediction = 0
                if detector is not None:
                    for event in detector.update(prediction.frame_index, prediction.probs):
                        emit(event, timestamp)
            record(last, truth)
            if writer is not None:
                # The first frame fixes the video's size; later frames of another size are resized to it.
                video_size = video_size or frame.shape[:2]
                writer.write(annotate_frame(frame, last, truth=names[truth] if truth >= 0 else None,
                                            event=last_event, size=video_size))
            previous_frame = frame
            frames += 1
            bar.update(1 + missed)
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
    if detector is not None:
        for event in detector.finish():  # a gesture still going on when the stream ended
            emit(event, timestamp)
    summary = {
        "source": source.name, "frames": frames, "source_frames": last_index + 1, "predictions": len(latencies),
        "events": len(emitted), "dropped": source.num_dropped, "corrupt": source.num_corrupt,
        "seconds": round(seconds, 3), "fps": round(frames / seconds, 2) if seconds > 0 else None,
        "latency_ms": {"p50": _percentile(latencies, 50), "p95": _percentile(latencies, 95)},
        "error": None if source.error is None else str(source.error), "interrupted": interrupted,
    }
    correct = None
    if truth_index is not None:
        truth = np.asarray(truth_per_frame, dtype=np.int64)
        steps = np.asarray(step_per_frame, dtype=np.int64)
        # A prediction needs a full clip of context: frames before that are the model's warm-up, not its errors.
        warmup = engine.runtime.pretrained_cfg.clip_len * engine.frame_interval
        valid = (np.arange(len(truth)) >= warmup) & (truth >= 0) & (steps >= 0)
        scores = np.zeros((len(truth), len(names)), np.float32)  # classes only the source knows score 0
        if step_probs:
            scores[steps >= 0, :len(engine.labels)] = np.stack(step_probs)[steps[steps >= 0]]
        background = engine.runtime.pretrained_cfg.events.background
        background = names.index(background) if background in names else None
        segments = _segments(truth, names, background)
        metrics = StreamMetrics(background=background)
        metrics.update(scores, truth, emitted, segments, fps=source.fps, valid=valid)
        result = metrics.compute()
        if detector is None:  # no events: event metrics would only count misses
            result = {k: result[k] for k in ("streams", "frames", "frame_accuracy", "per_frame_map")}
        else:
            matched = {i for i, _ in match_events(emitted, segments, fps=source.fps)}
            correct = [i in matched for i in range(len(emitted))]
        summary["warmup_frames"] = warmup
        summary["metrics"] = {k: _rounded(v) for k, v in result.items() if k != "streams"}
        summary["frame_accuracy"] = summary["metrics"]["frame_accuracy"]
    if timeline_path is not None:
        title = source.name
        m = summary.get("metrics")
        if m and m["frame_accuracy"] is not None:
            title += f": frame accuracy {m['frame_accuracy']:.3f} after {summary['warmup_frames']} warm-up frames"
            if m.get("levenshtein_accuracy") is not None:
                title += (f", Levenshtein accuracy {m['levenshtein_accuracy']:.3f}, event F1 "
                          f"{m['f1'] if m['f1'] is None else format(m['f1'], '.3f')}")
        plot_timeline(pred_per_frame, names, timeline_path,
                      true_labels=truth_per_frame if truth_index is not None else None, scores=score_per_frame,
                      events=[e.to_json() | {"label_index": e.label_index} for e in emitted] if detector else None,
                      correct=correct, fps=source.fps, title=title)
    return summary


def _segments(truth: np.ndarray, names: list[str], background: int | None) -> list[dict]:
    """True gestures as ``{"label", "start", "end"}`` (end exclusive) from per-frame labels; frames of unknown
    truth (-1, dropped) continue the gesture before them."""
    filled = truth.copy()
    for i in range(1, len(filled)):
        if filled[i] < 0:
            filled[i] = filled[i - 1]
    bounds = np.flatnonzero(np.diff(filled)) + 1
    starts, ends = np.concatenate([[0], bounds]), np.concatenate([bounds, [len(filled)]])
    return [{"label": names[filled[s]], "start": int(s), "end": int(e)} for s, e in zip(starts, ends)
            if len(filled) and filled[s] >= 0 and filled[s] != background]


def _rounded(value):
    """JSON-ready: floats rounded to 4 places, NaN as None."""
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 4)
    return value


def _percentile(values: array, q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values), q)), 3) if len(values) else None


def _summary_line(s: dict) -> str:
    latency = s["latency_ms"]
    text = (f"recognize: {s['frames']} frames, {s['predictions']} predictions, {s['events']} events, "
            f"{s['dropped']} dropped, {s['corrupt']} corrupt | {s['fps'] or 0:.1f} frames/s")
    if latency["p50"] is not None:
        text += f" | latency p50 {latency['p50']:.1f} ms, p95 {latency['p95']:.1f} ms"
    if s.get("frame_accuracy") is not None:
        text += f" | frame accuracy {s['frame_accuracy']:.3f} (after {s['warmup_frames']} warm-up frames)"
    m = s.get("metrics", {})
    if m.get("levenshtein_accuracy") is not None:
        text += f", Levenshtein accuracy {m['levenshtein_accuracy']:.3f}"
    if m.get("f1") is not None:
        text += f", event F1 {m['f1']:.3f}"
    return text


def open_output(spec: str | None):
    """A text file for FILE, stdout for '-', None for no output."""
    if spec is None:
        return None
    if spec == "-":
        return sys.stdout
    Path(spec).parent.mkdir(parents=True, exist_ok=True)
    return open(spec, "w", encoding="utf-8")


def main(args: argparse.Namespace) -> int:
    from streamact.cli.options import resolve_device
    from streamact.inference.events import EventDetector
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.sources import open_source

    if not args.model:
        raise UserError("no model given. Pass --model CHECKPOINT.pt (from `streamact train`) or an exported "
                        "MODEL.onnx / MODEL.xml (from `streamact export`); see `streamact recognize --help`.")
    for option in ("stride", "topk", "max_frames"):
        value = getattr(args, option)
        if value is not None and value < 1:
            raise UserError(f"--{option.replace('_', '-')} must be at least 1, got {value}")
    if args.batch is not None:
        from streamact.cli.batch import run_batch
        from streamact.inference.corpus import CorpusJob

        options = {"stride": args.stride, "smoothing": args.smoothing, "topk": args.topk,
                   "allow_untrained": args.allow_untrained}
        job = CorpusJob("recognize", args.model, runtime=args.runtime, precision=args.precision, options=options,
                        max_frames=args.max_frames)
        return run_batch(args, job, ("out_jsonl", "events", "out_video", "timeline", "realtime"))
    if args.source is None:
        raise UserError("give a SOURCE (video file, frame folder, camera, URL) or --batch LIST_OR_DIR --out DIR")
    if args.out is not None or args.ray is not None:
        raise UserError("--out and --ray go with --batch LIST_OR_DIR; for one SOURCE use --out-jsonl, --events, "
                        "--out-video or --timeline")
    if args.out_jsonl == "-" and args.events == "-":
        raise UserError("--out-jsonl and --events cannot both write to stdout; give one of them a FILE")
    # The source opens first so that a mistyped path or camera index fails before the model loads.
    source = open_source(args.source, realtime=args.realtime, fps=args.fps)
    try:
        runtime, _ = load_runtime_or_fallback(args.model, runtime=args.runtime, precision=args.precision,
                                              allow_untrained=args.allow_untrained,
                                              device=resolve_device(args.device))
        engine = StreamingEngine(runtime, stride=args.stride, smoothing=args.smoothing, topk=args.topk)
        events_cfg = runtime.pretrained_cfg.events
        detector = None
        # Events need the model's background class; without --events a model lacking one just has no events.
        if args.events is not None or events_cfg.background in engine.labels:
            detector = EventDetector(engine.labels, events_cfg)
    except BaseException:
        source.close()
        raise
    with source:
        jsonl = events = None
        try:
            jsonl, events = open_output(args.out_jsonl), open_output(args.events)
            summary = run_recognition(source, engine, detector=detector, jsonl=jsonl, events=events,
                                      echo_events=events is not None and events is not sys.stdout,
                                      video_path=args.out_video, timeline_path=args.timeline,
                                      max_frames=args.max_frames, progress=not args.no_progress)
        finally:
            for file in (jsonl, events):
                if file is not None and file is not sys.stdout:
                    file.close()
    print(_summary_line(summary), file=sys.stderr)
    return finish_run(summary, (args.out_jsonl, args.events, args.out_video, args.timeline))


def finish_run(summary: dict, outputs) -> int:
    """Say which of `outputs` (paths, None or '-' for none / stdout) were written and how the run ended; returns
    the exit code: 0 done, 130 interrupted, 1 the source failed mid-stream (the outputs hold the frames before it)."""
    written = [p for p in outputs if p and p != "-"]
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
