"""Shared records: every dataset parser produces `VideoRecord`s, every sampler returns a `ClipInfo`.

Stream formats (IPN Hand, THUMOS) produce one record per video with ``label=-1`` and its timeline in ``meta``:
``segments`` (``[start, end, label]`` rows, 0-based, end exclusive, sorted, non-overlapping) and ``background``
(the class of frames no segment covers); `frame_labels` expands them.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["VideoRecord", "ClipInfo", "frame_labels"]


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

    @property
    def labelled(self) -> bool:
        """Whether the video has labels to train or score against: a class, or frame-level segments (a stream)."""
        return self.label >= 0 or "segments" in self.meta


@dataclass
class ClipInfo:
    """Frame indices to decode for one sample, shape (num_clips, clip_len) flattened clip-major."""

    indices: list[int]
    num_clips: int = 1
    clip_len: int = 1
    label: int | list[int] | None = None  # the sample's label when the sampler decides it (stream windows; a list
    #                                       labels the window's last frames one by one), else the record's


def frame_labels(record: VideoRecord, num_frames: int | None = None) -> list[int]:
    """Per-frame class indices of a stream record (``meta["segments"]``: ``[start, end, label]`` rows, end
    exclusive); frames no segment covers get ``meta["background"]``.

    Args:
        record: a record from a stream format (IPN Hand, THUMOS).
        num_frames: length of the timeline; default: the record's ``num_frames``.
    """
    n = record.num_frames if num_frames is None else num_frames
    labels = [record.meta["background"]] * n
    for start, end, label in record.meta["segments"]:
        labels[start:min(end, n)] = [label] * (min(end, n) - start)
    return labels
