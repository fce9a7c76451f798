"""int8 post-training quantization of an exported step graph with NNCF, OpenVINO's own quantizer.

    step IR (fp32/fp16 weights, state as inputs/outputs) + calibration videos
        ──► stream each video through the fp32 IR with the model's own engine (`StreamingEngine` for a
            recognizer, `DetectionEngine` for a detector): every step's inputs (frame or clip + the state the
            stream has built up so far) is one calibration sample
        ──► nncf.quantize (min/max statistics of activations over the samples; weights per channel)
        ──► state outputs fenced off from the int8 arithmetic (`_fence_state_outputs`)
        ──► <stem>_int8.xml / .bin + sidecar (with "quantization": method, samples, calibration data)

Calibrating on streamed steps, not on frames with a zero state, matters for the temporal models: the shift
buffers and feature caches that flow through the state inputs must see the ranges they have mid-stream.

What quantization costs is measured on a labelled test split, every runtime streamed from a fresh state as users
run it: `streaming_accuracy` for recognizers (clip top-1: the prediction after a video's last frame is its answer,
and the per-step top-1 agreement with a reference runtime), `detection_accuracy` for detectors (frame-mAP and
video-mAP, as `streamact eval` scores them).
"""
from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from streamact.errors import UserError
from streamact.export.sidecar import load_sidecar, sidecar_path
from streamact.inference.runtimes import ExportedRuntime, model_output

__all__ = ["calibration_videos", "calibration_samples", "quantize_int8", "streaming_accuracy", "detection_accuracy",
           "MIN_SAMPLES"]

# Fewer steps than this give min/max statistics that one odd frame can swing; NNCF's own default is 300.
MIN_SAMPLES = 100


def calibration_videos(calib: str | Path) -> list[Path | str]:
    """The videos to calibrate on: a dataset folder's train split (every video of a plain folder; a detection
    dataset's train videos as frame folders) in a seeded random order, or one source.

    Args:
        calib: a dataset folder (any layout `streamact data check` recognises, or a detection dataset with its
            ``*-GT.pkl``), a video file or frame folder, or a source spec such as ``synthetic:gestures?num=40``.

    Raises:
        UserError: a folder with no videos.
    """
    from streamact.data.datasets import discover_splits, load_split

    path = Path(str(calib))
    if not path.is_dir():
        return [calib]
    from streamact.data.datasets.detection import ANNOTATION_GLOB, load_detection_annotations

    if any(path.glob(ANNOTATION_GLOB)):
        from streamact.engine.tasks import find_annotation_file, split_videos

        ann = load_detection_annotations(find_annotation_file(path), on_error="skip")
        paths = [ann.frame_path(video, 1).parent for video in split_videos(ann, "train")]
    else:
        try:
            records, _ = load_split(path, "train")
        except ValueError:  # not a dataset with a train split: a folder of videos, or a lone frame folder
            specs = discover_splits(path)
            records = specs[0].build()[0] if specs else []
        paths = [record.path for record in records]
    if not paths:
        raise UserError(f"{path}: no videos to calibrate on (give a dataset folder, a video or a source spec)")
    # A seeded shuffle: calibration stops after enough steps, and a split listed class by class must still show
    # every class by then.
    return [paths[i] for i in np.random.default_rng(0).permutation(len(paths))]


