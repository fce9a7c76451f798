"""Detection streams of `streamact serve`: a tubelet detector (AMMA) behind the sessions' engine interface.

    frame (as the client sent it) ──► DetectionEngine (zero-delay: every frame answered at once with the latest
        step's boxes; a model step every t frames over the cached clip features; tubes linked online)
        ──► {"frame", "width", "height", "detections": [{"box", "label", "label_index", "score", "tube"}, ...]}

Boxes are in the pixels of the frame the client sent (x1, y1, x2, y2), so the page scales them by the size it
shows the video at. Frames the server dropped as stale are never pushed: the engine sees the frames it got, and
the tube ids stay stable across the gaps. A frame of another size than the stream's previous ones starts the
stream over (boxes and tubes are in source pixels): new tubes, new ids.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from streamact.inference.detection import DetectionEngine, FrameDetections

__all__ = ["DetectionStream", "LiveDetections", "detection_engines"]


class LiveDetections:
    """One answered frame: its index among the frames the client sent, and what the engine found on it."""

    probs = None  # no class scores for the event detector: detection streams have no gesture events

    def __init__(self, frame_index: int, detections: FrameDetections, size: tuple[int, int]) -> None:
        self.frame_index, self.detections, self.size = frame_index, detections, size

    def to_json(self) -> dict:
        return {**self.detections.to_json(), "frame": self.frame_index, "width": self.size[1],
                "height": self.size[0]}


class DetectionStream:
    """One stream's `DetectionEngine` (its own feature cache and tube linker) on the shared detector runtime.

    Args:
        runtime: a detector's runtime (``runtime.detection`` set).
        min_score: boxes scoring below this are not reported (tubes are still linked).
    """

    def __init__(self, runtime, *, min_score: float = 0.3) -> None:
        # A stream may run for days and nobody asks for its ended tubes: the engine does not keep them.
        self.engine = DetectionEngine(runtime, mode="zero-delay", min_display_score=min_score, keep_tubes=False)
        self.labels = self.engine.labels

    @property
    def num_processed(self) -> int:
        """Model steps so far."""
        return self.engine.num_steps

    def push(self, frame: np.ndarray, frame_index: int) -> LiveDetections:
        if self.engine.source_size not in (None, frame.shape[:2]):
            self.engine.reset()
        (answered,) = self.engine.push(frame)
        return LiveDetections(frame_index, answered, self.engine.source_size)


def detection_engines(runtime, *, min_score: float = 0.3) -> Callable[[], tuple[Any, None]]:
    """A factory of ``(DetectionStream, None)`` pairs sharing `runtime` (its compiled model)."""
    return lambda: (DetectionStream(runtime, min_score=min_score), None)
