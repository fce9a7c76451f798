"""Online metrics of recognition on continuous streams: per frame, and per reported gesture (event).

Inputs share one vocabulary:
- frame labels: one class index per source frame, ``background`` (``no_gesture``) between gestures;
- segments (the truth): gestures as mappings ``{"label": name, "start": first frame, "end": frame after the
  last}`` (end exclusive), the ``segments`` of a stream's ``.timeline.json``;
- events (the predictions): `streamact.inference.events.Event` objects or their JSON dicts, with ``label``,
  ``start_frame``, ``end_frame`` (inclusive) and ``emitted_at_frame``.

Definitions (each function's docstring repeats its own):
- frame accuracy: share of scored frames whose predicted class equals the true class.
- per-frame mAP (the online action detection protocol of TRN, Xu et al. ICCV 2019): for every action class
  (background excluded) the average precision of that class's per-frame scores over all frames, positives being
  the frames of that class; the mean over the classes that occur.
- Levenshtein accuracy (Köpüklü et al., "Real-time Hand Gesture Detection and Classification Using
  Convolutional Neural Networks", 2019): ``1 - edit_distance(event labels, true gesture labels) / number of true
  gestures``; misclassifications, double reports and misses all cost one edit, so it can go below 0.
- event precision / recall / F1: an event is correct (a true positive) when its label equals that of a gesture
  segment its frames overlap and it was emitted no later than ``tolerance`` seconds (0.5) after that gesture's
  last frame; each gesture is matched at most once.
- emission delay of a correct event: ``(emitted_at_frame - last frame of its gesture) / fps`` seconds, negative
  when the gesture was reported before it ended; summarised by median and 90th percentile.

Numpy only.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from streamact.evaluation.functional import average_precision

__all__ = ["frame_accuracy", "per_frame_map", "edit_distance", "levenshtein_accuracy", "match_events",
           "event_scores", "StreamMetrics", "TOLERANCE_S"]

TOLERANCE_S = 0.5  # an event counts if emitted at most this long after its gesture's last frame


def frame_accuracy(pred: Sequence[int], true: Sequence[int], *, valid: Sequence[bool] | None = None) -> float:
    """Share of frames whose predicted class index equals the true one.

    Args:
        pred: predicted class index per frame.
        true: true class index per frame.
        valid: frames to score (e.g. after the model's warm-up); default all.

    Returns:
        The accuracy, NaN when no frame is scored.
    """
    pred, true = np.asarray(pred), np.asarray(true)
    hits = pred == true
    if valid is not None:
        hits = hits[np.asarray(valid, dtype=bool)]
    return float(hits.mean()) if hits.size else float("nan")


def per_frame_map(scores: np.ndarray, true: Sequence[int], *, background: int | None = 0) -> float:
    """Per-frame mAP of online action detection.

    For every class except `background` that has at least one frame, the frames are ranked by that class's score
    and the average precision of the ranking computed (`average_precision`, positives: the frames of that
    class); the result is the mean over those classes.

    Args:
        scores: (N, K) per-frame class scores.
        true: (N,) true class index per frame.
        background: index of the background class, excluded from the mean (None: no background).

    Returns:
        The mAP, NaN when no action class occurs.
    """
    scores, true = np.asarray(scores, dtype=np.float64), np.asarray(true)
    classes = [c for c in np.unique(true) if c != background]
    aps = [average_precision(scores[:, c], true == c) for c in classes]
    return float(np.mean(aps)) if aps else float("nan")


def edit_distance(a: Sequence[Any], b: Sequence[Any]) -> int:
    """Levenshtein distance: the fewest insertions, deletions and substitutions that turn `a` into `b`."""
    row = list(range(len(b) + 1))  # distances from a[:0] to every prefix of b
    for i, x in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, y in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (x != y))
    return row[-1]


def levenshtein_accuracy(pred: Sequence[Any], true: Sequence[Any]) -> float:
    """``1 - edit_distance(pred, true) / len(true)``: Levenshtein accuracy of a predicted label sequence.

    Args:
        pred: labels of the reported events, in emission order.
        true: labels of the true gestures, in order.

    Returns:
        The accuracy (1 for a perfect sequence; below 0 when there are more edits than true gestures); NaN
        without true gestures.
    """
    return 1.0 - edit_distance(pred, true) / len(true) if len(true) else float("nan")


def _event(e: Any) -> Mapping[str, Any]:
    return e if isinstance(e, Mapping) else dataclasses.asdict(e)


def match_events(events: Sequence[Any], segments: Sequence[Mapping[str, Any]], *, fps: float,
                 tolerance: float = TOLERANCE_S) -> list[tuple[int, int]]:
    """Pair events with the gestures they correctly report.

    Events are taken in emission order. An event may match a gesture segment of the same label that its frames
    ``[start_frame, end_frame]`` overlap and whose last frame (``end - 1``) it was emitted no more than
    `tolerance` seconds after; among those not matched yet it takes the one it overlaps most (the earliest on a
    tie). Each gesture is matched at most once, so a second report of one gesture is a false positive.

    Args:
        events: the reported events.
        segments: the true gestures.
        fps: frame rate of the source, to convert `tolerance` to frames.
        tolerance: seconds an event may come after its gesture's last frame.

    Returns:
        (event index, segment index) pairs of the correct events.
    """
    events = [_event(e) for e in events]
    taken: set[int] = set()
    pairs = []
    for i in sorted(range(len(events)), key=lambda i: events[i]["emitted_at_frame"]):
        e = events[i]
        best, best_overlap = None, 0
        for j, s in enumerate(segments):
            if j in taken or s["label"] != e["label"]:
                continue
            overlap = min(e["end_frame"] + 1, s["end"]) - max(e["start_frame"], s["start"])
            if overlap > best_overlap and e["emitted_at_frame"] - (s["end"] - 1) <= tolerance * fps:
                best, best_overlap = j, overlap
        if best is not None:
            taken.add(best)
            pairs.append((i, best))
    return pairs


def event_scores(events: Sequence[Any], segments: Sequence[Mapping[str, Any]], *, fps: float,
                 tolerance: float = TOLERANCE_S) -> dict[str, Any]:
    """Event precision, recall, F1 and emission delays of one stream (matching: `match_events`).

    Returns:
        ``true_positives``, ``events``, ``gestures``, ``precision`` (correct / events), ``recall`` (matched
        gestures / gestures), ``f1`` (their harmonic mean; NaN when undefined) and ``delays_s``: for each correct
        event, ``(emitted_at_frame - last frame of its gesture) / fps`` (negative: reported before it ended).
    """
    pairs = match_events(events, segments, fps=fps, tolerance=tolerance)
    emitted = [_event(e)["emitted_at_frame"] for e in events]
    delays = [(emitted[i] - (segments[j]["end"] - 1)) / fps for i, j in pairs]
    return {"true_positives": len(pairs), "events": len(events), "gestures": len(segments),
            **_prf(len(pairs), len(events), len(segments)), "delays_s": delays}


def _prf(tp: int, num_events: int, num_gestures: int) -> dict[str, float]:
    precision = tp / num_events if num_events else float("nan")
    recall = tp / num_gestures if num_gestures else float("nan")
    f1 = 2 * tp / (num_events + num_gestures) if num_events + num_gestures else float("nan")
    return {"precision": precision, "recall": recall, "f1": f1}


class StreamMetrics:
    """All online metrics over several streams: `update` once per stream, `compute` at the end.

    Frames of all streams are pooled (frame accuracy, per-frame mAP); event counts and edit distances are summed,
    so Levenshtein accuracy is ``1 - total edits / total true gestures`` and precision / recall / F1 come from
    the summed counts; delays are pooled before taking the median and 90th percentile.

    Args:
        background: index of the background class (excluded from per-frame mAP).
        tolerance: seconds an event may come after its gesture's last frame (`match_events`).
    """

    def __init__(self, *, background: int | None = 0, tolerance: float = TOLERANCE_S) -> None:
        self.background, self.tolerance = background, tolerance
        self.reset()

    def reset(self) -> None:
        self._scores: list[np.ndarray] = []
        self._true: list[np.ndarray] = []
        self._valid: list[np.ndarray] = []
        self._edits = self._gestures = self._events = self._tp = self._streams = 0
        self._delays: list[float] = []

    def update(self, scores: np.ndarray, true: Sequence[int], events: Sequence[Any],
               segments: Sequence[Mapping[str, Any]], *, fps: float, valid: Sequence[bool] | None = None) -> None:
        """Add one stream.

        Args:
            scores: (N, K) class scores in force at each of its N source frames (the latest prediction's).
            true: (N,) true class index per frame.
            events: its reported events.
            segments: its true gestures.
            fps: its frame rate.
            valid: frames to score (e.g. after the warm-up, or that have a prediction); default all.
        """
        scores, true = np.asarray(scores, dtype=np.float64), np.asarray(true)
        if scores.ndim != 2 or len(scores) != len(true):
            raise ValueError(f"scores must be (N, K) for N = {len(true)} frames, got shape {scores.shape}")
        self._scores.append(scores)
        self._true.append(true)
        self._valid.append(np.ones(len(true), bool) if valid is None else np.asarray(valid, dtype=bool))
        ordered = sorted(map(_event, events), key=lambda e: e["emitted_at_frame"])
        self._edits += edit_distance([e["label"] for e in ordered], [s["label"] for s in segments])
        result = event_scores(events, segments, fps=fps, tolerance=self.tolerance)
        self._gestures += result["gestures"]
        self._events += result["events"]
        self._tp += result["true_positives"]
        self._delays += result["delays_s"]
        self._streams += 1

    def compute(self) -> dict[str, Any]:
        """The metrics so far (NaN where undefined; `None` delays without correct events).

        Returns:
            ``streams``, ``frames`` (scored), ``frame_accuracy``, ``per_frame_map``, ``levenshtein_accuracy``,
            ``gestures``, ``events``, ``true_positives``, ``precision``, ``recall``, ``f1``, ``delay_median_s``,
            ``delay_p90_s``.
        """
        if self._streams:
            valid = np.concatenate(self._valid)
            scores, true = np.concatenate(self._scores)[valid], np.concatenate(self._true)[valid]
        else:
            scores, true = np.zeros((0, 1)), np.zeros(0, int)
        delays = np.asarray(self._delays)
        return {
            "streams": self._streams, "frames": int(len(true)),
            "frame_accuracy": frame_accuracy(scores.argmax(1), true),
            "per_frame_map": per_frame_map(scores, true, background=self.background),
            "levenshtein_accuracy": 1.0 - self._edits / self._gestures if self._gestures else float("nan"),
            "gestures": self._gestures, "events": self._events, "true_positives": self._tp,
            **_prf(self._tp, self._events, self._gestures),
            "delay_median_s": float(np.median(delays)) if delays.size else None,
            "delay_p90_s": float(np.percentile(delays, 90)) if delays.size else None,
        }
