"""Gesture events: each gesture reported once, soon after it is performed (single-time activation).

Per-frame scores flicker, and a live gesture system is judged by its events, not by its frames: each gesture
should be reported exactly once, with the right label, as soon as the model is sure. `EventDetector` turns the
`Prediction.probs` of a `StreamingEngine` into such events, after the scheme of Köpüklü et al., "Real-time Hand
Gesture Detection and Classification Using Convolutional Neural Networks" (2019): a detector says whether a
gesture is going on, a weighted average of the classifier's scores over the gesture says which one, and the
gesture is reported once, early when one class clearly leads, otherwise late when the gesture ends. Here the
detector is the model's own background class (``no_gesture``): the gesture score of a step is
``g = 1 - p(background)``.

    probs of each model step ──► exponential moving average (alpha) ──► g = 1 − p(background)
    ──► hysteresis: a gesture starts when g ≥ on_threshold for min_frames steps,
                    and ends when g < off_threshold for release_frames steps
    ──► while a gesture is on: average of the gesture classes' probabilities (renormalised without
        background), weighted 1, 2, 3, ... by step since its start
    ──► early event: best − second ≥ early_margin  │  late event at its end: best ≥ late_threshold
                                    (at most one of them per gesture)
    a new leading class held for switch_frames steps ──► ends the gesture and starts the next (touching gestures)

Why these choices:
- The detector smooths the scores it reads (``alpha``) on its own, apart from the engine's smoothing: a moving
  average removes the one-step flickers that would start or split gestures, but its lag costs per-frame accuracy,
  which the per-frame predictions keep (on the bundled model's validation streams the engine's EMA cut frame
  accuracy from 0.37 to 0.27; docs/RESULTS.md).
- Hysteresis (two thresholds plus step counts) keeps a one-step dip or blip of ``g`` from splitting a gesture or
  inventing one; the cost is ``min_frames`` steps of delay at the start.
- Later steps weigh more (Köpüklü et al. weigh by time since the start, too): a causal model has seen more of
  the gesture by then, while its first steps after the onset still mostly see the frames before it.
- Early activation reports a confident gesture before it ends; late activation still reports the gestures that
  only become clear at the end, and drops those that never do (``late_threshold`` trades misses against wrong
  labels: both cost one edit in Levenshtein accuracy, but a wrong label also costs event precision).
- Two gestures back to back without a background gap keep ``g`` high; a change of the leading class that holds
  for ``switch_frames`` steps separates them. The steps of such a candidate change are held aside (not averaged
  into the running gesture) until it either holds, and they start the next gesture, or ends.

Counts are in model steps (one per processed frame: every ``frame_interval``-th source frame); frame indices
are the source frame indices the caller passes in (`Prediction.frame_index`). The settings belong to the model
(`EventCfg`, carried in its `PretrainedCfg` and in exported sidecars), so every runtime uses the same ones.
Numpy only: a deployment without torch runs this too.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from streamact.errors import UserError

__all__ = ["EventCfg", "EventCfgError", "Event", "EventDetector", "detect_events"]

_SMOOTHING = ("none", "ema", "window")


class EventCfgError(UserError, ValueError):
    """Event or smoothing settings out of range."""


@dataclass(frozen=True)
class EventCfg:
    """A model's settings for turning its per-frame scores into gesture events (see the module docstring).

    Attributes:
        smoothing: score smoothing of the `StreamingEngine` ("none", "ema" or "window"); the thresholds below are
            tuned on the smoothed scores, so it travels with them.
        background: name of the class that means "no gesture".
        alpha: weight of the newest step in the detector's exponential moving average of the scores (1: none).
        on_threshold: a gesture starts when ``1 - p(background)`` reaches this ...
        min_frames: ... for this many consecutive steps.
        off_threshold: a gesture ends when ``1 - p(background)`` falls below this (at most `on_threshold`) ...
        release_frames: ... for this many consecutive steps.
        early_margin: report a gesture before it ends once its best class leads the second by this much
            (averaged over the gesture so far); 1 turns early activation off.
        late_threshold: at the end, report a gesture not reported yet if its best class reaches this.
        switch_frames: steps a new leading class must hold to end the current gesture and start the next.

    The defaults were tuned for the trimmed-clip gesture model (`tsm_efficientnet_lite0_gestures`) on six short
    synthetic streams; a model trained otherwise carries its own, tuned on its validation streams with
    `streamact.evaluation.online.tune_event_cfg` (as bench/stream_recognition.py does for the bundled stream model).
    """

    smoothing: str = "none"
    background: str = "no_gesture"
    alpha: float = 0.3
    on_threshold: float = 0.6
    min_frames: int = 1
    off_threshold: float = 0.4
    release_frames: int = 2
    early_margin: float = 0.3
    late_threshold: float = 0.5
    switch_frames: int = 4

    def __post_init__(self) -> None:
        if self.smoothing not in _SMOOTHING:
            raise EventCfgError(f"event settings: smoothing must be one of {', '.join(_SMOOTHING)}, "
                                f"got {self.smoothing!r}")
        for name in ("alpha", "on_threshold", "off_threshold", "early_margin", "late_threshold"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0 < value <= 1:
                raise EventCfgError(f"event settings: {name} must be in (0, 1], got {value!r}")
        for name in ("min_frames", "release_frames", "switch_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise EventCfgError(f"event settings: {name} must be a whole number of steps >= 1, got {value!r}")
        if self.off_threshold > self.on_threshold:
            raise EventCfgError(f"event settings: off_threshold ({self.off_threshold}) must not exceed "
                                f"on_threshold ({self.on_threshold})")

    def replace(self, **changes: Any) -> EventCfg:
        """A copy with some fields changed (checked like the original)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EventCfg:
        """Inverse of `dataclasses.asdict`.

        Raises:
            EventCfgError: for a key that is not a setting, or a value out of range.
        """
        unknown = sorted(set(d) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise EventCfgError(f"event settings: unknown key(s) {', '.join(unknown)}")
        return cls(**d)


@dataclass
class Event:
    """One reported gesture.

    Attributes:
        label: class name.
        label_index: its index in the model's labels.
        start_frame: source frame index of the gesture's first step.
        end_frame: source frame index of its last step known when the event was emitted (inclusive): the
            emitting step for an early event, the last step before the release for a late one.
        emitted_at_frame: source frame index of the step that emitted it (the earliest moment a live system can
            act on it).
        score: the best class's weighted average probability over the gesture when emitted.
        trigger: "early" (the class was clear before the gesture ended) or "late" (at its end).
    """

    label: str
    label_index: int
    start_frame: int
    end_frame: int
    emitted_at_frame: int
    score: float
    trigger: str

    def to_json(self) -> dict[str, Any]:
        return {"label": self.label, "start_frame": self.start_frame, "end_frame": self.end_frame,
                "emitted_at_frame": self.emitted_at_frame, "score": round(self.score, 5), "trigger": self.trigger}


class EventDetector:
    """Feed it every prediction of one stream in order; it returns the events as they are decided.

    Args:
        labels: class names of the model, in score order; must include ``cfg.background``.
        cfg: the model's event settings (``pretrained_cfg.events``).

    Raises:
        EventCfgError: the labels have no background class.
    """

    def __init__(self, labels: Sequence[str], cfg: EventCfg | None = None) -> None:
        self.cfg = cfg or EventCfg()
        self.labels = list(labels)
        if self.cfg.background not in self.labels:
            raise EventCfgError(f"gesture events need a background class, and the model has no "
                                f"{self.cfg.background!r} class (its classes: {', '.join(self.labels[:6])}"
                                f"{' ...' if len(self.labels) > 6 else ''})")
        self.background = self.labels.index(self.cfg.background)
        # Gesture classes, in label order: positions in the renormalised vectors below map back through this.
        self._gestures = np.array([i for i in range(len(self.labels)) if i != self.background])
        self.reset()

    def reset(self) -> None:
        """Forget the stream (call with `StreamingEngine.reset`)."""
        self._smoothed: np.ndarray | None = None
        self._last_seen = -1  # source frame index of the last step
        self._pending: list[tuple[int, np.ndarray]] = []  # idle: steps with g >= on_threshold in a row
        self._active = False
        self._below = 0  # active: steps with g < off_threshold in a row
        self._rival: list[tuple[int, np.ndarray]] = []  # active: steps led by another class in a row

    def update(self, frame_index: int, probs: np.ndarray) -> list[Event]:
        """One model step: its source frame index and its class probabilities (`Prediction.probs`).

        Returns:
            The events this step decided: usually none, one when a gesture is reported, and two in the rare step
            that ends one gesture late and reports the next early.
        """
        cfg, events = self.cfg, []
        self._last_seen = frame_index
        probs = np.asarray(probs, dtype=np.float64).reshape(-1)
        if self._smoothed is not None:
            probs = cfg.alpha * probs + (1 - cfg.alpha) * self._smoothed
        self._smoothed = probs
        g = 1.0 - probs[self.background]
        q = probs[self._gestures]
        q = q / q.sum() if q.sum() > 0 else np.full(len(q), 1.0 / len(q))
        if not self._active:
            if g < cfg.on_threshold:
                self._pending.clear()
                return events
            self._pending.append((frame_index, q))
            if len(self._pending) >= cfg.min_frames:
                self._start(self._pending)
                self._pending = []
                events += self._maybe_early(frame_index)
            return events
        if g < cfg.off_threshold:
            self._below += 1
            if self._below >= cfg.release_frames:
                events += self._close(frame_index)
            return events
        self._below = 0
        leader = int(np.argmax(q))
        if self._rival and (leader == self._reference() or leader != int(np.argmax(self._rival[0][1]))):
            self._absorb(self._rival)  # the candidate change did not hold: its steps belong to this gesture
            self._rival = []
        if leader == self._reference():
            self._absorb([(frame_index, q)])
        else:
            self._rival.append((frame_index, q))
            if len(self._rival) >= cfg.switch_frames:  # it held: the next gesture started with the first of them
                rival, self._rival = self._rival, []
                events += self._close(frame_index)
                self._start(rival)
        return events + self._maybe_early(frame_index)

    def finish(self) -> list[Event]:
        """The stream ended: close a gesture still going on (a late event if it qualifies) and reset."""
        events = self._close(self._last_seen) if self._active else []
        self.reset()
        return events

    # -- one gesture ---------------------------------------------------------------------------------------------
    def _start(self, steps: list[tuple[int, np.ndarray]]) -> None:
        self._active, self._below, self._rival, self._emitted = True, 0, [], False
        self._start_frame = steps[0][0]
        self._sum = np.zeros(len(self._gestures))
        self._weight = 0.0
        self._absorb(steps)

    def _absorb(self, steps: list[tuple[int, np.ndarray]]) -> None:
        for frame_index, q in steps:
            self._end_frame = frame_index
            self._weight += 1.0
            self._sum += self._weight * q  # step k of the gesture weighs k
        # normaliser: 1 + 2 + ... + k
        self._total = self._weight * (self._weight + 1) / 2

    def _average(self) -> np.ndarray:
        return self._sum / self._total

    def _reference(self) -> int:
        """The class the running gesture stands for: the reported one once reported, else the current leader."""
        return self._emitted_class if self._emitted else int(np.argmax(self._average()))

    def _maybe_early(self, frame_index: int) -> list[Event]:
        if self._emitted:
            return []
        avg = self._average()
        second, best = np.sort(avg)[-2:] if len(avg) > 1 else (0.0, avg[0])
        if best - second < self.cfg.early_margin:
            return []
        return [self._emit(self._end_frame, frame_index, "early")]

    def _close(self, frame_index: int) -> list[Event]:
        """End the gesture at the step `frame_index`; a candidate change that had not held yet belongs to it."""
        self._absorb(self._rival)
        self._active, self._rival = False, []
        if self._emitted or self._average().max() < self.cfg.late_threshold:
            return []
        return [self._emit(self._end_frame, frame_index, "late")]

    def _emit(self, end_frame: int, emitted_at: int, trigger: str) -> Event:
        avg = self._average()
        best = int(np.argmax(avg))
        self._emitted, self._emitted_class = True, best
        index = int(self._gestures[best])
        return Event(self.labels[index], index, self._start_frame, end_frame, emitted_at, float(avg[best]), trigger)


def detect_events(probs: np.ndarray, labels: Sequence[str], cfg: EventCfg | None = None, *,
                  frame_indices: Sequence[int] | None = None) -> list[Event]:
    """All events of one stream at once (for evaluation and for tuning the settings on recorded scores).

    Args:
        probs: (N, K) class probabilities of the N model steps, in stream order.
        labels: the K class names.
        cfg: event settings (default: `EventCfg()`).
        frame_indices: source frame index of each step (default 0 .. N-1).

    Returns:
        The events in the order they were emitted, including those of a gesture still going on at the end.
    """
    probs = np.asarray(probs)
    frame_indices = range(len(probs)) if frame_indices is None else frame_indices
    detector = EventDetector(labels, cfg)
    events = [e for f, p in zip(frame_indices, probs) for e in detector.update(int(f), p)]
    return events + detector.finish()
