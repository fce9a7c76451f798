"""THUMOS'14-style temporal annotations: one file per class and split, one action instance per line.

Files::

    annotations/<Class>_<split>.txt      "<video> <start_s> <end_s>" per line (split: train, val, test)
    videos/<video>.mp4

Each video of the split becomes one stream record (`streamact.data.records`) with the segments of every class,
converted to frames at the video's frame rate; class 0 is ``background`` (frames no segment covers), the
annotated classes follow in alphabetical order. ``Ambiguous_<split>.txt`` (THUMOS's unscored instances) is ignored.
"""
from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, Segment, build_stream_records, read_lines
from streamact.data.records import VideoRecord

__all__ = ["parse_thumos", "THUMOS_FILE", "BACKGROUND"]

THUMOS_FILE = re.compile(r"^(.+)_(train|val|validation|test)\.txt$")
BACKGROUND = "background"


def parse_thumos(annotation_files: Sequence[str | Path],
                 videos_root: str | Path) -> tuple[list[VideoRecord], list[str]]:
    """Parse the per-class annotation files of one split into stream records.

    Args:
        annotation_files: the split's ``<Class>_<split>.txt`` files.
        videos_root: folder holding ``<video>.mp4``.

    Returns:
        (records, ["background", classes...]); a missing or unreadable video is skipped and counted in a warning.

    Raises:
        AnnotationError: a file name without ``_<split>.txt``; or bad lines, all of them in one error (see
            `BadLines`): a malformed line, start >= end, segments of one video that overlap (also across classes),
            or a segment past the end of its video.
    """
    files = {}
    for f in map(Path, annotation_files):
        match = THUMOS_FILE.match(f.name)
        if match is None:
            raise AnnotationError(f, None, "expected a file named <Class>_<split>.txt (split: train, val, test)")
        if match.group(1) != "Ambiguous":
            files[match.group(1)] = f
    class_names = [BACKGROUND, *sorted(files)]
    # One collector for the split's files: segments of different classes (files) of a video may overlap.
    bad = BadLines(Path(annotation_files[0]).parent if annotation_files else Path(videos_root))
    segments: dict[str, list[Segment]] = defaultdict(list)
    for label, name in enumerate(class_names[1:], start=1):
        path = files[name]
        for line, text in read_lines(path):
            with bad.catch():
                video, start, end = _parse_line(path, line, text)
                segments[video].append(Segment(start, end, label, path, line))
    records = build_stream_records(segments, Path(videos_root), background=0, bad=bad, seconds=True)
    bad.check(records, class_names)
    return records, class_names


def _parse_line(path: Path, line: int, text: str) -> tuple[str, float, float]:
    """``<video> <start_s> <end_s>`` as (video, start, end)."""
    fields = text.split()
    try:
        video, start, end = fields[0], float(fields[1]), float(fields[2])
        if len(fields) != 3:
            raise ValueError
    except (IndexError, ValueError):
        raise AnnotationError(path, line, f"expected '<video> <start_s> <end_s>', got {text!r}") from None
    if not 0 <= start < end:
        raise AnnotationError(path, line, f"start {start:g} s must be >= 0 and before end {end:g} s")
    return video, start, end
