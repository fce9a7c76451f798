"""Dataset health check: every bad annotation line and every video that cannot be used, in one pass.

`check_path` backs `streamact data check LIST_OR_DIR`: it recognises the dataset (see
`streamact.data.datasets.discover_splits`), parses every split (collecting the bad lines rather than stopping at the
first), and decodes the videos of the good lines with the same reader training uses, so both refuse the same
unusable files (missing, not a video, truncated) whatever frames an epoch samples.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from streamact.data.datasets import AnnotationError, discover_splits
from streamact.data.records import VideoRecord
from streamact.io.errors import VideoError
from streamact.io.video import VideoReader, open_video

__all__ = ["check_dataset", "check_path"]


def check_dataset(records: Sequence[VideoRecord], *, progress: bool = True) -> dict:
    """Decode every frame of every record and collect the failures.

    A video is unreadable when it cannot be opened or decoded, when a video file decodes to fewer frames than
    its index lists (truncated data), or when it is shorter than its annotated [start, end) window. A
    rawframe list's frame count that differs from the folder's is reported as a mismatch, not a failure (the
    folder's frames are what gets used).

    Args:
        records: the videos to check (duplicate paths are checked once).
        progress: show a progress bar.

    Returns:
        A JSON-serialisable dict: `num_videos`, `num_ok`, `num_bad`, `num_frames` (decoded, over readable
        videos), `bad` (list of {"path", "reason"}) and `mismatched` (list of {"path", "expected", "found"}).
    """
    unique = list({str(r.path): r for r in records}.values())
    bad: list[dict] = []
    mismatched: list[dict] = []
    total_frames = 0
    for record in tqdm(unique, desc="checking videos", unit="video", disable=not progress):
        try:
            with open_video(record.path) as reader:
                decoded = sum(1 for _ in reader.iter_frames())
                if isinstance(reader, VideoReader) and decoded < reader.num_frames:
                    raise VideoError(f"{record.path}: decoded {decoded} of {reader.num_frames} frames (truncated?)")
            if decoded <= record.start:
                raise VideoError(f"{record.path}: {decoded} frames, but the annotation starts at frame {record.start}")
        except VideoError as e:
            bad.append({"path": str(record.path), "reason": str(e)})
            continue
        if record.num_frames is not None and record.num_frames != decoded:
            mismatched.append({"path": str(record.path), "expected": record.num_frames, "found": decoded})
        total_frames += decoded
    return {
        "num_videos": len(unique),
        "num_ok": len(unique) - len(bad),
        "num_bad": len(bad),
        "num_frames": total_frames,
        "bad": bad,
        "mismatched": mismatched,
    }


def check_path(path: str | Path, *, progress: bool = True) -> dict:
    """Recognise the dataset at `path` (annotation file, dataset folder or folder of videos) and check it.

    Args:
        path: what `streamact data check` was given.
        progress: show a progress bar.

    Returns:
        The `check_dataset` report plus `format`, `splits` ({split name: number of good records}), `bad_lines`
        (list of {"path", "line", "reason"}: every annotation line, or whole file, that does not parse; the videos
        of the other lines are still checked) and `num_bad_lines`.

    Raises:
        DatasetNotFoundError: nothing exists at `path`.
        DatasetError: an annotation file without its companion files (class list, split files).
    """
    specs = discover_splits(path)
    records: list[VideoRecord] = []
    splits: dict[str, int] = {}
    bad_lines: list[dict] = []
    for spec in specs:
        try:
            split_records, _ = spec.build()
        except AnnotationError as e:
            bad_lines += [{"path": str(error.path), "line": error.line, "reason": error.reason} for error in e.errors]
            split_records = e.records or []  # None: the file (or its class list) as a whole is unusable
        records += split_records
        splits[spec.split] = splits.get(spec.split, 0) + len(split_records)
    report = check_dataset(records, progress=progress)
    return {"format": specs[0].format, "splits": splits, "bad_lines": bad_lines, "num_bad_lines": len(bad_lines),
            **report}
