"""Shared records: every dataset parser produces `VideoRecord`s, every sampler returns a `ClipInfo`."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["VideoRecord", "ClipInfo"]


@dataclass
class VideoRecord:
    """One labelled video (a file or a folder of frames).

    Attributes:
        path: video file or frame folder.
        label: integer class index (-1 when unlabelled).
        num_frames: frame count when the annotation gives it (rawframe lists, frame folders); None = ask the reader.
        start: first usable frame (trimmed segments of untrimmed videos).
        end: one past the last usable frame; None = to the end.
        meta: free-form extras (video id, original label name, timeline, ...).
    """

    path: Path
    label: int
    num_frames: int | None = None
    start: int = 0
    end: int | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.path = Path(self.path)


@dataclass
class ClipInfo:
    """Frame indices to decode for one sample, shape (num_clips, clip_len) flattened clip-major."""

    indices: list[int]
    num_clips: int = 1
    clip_len: int = 1
