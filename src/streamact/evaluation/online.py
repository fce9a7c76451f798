"""Run a streaming recognizer over annotated streams and score it as it would be judged live.

    stream record (IPN Hand / THUMOS / synthetic stream set) ──► decode frames in order ──► StreamingEngine.push
      ──► per model step: probabilities (the engine's output at that frame, warm-up included)
      ──► `StreamScores` (steps, their source frames, the true per-frame labels and gestures)
      ──► per source frame: the latest step's scores ──► frame accuracy, per-frame mAP
      ──► EventDetector (the model's event settings) ──► events ──► Levenshtein accuracy, event F1, delay

Running the model is the slow part and its outputs do not depend on the event settings, so `run_streams` keeps
the per-step probabilities and `score_streams` turns them into metrics for any `EventCfg` (the event settings are
tuned on validation streams this way, `tune_event_cfg`). No torch import: exported runtimes are scored the same way.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from streamact.data.records import VideoRecord, frame_labels
from streamact.evaluation.stream import StreamMetrics
from streamact.inference.events import EventCfg, detect_events
from streamact.inference.streaming import StreamingEngine
from streamact.io.video import open_video

__all__ = ["StreamScores", "run_streams", "score_streams", "tune_event_cfg", "EVENT_GRID"]

# Settings `tune_event_cfg` searches by default: 2 * 4 * 2 * 3 * 4 * 2 * 3 = 1152 combinations, about 0.1 s each on
# 10 recorded streams. A short switch_frames splits a gesture whose leading class changes midway (a wrong early class,
# then the right one) into two events; a long one (16 steps, longer than most gestures) leaves splitting to the
# background class alone, so two gestures that touch without a gap become one event.
EVENT_GRID = {
    "alpha": (1.0, 0.5),
    "on_threshold": (0.4, 0.5, 0.6, 0.7),
    "min_frames": (1, 2),
    "release_frames": (1, 2, 3),
    "early_margin": (0.3, 0.5, 0.7, 0.9),
    "late_threshold": (0.3, 0.5),
    "switch_frames": (4, 8, 16),
}


@dataclass
class StreamScores:
    """One stream as the model saw it.

    Attributes:
        name: stream (video) name.
        probs: (M, K) probabilities of the M model steps.
        step_frames: (M,) source frame index of each step.
        labels: (N,) true class per source frame.
        segments: the true gestures, ``{"label": name, "start", "end"}`` (end exclusive), background left out.
        fps: the stream's frame rate.
    """

    name: str
    probs: np.ndarray
    step_frames: np.ndarray
    labels: np.ndarray
    segments: list[dict]
    fps: float

    def frame_scores(self) -> tuple[np.ndarray, np.ndarray]:
        """(N, K) scores in force at each source frame (the latest step's) and the (N,) mask of frames that have
        a step at or before them."""
        n = len(self.labels)
        latest = np.searchsorted(self.step_frames, np.arange(n), side="right") - 1  # (N,) step in force, -1: none
        scores = self.probs[np.maximum(latest, 0)]
        return scores, latest >= 0


def run_streams(model_or_runtime, records: Sequence[VideoRecord], class_names: Sequence[str], *,
                progress: bool = True) -> list[StreamScores]:
    """Push every frame of every stream through a fresh `StreamingEngine` (no smoothing, a step per processed frame).

    Args:
        model_or_runtime: a streamable model or runtime.
        records: stream records (``meta["segments"]``).
        class_names: the classes the records' labels index (the model's, in the same order).
        progress: show a progress bar over the frames.

    Returns:
        One `StreamScores` per record.
    """
    engine = StreamingEngine(model_or_runtime, smoothing="none", topk=1)
    total = sum(r.num_frames or 0 for r in records)
    bar = tqdm(total=total, desc="streams", unit="frame", disable=not progress)
    out = []
    for record in records:
        engine.reset()
        probs, frames = [], []
        with open_video(record.path) as reader:
            fps = reader.fps
            num_frames = 0
            for frame in reader.iter_frames():
                prediction = engine.push(frame)
                if prediction is not None:
                    probs.append(prediction.probs)
                    frames.append(prediction.frame_index)
                num_frames += 1
                bar.update()
        labels = np.asarray(frame_labels(record, num_frames))
        background = record.meta["background"]
        segments = [{"label": class_names[c], "start": s, "end": e} for s, e, c in record.meta["segments"]
                    if c != background]
        out.append(StreamScores(record.meta.get("id", record.path.stem), np.asarray(probs), np.asarray(frames),
                                labels, segments, fps))
    bar.close()
    return out


def score_streams(streams: Iterable[StreamScores], class_names: Sequence[str], cfg: EventCfg, *,
                  background: int = 0) -> dict:
    """Online metrics over the streams (`streamact.evaluation.stream.StreamMetrics`) with the event settings `cfg`.

    Frames are scored from the first model step on (the first frame has none yet). The event detector's background
    class is the dataset's (``no_gesture``, IPN's ``D0X``, THUMOS's ``background``), whatever `cfg` names.
    """
    cfg = cfg.replace(background=class_names[background])
    metrics = StreamMetrics(background=background)
    for s in streams:
        events = detect_events(s.probs, class_names, cfg, frame_indices=s.step_frames)
        scores, valid = s.frame_scores()
        metrics.update(scores, s.labels, events, s.segments, fps=s.fps, valid=valid)
    return metrics.compute()


def tune_event_cfg(streams: Sequence[StreamScores], class_names: Sequence[str], base: EventCfg, *,
                   grid: dict[str, Sequence] | None = None, background: int = 0) -> tuple[EventCfg, dict]:
    """The event settings that maximise Levenshtein accuracy + event F1 on these (validation) streams.

    Ties go to the smaller median emission delay, then to the first setting in grid order.

    Args:
        streams: recorded model outputs (`run_streams`).
        class_names: the model's classes.
        base: settings kept where the grid says nothing.
        grid: setting name -> candidate values (default `EVENT_GRID`); combinations with off_threshold above
            on_threshold take off_threshold = on_threshold.
        background: index of the background class.

    Returns:
        The best settings and their metrics.
    """
    grid = EVENT_GRID if grid is None else grid
    best, best_key, best_metrics = base, None, {}
    for values in itertools.product(*grid.values()):
        changes = dict(zip(grid, values))
        on = changes.get("on_threshold", base.on_threshold)
        changes["off_threshold"] = min(changes.get("off_threshold", base.off_threshold), on)
        cfg = base.replace(**changes)
        m = score_streams(streams, class_names, cfg, background=background)
        delay = m["delay_median_s"] if m["delay_median_s"] is not None else float("inf")
        key = (np.nan_to_num(m["levenshtein_accuracy"], nan=-1.0) + np.nan_to_num(m["f1"]), -delay)
        if best_key is None or key > best_key:
            best, best_key, best_metrics = cfg, key, m
    return best, best_metrics
