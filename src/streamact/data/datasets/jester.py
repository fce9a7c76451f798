"""20BN-Jester v1: `;`-separated CSVs and one frame folder per video.

Files::

    jester-v1-labels.csv        one class name per line, in index order ("Swiping Left")
    jester-v1-train.csv         "<id>;<class name>" per line (also -validation.csv)
    jester-v1-test.csv          "<id>" per line (unlabelled)
    20bn-jester-v1/<id>/00001.jpg ...

A video may also be a file `<frames_root>/<id>.mp4` (or another video extension) instead of a folder; the
synthetic gesture generator writes Jester-format splits over mp4 files.
"""
from __future__ import annotations

from pathlib import Path

from streamact.data.datasets.common import (
    AnnotationError,
    BadLines,
    label_index,
    load_class_list,
    read_lines,
    resolve_video,
)
from streamact.data.records import VideoRecord

__all__ = ["parse_jester"]


def parse_jester(
    annotation_csv: str | Path, labels_csv: str | Path, frames_root: str | Path
) -> tuple[list[VideoRecord], list[str]]:
    """Parse one Jester split.

    Args:
        annotation_csv: the split file (`id;label` lines, or `id` lines for the test split).
        labels_csv: the class list, one name per line.
        frames_root: folder holding `<id>/` frame folders (or `<id>.mp4` files).

    Returns:
        (records, class_names); unlabelled lines (`id` or `id;`) get label -1.

    Raises:
        AnnotationError: lines with more than two fields or an empty id, naming an unknown class, or without a
            label in a file whose other lines have one (a split is labelled, or unlabelled like Jester's test
            split, as a whole); one error for all of them, see `BadLines`.
    """
    class_names = load_class_list(labels_csv)
    class_to_idx = {name: i for i, name in enumerate(class_names)}
    frames_root = Path(frames_root)
    records, unlabelled = [], []  # unlabelled: (line, record)
    bad = BadLines(annotation_csv)
    for line, text in read_lines(annotation_csv):
        with bad.catch():
            fields = [f.strip() for f in text.split(";")]
            if len(fields) > 2 or not fields[0]:
                raise AnnotationError(annotation_csv, line, f"expected 'id;label' or 'id', got {text!r}")
            video_id = fields[0]
            name = fields[1] if len(fields) == 2 and fields[1] else None  # "id;" is unlabelled, like "id"
            label = label_index(name, class_to_idx, annotation_csv, line) if name is not None else -1
            meta = {"id": video_id, "label_name": name}
            records.append(VideoRecord(path=resolve_video(frames_root, video_id), label=label, meta=meta))
            if name is None:
                unlabelled.append((line, records[-1]))
    if len(unlabelled) < len(records):  # a labelled split: a line without a label is a mistake, not a test video
        for line, record in unlabelled:
            bad.errors.append(AnnotationError(annotation_csv, line, f"no label for {record.meta['id']!r} while the "
                                              "other lines have one; write 'id;label'"))
            records.remove(record)
    bad.check(records, class_names)
    return records, class_names