class _RecordingRuntime(ExportedRuntime):
    """The fp32 step graph with its state as explicit inputs and outputs, keeping the inputs of every step."""

    def __init__(self, xml: str | Path) -> None:
        from streamact.inference.runtimes import openvino_core

        super().__init__(xml)
        self.compiled = openvino_core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        self.samples: list[dict[str, np.ndarray]] = []

    def init_state(self) -> list[np.ndarray]:
        return [np.zeros(s["shape"], s["dtype"]) for s in self.sidecar["state"]]

    def step(self, x: np.ndarray, state: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        states = self.sidecar["state"]
        feed = {self.sidecar["inputs"][0]["name"]: x, **{s["input"]: v for s, v in zip(states, state)}}
        self.samples.append(feed)
        outputs = self.compiled(feed)
        return model_output([outputs[name] for name in self.output_names]), [outputs[s["output"]] for s in states]


def calibration_samples(xml: str | Path, videos: Sequence[Path | str], num_samples: int, *,
                        progress: bool = True) -> list[dict[str, np.ndarray]]:
    """Inputs of `num_samples` streaming steps of the fp32 graph over `videos` (each video from a zero state),
    stepped by the engine the model runs in (its frame interval, preprocessing and, for a detector, clips of t
    frames).

    Args:
        xml: the exported step graph (``.xml`` with its sidecar).
        videos: what `calibration_videos` returns.
        num_samples: steps to collect; streaming stops once there are this many.
        progress: show a progress bar.

    Returns:
        One dict per step: ``{"frame" (a detector: "clip"): ..., "state_in.<i>": ...}``, float32.

    Raises:
        UserError: the videos hold fewer steps than `num_samples`.
    """
    from streamact.inference.detection import DetectionEngine
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.sources import open_source

    if load_sidecar(xml)["mode"] != "streaming":
        raise UserError(f"{xml} is a clip graph; int8 calibration streams frames, so export it with --streaming")
    runtime = _RecordingRuntime(xml)
    engine = (DetectionEngine(runtime) if runtime.detection is not None
              else StreamingEngine(runtime, smoothing="none"))
    bar = tqdm(total=num_samples, desc="calibration steps", unit="step", disable=not progress)
    for video in videos:
        engine.reset()
        with open_source(video) as source:
            for frame, _ in source:
                engine.push(frame)
                bar.update(min(len(runtime.samples), num_samples) - bar.n)
                if len(runtime.samples) >= num_samples:
                    bar.close()
                    return runtime.samples[:num_samples]
    bar.close()
    raise UserError(f"the calibration data holds {len(runtime.samples)} model steps ({len(videos)} videos), fewer "
                    f"than the {num_samples} asked for; give more videos or a smaller --calib-samples (at least "
                    f"{MIN_SAMPLES})")


def quantize_int8(xml: str | Path, out: str | Path, calib: str | Path, *, num_samples: int = 300,
                  progress: bool = True) -> Path:
    """Quantize the step graph `xml` to int8 with NNCF post-training quantization; write `out` and its sidecar.

    Args:
        xml: the exported fp32 step graph (``.xml`` + sidecar).
        out: the ``.xml`` to write.
        calib: calibration data (see `calibration_videos`).
        num_samples: calibration steps (NNCF's ``subset_size``); at least `MIN_SAMPLES`.
        progress: show progress bars.

    Returns:
        `out`.

    Raises:
        UserError: too few samples asked for or found, or an unusable calibration source.
    """
    import nncf
    import openvino as ov

    from streamact.inference.runtimes import openvino_core

    if num_samples < MIN_SAMPLES:
        raise UserError(f"--calib-samples {num_samples} is too few for stable activation ranges; use at least "
                        f"{MIN_SAMPLES} (300 is NNCF's default)")
    out = Path(out)
    if out.suffix != ".xml" or out.resolve() == Path(xml).resolve():
        raise UserError(f"the int8 model needs an .xml path of its own, got {out}")
    samples = calibration_samples(xml, calibration_videos(calib), num_samples, progress=progress)
    model = openvino_core().read_model(str(xml))
    with contextlib.redirect_stdout(sys.stderr):  # NNCF's progress bars; stdout is for results (--format json)
        quantized = nncf.quantize(model, nncf.Dataset(samples), subset_size=num_samples,
                                  preset=nncf.QuantizationPreset.PERFORMANCE, fast_bias_correction=True)
    _fence_state_outputs(quantized, {s["output"] for s in load_sidecar(xml)["state"]})
    out.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(quantized, str(out), compress_to_fp16=False)
    sidecar = json.loads(sidecar_path(xml).read_text())
    sidecar["quantization"] = {"method": "nncf post-training quantization (int8)", "samples": num_samples,
                               "calibration": str(calib), "source": Path(xml).name}
    sidecar_path(out).write_text(json.dumps(sidecar, indent=2) + "\n")
    load_sidecar(out)  # the quantized graph must keep the interface the sidecar describes
    return out


def _fence_state_outputs(model, outputs: set[str]) -> None:
    """Put an exact copy, ``maximum(x, x)``, between every state output and the node that computes it.

    OpenVINO's CPU plugin (2026.4) moves the int8 dequantization (a Multiply) through precision-preserving nodes
    such as the TSM shift's Slice up to the state variable's Assign, and its AssignAndReadValue transformation
    then fails to compile the model ("index '0' out of range"). Maximum is not one of the nodes the dequantization
    moves through, so it stops there, and the state stays in floating point.
    """
    import openvino.opset13 as ops

    for result in model.get_results():
        if outputs & result.output(0).get_names():
            source = result.input_value(0)
            result.input(0).replace_source_output(ops.maximum(source, source).output(0))


def streaming_accuracy(runtimes: dict[str, Any], test_root: str | Path, *, split: str = "test",
                       reference: str | None = None, max_videos: int | None = None,
                       progress: bool = True) -> dict[str, dict]:
    """Clip top-1 of each runtime on a labelled split, streamed frame by frame, and agreement with `reference`.

    Args:
        runtimes: name -> runtime (e.g. fp32, bf16 and int8 of one model).
        test_root: a dataset folder with the split.
        split: the split to score.
        reference: name of the runtime whose per-step top-1 the others are compared with (None: no comparison).
        max_videos: score only the first N videos.
        progress: show a progress bar.

    Returns:
        name -> ``{"videos", "top1", "steps", "step_agreement"}`` (agreement: share of steps whose top class equals
        the reference's; None for the reference itself).

    Raises:
        UserError: the split has no labelled videos, or a label the models do not know.
    """
    from streamact.data.datasets import load_split
    from streamact.inference.streaming import StreamingEngine
    from streamact.io.sources import open_source

    try:
        records, class_names = load_split(test_root, split)
    except ValueError as e:
        raise UserError(f"cannot score on {test_root}: {e}") from e
    records = [r for r in records if r.label >= 0][:max_videos]
    if not records:
        raise UserError(f"{test_root}: the {split} split has no labelled videos")
    engines = {name: StreamingEngine(runtime, smoothing="none") for name, runtime in runtimes.items()}
    labels = next(iter(engines.values())).labels
    unknown = sorted({class_names[r.label] for r in records} - set(labels))
    if unknown:
        raise UserError(f"{test_root}: classes {', '.join(unknown)} are not among the model's labels")
    correct = dict.fromkeys(engines, 0)
    agree = dict.fromkeys(engines, 0)
    steps = 0
    for record in tqdm(records, desc=f"streaming accuracy ({split})", unit="video", disable=not progress):
        last: dict[str, Any] = {}
        for engine in engines.values():
            engine.reset()
        with open_source(record.path) as source:
            for frame, _ in source:
                predictions = {name: engine.push(frame, source.index) for name, engine in engines.items()}
                if next(iter(predictions.values())) is None:
                    continue
                steps += 1
                for name, p in predictions.items():
                    last[name] = p
                    if reference is not None:
                        agree[name] += p.label_index == predictions[reference].label_index
        for name, p in last.items():
            correct[name] += p.label == class_names[record.label]
    return {name: {"videos": len(records), "top1": correct[name] / len(records), "steps": steps,
                   "step_agreement": None if reference in (None, name) else agree[name] / max(steps, 1)}
            for name in engines}


def detection_accuracy(runtimes: dict[str, Any], test_root: str | Path, *, split: str = "test",
                       max_videos: int | None = None, progress: bool = True) -> dict[str, dict]:
    """Frame-mAP and video-mAP of each detector runtime on a detection dataset's split, streamed as `streamact eval`
    streams it (`streamact.engine.tasks.evaluate_detector`).

    Args:
        runtimes: name -> detector runtime (e.g. fp32, bf16 and int8 of one model).
        test_root: a detection dataset folder (its ``*-GT.pkl`` and frames).
        split: the split to score.
        max_videos: score only the first N videos.
        progress: show a progress bar.

    Returns:
        name -> ``{"videos", "frame_map@0.5", "video_map@0.2", "video_map@0.5"}`` (fractions).

    Raises:
        UserError: no such dataset or split, or classes other than the models'.
    """
    from streamact.data.datasets.detection import load_detection_annotations
    from streamact.engine.config import ConfigError
    from streamact.engine.tasks import evaluate_detector, find_annotation_file, split_videos

    try:
        ann = load_detection_annotations(find_annotation_file(test_root), on_error="skip")
    except ConfigError as e:
        raise UserError(f"cannot score on {test_root}: {e}") from e
    videos = split_videos(ann, split)[:max_videos]
    if not videos:
        raise UserError(f"{test_root}: the {split} split has no videos")
    labels = next(iter(runtimes.values())).pretrained_cfg.label_names
    if list(ann.labels) != list(labels or []):
        raise UserError(f"{test_root}: its classes ({', '.join(ann.labels)}) are not the model's")
    scores = {}
    for name, runtime in tqdm(runtimes.items(), desc=f"detection accuracy ({split})", unit="runtime",
                              disable=not progress):
        summary = evaluate_detector(runtime, ann, videos).summary()
        scores[name] = {"videos": len(videos), **{k: summary[k] for k in ("frame_map@0.5", "video_map@0.2",
                                                                         "video_map@0.5")}}
    return scores
