"""Kinetics (400 / 600 / 700): a CSV per split and one clip per row in class folders.

Files::

    train.csv     label,youtube_id,time_start,time_end,split
                  abseiling,--07WQ2iBlw,1,11,train
    test.csv      same columns; the label column may be absent (unlabelled)
    <root>/abseiling/--07WQ2iBlw_000001_000011.mp4

Class folders are named by the label, or by the label with spaces replaced by underscores (both layouts are
common among download scripts); the file is `<youtube_id>_<time_start:06d>_<time_end:06d>.mp4`, or the same
stem with another video extension.
"""
from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, class_index_map, label_index, resolve_video
from streamact.data.records import VideoRecord

__all__ = ["parse_kinetics"]

REQUIRED_COLUMNS = ("youtube_id", "time_start", "time_end")


def parse_kinetics(
    annotation_csv: str | Path, videos_root: str | Path, class_names: Sequence[str] | None = None
) -> tuple[list[VideoRecord], list[str]]:
    """Parse one Kinetics split.

    Args:
        annotation_csv: the split CSV with a header row.
        videos_root: folder holding the class folders (or, for an unlabelled split, the clips themselves).
        class_names: the class list; by default the sorted labels of this CSV (the usual Kinetics order). Pass
            the training split's list when parsing validation so the indices agree.

    Returns:
        (records, class_names); rows without a label get label -1.

    Raises:
        AnnotationError: a required column is missing, a row has the wrong number of fields or non-integer
            times, or a label is not in `class_names`.
    """
    videos_root = Path(videos_root)
    with open(annotation_csv, newline="", encoding="utf-8-sig") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in header]
        if missing:
            raise AnnotationError(annotation_csv, 1, f"header lacks column(s) {', '.join(missing)}: {header}")
        rows = []
        bad = BadLines(annotation_csv)
        for row in reader:
            if not any(field.strip() for field in row):
                continue
            with bad.catch():
                if len(row) != len(header):
                    raise AnnotationError(annotation_csv, reader.line_num, f"expected {len(header)} fields, got {row}")
                rows.append((reader.line_num, dict(zip(header, (field.strip() for field in row)))))

    has_label = "label" in header
    if class_names is None:
        class_names = sorted({fields["label"] for _, fields in rows}) if has_label else []
    class_names = list(class_names)
    class_to_idx = class_index_map(class_names)

    folders: dict[str, Path] = {}
    records = []
    for line, fields in rows:
        with bad.catch():
            try:
                start, end = int(fields["time_start"]), int(fields["time_end"])
            except ValueError:
                raise AnnotationError(
                    annotation_csv, line, f"time_start / time_end must be integers, got {fields['time_start']!r}, "
                    f"{fields['time_end']!r}"
                ) from None
            name = fields["label"] if has_label else None
            if name is None:
                label, folder = -1, videos_root
            else:
                label = label_index(name, class_to_idx, annotation_csv, line)
                if name not in folders:
                    folders[name] = _class_folder(videos_root, name)
                folder = folders[name]
            stem = f"{fields['youtube_id']}_{start:06d}_{end:06d}"
            meta = {"id": fields["youtube_id"], "label_name": name, "time_start": start, "time_end": end,
                    "split": fields.get("split")}
            records.append(VideoRecord(path=_clip_path(folder, stem), label=label, meta=meta))
    bad.check(records, class_names)
    return records, class_names


def _class_folder(root: Path, name: str) -> Path:
    underscored = root / name.replace(" ", "_")
    return underscored if not (root / name).is_dir() and underscored.is_dir() else root / name


def _clip_path(folder: Path, stem: str) -> Path:
    path = resolve_video(folder, stem)
    # resolve_video falls back to a frame-folder path; a missing Kinetics clip is reported as the expected mp4.
    return path if path.exists() else folder / f"{stem}.mp4"
