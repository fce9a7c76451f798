"""Generic lists: `path label` video lists, MMAction-style `dir num_frames label` rawframe lists, and plain
folders of videos / frame folders (for `streamact data check`).

Video list::

    class_a/clip001.mp4 0          label as an integer index
    class_a/clip002.mp4 swing      or as a class name, when a class list is given
    unlabelled/clip003.mp4         no label (-1)

Rawframe list (MMAction2 `RawframeDataset`)::

    frames/clip001 120 0           frame folder, frame count, label

Paths are relative to `root` (by default the list's folder); absolute paths are kept. In video lists the label
is split off from the right, so paths may contain spaces; rawframe lists are whitespace-separated, as in
MMAction2.
"""
from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from streamact.data.datasets.common import AnnotationError, BadLines, class_index_map, load_class_list, read_lines
from streamact.data.records import VideoRecord
from streamact.io.video import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS

__all__ = ["parse_video_list", "parse_rawframe_list", "scan_video_folder"]


def parse_video_list(
    list_file: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | str | Path | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Parse a `path [label]` video list.

    Args:
        list_file: the list.
        root: folder the paths are relative to; default the list's folder.
        class_names: class names in index order, or a file with one per line. Labels may then be names or
            indices; without it they must be integer indices.

    Returns:
        (records, class_names); without a class list the names are "0" .. str(max label).

    Raises:
        AnnotationError: a label is neither a known class name nor a valid index.
    """
    root = Path(list_file).parent if root is None else Path(root)
    names = _class_list(class_names)
    mapping = class_index_map(names) if names is not None else None
    records = []
    bad = BadLines(list_file)
    for line, text in read_lines(list_file):
        with bad.catch():
            fields = text.rsplit(maxsplit=1)
            label = _label(fields[1], mapping, list_file, line) if len(fields) == 2 else -1
            records.append(VideoRecord(path=root / fields[0], label=label, meta={"id": Path(fields[0]).stem}))
    class_names = _names_or_indices(names, records)
    bad.check(records, class_names)
    return records, class_names


def parse_rawframe_list(
    list_file: str | Path,
    root: str | Path | None = None,
    class_names: Sequence[str] | str | Path | None = None,
) -> tuple[list[VideoRecord], list[str]]:
    """Parse an MMAction-style rawframe list: `frame_dir num_frames [label]` per line.

    Args:
        list_file: the list.
        root: folder the frame folders are relative to; default the list's folder.
        class_names: as in `parse_video_list`.

    Returns:
        (records, class_names); records carry the listed `num_frames`.

    Raises:
        AnnotationError: a line without a frame count, a count that is not a positive integer, or a bad label.
    """
    root = Path(list_file).parent if root is None else Path(root)
    names = _class_list(class_names)
    mapping = class_index_map(names) if names is not None else None
    records = []
    bad = BadLines(list_file)
    for line, text in read_lines(list_file):
        with bad.catch():
            fields = text.split()
            if len(fields) not in (2, 3) or not fields[1].isdigit() or int(fields[1]) < 1:
                raise AnnotationError(list_file, line, f"expected 'frame_dir num_frames [label]', got {text!r}")
            label = _label(fields[2], mapping, list_file, line) if len(fields) == 3 else -1
            meta = {"id": Path(fields[0]).name}
            records.append(VideoRecord(path=root / fields[0], label=label, num_frames=int(fields[1]), meta=meta))
    class_names = _names_or_indices(names, records)
    bad.check(records, class_names)
    return records, class_names


def scan_video_folder(root: str | Path) -> tuple[list[VideoRecord], list[str]]:
    """List every video file and frame folder under `root` (recursively), unlabelled.

    A folder that directly contains frame images is one video and is not searched further.

    Returns:
        (records sorted by path, []).
    """
    records = []
    for folder, subfolders, files in os.walk(root):
        if any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in files):
            records.append(VideoRecord(path=Path(folder), label=-1))
            subfolders.clear()
            continue
        records += [VideoRecord(path=Path(folder) / f, label=-1) for f in files
                    if Path(f).suffix.lower() in VIDEO_EXTENSIONS]
        subfolders.sort()
    records.sort(key=lambda r: str(r.path))
    return records, []


def _class_list(class_names: Sequence[str] | str | Path | None) -> list[str] | None:
    if class_names is None:
        return None
    if isinstance(class_names, (str, Path)):
        return load_class_list(class_names)
    return list(class_names)


def _label(token: str, mapping: dict[str, int] | None, path: str | Path, line: int) -> int:
    """A label given as a class name (when a class list is known) or as an integer index."""
    if mapping is not None and token in mapping:
        return mapping[token]
    if token.lstrip("-").isdigit():
        label = int(token)
        # -1 is the usual "unlabelled" marker of test lists.
        if label < -1 or (mapping is not None and label >= len(mapping)):
            bound = f"0..{len(mapping) - 1}" if mapping is not None else ">= 0"
            raise AnnotationError(path, line, f"label {label} is outside {bound} (or -1 for unlabelled)")
        return label
    if mapping is None:
        raise AnnotationError(path, line, f"label {token!r} is not an integer index (give a class list for names)")
    raise AnnotationError(path, line, f"unknown class name {token!r} ({len(mapping)} known classes)")


def _names_or_indices(names: list[str] | None, records: list[VideoRecord]) -> list[str]:
    if names is not None:
        return names
    return [str(i) for i in range(max((r.label for r in records), default=-1) + 1)]
