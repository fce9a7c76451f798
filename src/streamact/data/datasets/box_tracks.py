"""Custom detection data: box-track annotations (CSV or JSON) -> a UCF101v2-GT.pkl-layout pickle.

One row per frame and actor::

    video,frame,actor_id,label,x1,y1,x2,y2[,split]

`frame` is 1-based, corners are 0-based pixels of the frame image, `label` a class name, `split` (optional)
"train" or "test" and the same on every row of a video. A JSON file is a list of objects with these keys. Each
actor's consecutive rows with one label form one action tube; a track must not skip frames (a second instance of an
action by the same actor needs its own actor_id). The frames must exist below the dataset folder (default
``rgb-images/<video>/00001.jpg``): the frame count and resolution (h, w) of every video are read from them.
Without a split column, every k-th video (sorted by name) is a test video, k = round(1 / test_fraction).

Class ids follow the order in which labels first appear, unless a class list is given.
"""
from __future__ import annotations

import csv
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from streamact.data.datasets.common import AnnotationError, iter_json_items
from streamact.data.datasets.detection import (
    UCF_FRAME_PATTERN,
    DetectionAnnotations,
    save_detection_annotations,
    validate_detection_annotations,
)
from streamact.errors import UserError

__all__ = ["BOX_TRACK_COLUMNS", "convert_box_tracks"]

BOX_TRACK_COLUMNS = ("video", "frame", "actor_id", "label", "x1", "y1", "x2", "y2")


def _error(path: Path, line: int | None, message: str) -> UserError:
    return UserError(f"{path}:{line}: {message}" if line is not None else f"{path}: {message}")


def _rows(path: Path) -> Iterator[tuple[int, dict]]:
    """(line number, row dict) from a CSV with a header, or a JSON list of objects."""
    if not path.is_file():
        raise UserError(f"{path}: box annotation file not found")
    if path.suffix.lower() == ".json":
        try:
            items = list(iter_json_items(path))
        except AnnotationError as e:
            raise UserError(str(e)) from None
        for line, _, item in items:
            if not isinstance(item, dict):
                raise _error(path, line, "expected an object with keys " + ", ".join(BOX_TRACK_COLUMNS))
            yield line, item
        return
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in BOX_TRACK_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise _error(path, 1, f"header lacks column(s) {', '.join(missing)}; expected "
                                           f"{','.join(BOX_TRACK_COLUMNS)}[,split]")
        for row in reader:
            yield reader.line_num, row


def _frame_info(root: Path, pattern: str, video: str) -> tuple[int, tuple[int, int]]:
    """(number of frames, (h, w)) of a video's frame folder: frames 1, 2, ... until the first missing one."""
    from PIL import Image

    first = root / pattern.format(video=video, frame=1)
    if not first.is_file():
        raise UserError(f"video {video} frame 1: frame file {first} not found; put the frames below the dataset "
                        f"folder as {pattern} (or pass --root / --frame-pattern)")
    with Image.open(first) as image:
        w, h = image.size
    count = 1
    while (root / pattern.format(video=video, frame=count + 1)).is_file():
        count += 1
    return count, (h, w)


def convert_box_tracks(
    annotations: str | Path,
    out: str | Path,
    *,
    root: str | Path | None = None,
    frame_pattern: str = UCF_FRAME_PATTERN,
    classes: Sequence[str] | None = None,
    test_fraction: float = 0.3,
) -> DetectionAnnotations:
    """Convert a box-track CSV/JSON to a detection pickle (see the module docstring) and write it to `out`.

    Args:
        annotations: the CSV or JSON file.
        out: the pickle to write (e.g. ``DIR/mydata-GT.pkl``).
        root: dataset folder holding the frames (default: the pickle's folder).
        frame_pattern: frame path below `root`, with ``{video}`` and ``{frame}``.
        classes: class names in id order (default: order of first appearance).
        test_fraction: share of test videos when the file has no split column.

    Returns:
        The annotations as written.

    Raises:
        UserError: a row does not parse, a track skips frames, a box is invalid or lies outside its frame, a frame
            is missing; the message names file and line or video and frame.
    """
    path, out = Path(annotations), Path(out)
    root = Path(root) if root is not None else out.parent
    labels = list(classes or [])
    tracks: dict[tuple[str, str], list[tuple[int, int, str, list[float]]]] = {}  # (video, actor) -> rows
    splits: dict[str, tuple[str, int]] = {}  # video -> (split, line that set it)
    for line, row in _rows(path):
        try:
            video, actor, label = str(row["video"]).strip(), str(row["actor_id"]).strip(), str(row["label"]).strip()
            frame = int(row["frame"])
            box = [float(row[k]) for k in ("x1", "y1", "x2", "y2")]
        except (KeyError, TypeError, ValueError) as e:
            raise _error(path, line, f"expected {','.join(BOX_TRACK_COLUMNS)} with an integer frame and "
                                              f"numeric corners ({e.__class__.__name__}: {e})") from None
        if label not in labels:
            if classes is not None:
                raise _error(path, line, f"unknown class {label!r} ({len(labels)} classes given)")
            labels.append(label)
        split = str(row.get("split") or "").strip()
        if split:
            if split not in ("train", "test"):
                raise _error(path, line, f"split must be 'train' or 'test', got {split!r}")
            if video in splits and splits[video][0] != split:
                raise _error(path, line, f"video {video} is '{splits[video][0]}' on line "
                                                  f"{splits[video][1]} but '{split}' here")
            splits.setdefault(video, (split, line))
        tracks.setdefault((video, actor), []).append((frame, line, label, box))
    if not tracks:
        raise _error(path, None, "no box rows")

    gttubes: dict[str, dict[int, list[np.ndarray]]] = {}
    for (video, actor), rows in tracks.items():
        rows.sort()
        start = 0
        for i in range(1, len(rows) + 1):
            if i < len(rows):
                (prev, prev_line, prev_label, _), (frame, line, label, _) = rows[i - 1], rows[i]
                if frame == prev:
                    raise _error(path, line, f"video {video} actor {actor} frame {frame} already has a box "
                                                      f"(line {prev_line})")
                if label == prev_label and frame != prev + 1:
                    raise _error(path, line, f"video {video} actor {actor}: frame {frame} follows frame "
                                                      f"{prev} of the same track (frames {prev + 1}-{frame - 1} have "
                                                      f"no box); give a separate action instance its own actor_id")
                if label == prev_label:
                    continue
            tube = np.array([[f, *box] for f, _, _, box in rows[start:i]], np.float32)
            gttubes.setdefault(video, {}).setdefault(labels.index(rows[start][2]), []).append(tube)
            start = i

    videos = sorted(gttubes)
    nframes, resolution = {}, {}
    for video in videos:
        nframes[video], resolution[video] = _frame_info(root, frame_pattern, video)
    if splits:
        unsplit = [v for v in videos if v not in splits]
        if unsplit:
            raise _error(path, None, f"video {unsplit[0]} has no split while others do; give every row a "
                                              f"split or none")
        test = [v for v in videos if splits[v][0] == "test"]
    else:
        step = max(1, round(1 / test_fraction)) if test_fraction > 0 else len(videos) + 1
        test = videos[step - 1 :: step]
    ann = DetectionAnnotations(
        root=root,
        labels=labels,
        nframes=nframes,
        resolution=resolution,
        gttubes=gttubes,
        train_videos=[[v for v in videos if v not in test]],
        test_videos=[test],
        frame_pattern=frame_pattern,
    )
    validate_detection_annotations(ann, on_error="raise", source=path)
    save_detection_annotations(ann, out)
    return ann
