"""IPN Hand (Benitez-Garcia et al., ICPR 2020): continuous gesture streams with per-segment annotations.

Files::

    classIdx.txt                 "id,label,name" rows (id 1-based, in class order; a header row is optional)
    Annot_TrainList.txt          "video,label,id,t_start,t_end,frames" rows (header optional): one segment each,
    Annot_TestList.txt           frames 1-based inclusive, frames = t_end - t_start + 1; non-gesture segments
    (Annot_ValList.txt)          (IPN's D0X) are listed like gestures
    frames/<video>/<video>_000001.jpg ...    or a video file <video>.mp4 (the synthetic stream sets)

Each video becomes one stream record (`streamact.data.records`): its segments with 0-based, end-exclusive frames,
and class 0 (the first of classIdx.txt, IPN's D0X) for frames no segment covers.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, Segment, build_stream_records, read_lines
from streamact.data.records import VideoRecord

__all__ = ["parse_ipn", "load_ipn_classes"]

_COLUMNS = ["video", "label", "id", "t_start", "t_end", "frames"]


def load_ipn_classes(class_idx: str | Path) -> list[str]:
    """Class labels of classIdx.txt (``id,label[,name]`` rows, ids 1, 2, ... in order), as codes (``D0X``, ...).

    Raises:
        AnnotationError: a row without id and label, or ids not numbered 1, 2, ... in order.
    """
    labels: list[str] = []
    for line, text in read_lines(class_idx):
        fields = [f.strip() for f in text.split(",")]
        if line == 1 and fields[0].lower() == "id":
            continue
        if len(fields) < 2 or not fields[0].isdigit() or not fields[1]:
            raise AnnotationError(class_idx, line, f"expected 'id,label[,name]', got {text!r}")
        if int(fields[0]) != len(labels) + 1:
            raise AnnotationError(class_idx, line, f"class id {fields[0]} out of order; expected {len(labels) + 1}")
        labels.append(fields[1])
    if not labels:
        raise AnnotationError(class_idx, None, "no classes")
    return labels


def parse_ipn(annotation_list: str | Path, class_idx: str | Path,
              videos_root: str | Path) -> tuple[list[VideoRecord], list[str]]:
    """Parse one IPN Hand split into stream records.

    Args:
        annotation_list: Annot_TrainList.txt, Annot_TestList.txt, ...
        class_idx: classIdx.txt.
        videos_root: folder holding ``<video>/`` frame folders or ``<video>.mp4`` files.

    Returns:
        (records, class labels); a video that is missing, or whose frame folder lacks annotated frames, is skipped
        and counted in a warning.

    Raises:
        AnnotationError: bad rows, all of them in one error (see `BadLines`): a malformed row, an unknown label, an
            id that disagrees with the label, frames that do not match t_start and t_end, segments of one video that
            overlap, or a segment past the end of its video.
    """
    class_names = load_ipn_classes(class_idx)
    class_to_idx = {name: i for i, name in enumerate(class_names)}
    path = Path(annotation_list)
    bad = BadLines(path)
    segments: dict[str, list[Segment]] = defaultdict(list)
    for line, text in read_lines(path):
        fields = [f.strip() for f in text.split(",")]
        if line == 1 and fields == _COLUMNS:
            continue
        with bad.catch():
            segment = _parse_row(path, line, text, fields, class_to_idx, Path(class_idx).name)
            segments[fields[0]].append(segment)
    records = build_stream_records(segments, Path(videos_root), background=0, bad=bad, missing_frames=_missing_frames)
    bad.check(records, class_names)
    return records, class_names


def _parse_row(path: Path, line: int, text: str, fields: list[str], class_to_idx: dict[str, int],
               class_file: str) -> Segment:
    """One ``video,label,id,t_start,t_end,frames`` row as a 0-based, end-exclusive segment."""
    if len(fields) != 6 or not all(f.isdigit() for f in fields[2:]) or not fields[0]:
        raise AnnotationError(path, line, f"expected '{','.join(_COLUMNS)}' with integer id and frames, got {text!r}")
    label, class_id, t_start, t_end, frames = fields[1], *map(int, fields[2:])
    if label not in class_to_idx:
        raise AnnotationError(path, line, f"unknown label {label!r} (not in {class_file})")
    if class_id != class_to_idx[label] + 1:
        raise AnnotationError(path, line, f"id {class_id} disagrees with label {label!r} "
                              f"(id {class_to_idx[label] + 1} in {class_file})")
    if not 1 <= t_start <= t_end or frames != t_end - t_start + 1:
        raise AnnotationError(path, line, f"frames {t_start}-{t_end} ({frames} frames): expected "
                              "1 <= t_start <= t_end and frames = t_end - t_start + 1")
    return Segment(t_start - 1, t_end, class_to_idx[label], path, line)


def _missing_frames(folder: Path, video: str, last: int) -> int:
    """Annotated frames 1..last absent from an IPN frame folder (``<video>_<frame:06d>.jpg``)."""
    present = {p.name for p in folder.iterdir()}
    return sum(f"{video}_{f:06d}.jpg" not in present for f in range(1, last + 1))
