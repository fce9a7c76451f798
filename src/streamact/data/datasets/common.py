"""Helpers shared by the annotation parsers: the error type, line and JSON readers, label lookup."""
from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from streamact.data.records import VideoRecord
from streamact.errors import UserError
from streamact.io.errors import VideoError
from streamact.io.video import VIDEO_EXTENSIONS, open_video

logger = logging.getLogger(__name__)

__all__ = [
    "DatasetError",
    "DatasetNotFoundError",
    "AnnotationError",
    "BadLines",
    "read_lines",
    "iter_json_items",
    "label_index",
    "load_class_list",
    "resolve_video",
    "class_index_map",
    "Segment",
    "build_stream_records",
]


class DatasetError(UserError, ValueError):
    """A dataset folder, split or annotation file that cannot be used as given; the message says what to do."""


class DatasetNotFoundError(DatasetError, FileNotFoundError):
    """Nothing exists at the dataset path given."""


class AnnotationError(DatasetError):
    """An annotation file cannot be parsed; the message names the file and, where it applies, the line.

    A parser that meets bad lines reads on and raises one `AnnotationError` for the file at the end (see
    `BadLines`): its message is the first bad line's, and it carries them all, with what the good lines gave.

    Attributes:
        path: the annotation file.
        line: 1-based line of the (first) problem, or None for the file as a whole.
        reason: the problem, without the location.
        errors: every bad line of the file, in order (just this error when it is about one line or the file).
        records: the records of the good lines when the parser read on past bad ones, else None.
        class_names: the class list that goes with `records`, else None.
    """

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        self.errors: list[AnnotationError] = [self]
        self.records: list | None = None
        self.class_names: list[str] | None = None
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


class BadLines:
    """Collects the bad lines of an annotation file (or of the files of one split), so that a single pass reports
    every one of them.

    Wrap the handling of each line in `catch()` (or `add()` errors found later, such as overlapping segments);
    after the loop, `check()` raises one `AnnotationError` for all of them (or nothing when every line was good)::

        bad = BadLines(path)
        for line, text in read_lines(path):
            with bad.catch():
                records.append(parse(line, text))  # raises AnnotationError
        bad.check(records, class_names)

    Args:
        path: the annotation file, or the folder of a split's files (what `streamact data check` is pointed at).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.errors: list[AnnotationError] = []

    @contextlib.contextmanager
    def catch(self) -> Iterator[None]:
        """Record an `AnnotationError` raised inside the block, and carry on."""
        try:
            yield
        except AnnotationError as e:
            self.add(e)

    def add(self, error: AnnotationError) -> None:
        """Record a bad line."""
        self.errors.append(error)

    def check(self, records: list, class_names: Sequence[str]) -> None:
        """Raise the collected errors as one `AnnotationError` holding them all and the good lines' records.

        Raises:
            AnnotationError: at least one line was bad. Its message is the first bad line's, plus how many more
                there are and how to list them (`streamact data check`).
        """
        if not self.errors:
            return
        errors = sorted(self.errors, key=lambda e: (str(e.path), e.line or 0))
        first, more = errors[0], len(errors) - 1
        reason = first.reason
        if more:
            where = "in this file" if all(e.path == first.path for e in errors) else "in these annotations"
            reason += (f" (and {more} more bad line{'s' * (more > 1)} {where}; `streamact data check "
                       f"{self.path}` lists them all)")
        error = AnnotationError(first.path, first.line, reason)
        error.errors, error.records, error.class_names = errors, list(records), list(class_names)
        raise error


def read_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Yield (1-based line number, stripped text) for every non-blank line.

    Handles a UTF-8 byte-order mark and Windows (CRLF) line endings.
    """
    with open(path, encoding="utf-8-sig") as f:
        for number, line in enumerate(f, start=1):
            text = line.strip()
            if text:
                yield number, text


def iter_json_items(path: str | Path) -> Iterator[tuple[int, str | None, object]]:
    """Yield (line number, key, value) for each item of a top-level JSON array or object.

    `key` is None for array items. Line numbers let errors point into large annotation files.

    Raises:
        AnnotationError: the file is not valid JSON, or its top level is neither an array nor an object.
    """
    text = Path(path).read_text(encoding="utf-8-sig")
    decoder = json.JSONDecoder()
    counted = [0, 1]  # (offset, line number at that offset): items come in order, so count newlines onwards

    def line_of(pos: int) -> int:
        offset, line = counted if pos >= counted[0] else (0, 1)
        counted[:] = [pos, line + text.count("\n", offset, pos)]
        return counted[1]

    def skip(pos: int) -> int:
        while pos < len(text) and text[pos] in " \t\r\n":
            pos += 1
        return pos

    def decode(pos: int) -> tuple[object, int]:
        try:
            return decoder.raw_decode(text, pos)
        except json.JSONDecodeError as e:
            raise AnnotationError(path, e.lineno, f"invalid JSON: {e.msg}") from e

    def expect(pos: int, chars: str) -> int:
        pos = skip(pos)
        if pos >= len(text) or text[pos] not in chars:
            found = repr(text[pos]) if pos < len(text) else "end of file"
            raise AnnotationError(path, line_of(pos), f"invalid JSON: expected {chars!r}, found {found}")
        return pos

    pos = skip(0)
    if pos >= len(text) or text[pos] not in "[{":
        raise AnnotationError(path, 1, "expected a JSON array or object")
    is_object = text[pos] == "{"
    closing = "}" if is_object else "]"
    pos = skip(pos + 1)
    if pos < len(text) and text[pos] == closing:
        return
    while True:
        pos = skip(pos)
        line = line_of(pos)
        key = None
        if is_object:
            key, pos = decode(pos)
            if not isinstance(key, str):
                raise AnnotationError(path, line, "invalid JSON: object keys must be strings")
            pos = expect(pos, ":") + 1
        value, pos = decode(skip(pos))
        yield line, key, value
        pos = expect(pos, "," + closing)
        if text[pos] == closing:
            return
        pos += 1


def label_index(name: str, class_to_idx: dict[str, int], path: str | Path, line: int | None) -> int:
    """Index of class `name`, or an `AnnotationError` naming the unknown class, file and line."""
    try:
        return class_to_idx[name]
    except KeyError:
        raise AnnotationError(path, line, f"unknown class name {name!r} ({len(class_to_idx)} known classes)") from None


def load_class_list(path: str | Path) -> list[str]:
    """Class names, one per line, in index order.

    Raises:
        AnnotationError: a name appears twice, or the file is empty.
    """
    names: list[str] = []
    seen: dict[str, int] = {}
    for line, name in read_lines(path):
        if name in seen:
            raise AnnotationError(path, line, f"class {name!r} already listed on line {seen[name]}")
        seen[name] = line
        names.append(name)
    if not names:
        raise AnnotationError(path, None, "no class names")
    return names


def resolve_video(root: Path, name: str) -> Path:
    """Where video `name` lives under `root`: a frame folder `root/name`, else `root/name.<ext>`.

    Falls back to the folder path when nothing exists, so a missing video is reported (and skipped) when the
    dataset reads it rather than failing the whole parse.
    """
    folder = root / name
    if folder.is_dir():
        return folder
    for ext in VIDEO_EXTENSIONS:
        candidate = root / f"{name}{ext}"
        if candidate.is_file():
            return candidate
    return folder


def class_index_map(names: Sequence[str]) -> dict[str, int]:
    """Map class names to their indices.

    Raises:
        ValueError: a name appears twice.
    """
    mapping: dict[str, int] = {}
    for i, name in enumerate(names):
        if name in mapping:
            raise ValueError(f"class name {name!r} appears twice in the class list")
        mapping[name] = i
    return mapping


@dataclass(frozen=True)
class Segment:
    """One annotated segment of a stream, and where it was read (for error messages).

    Attributes:
        start: first frame, 0-based (or start time in seconds, see `build_stream_records`).
        end: one past the last frame (or end time in seconds).
        label: class index.
        path: annotation file.
        line: line in that file.
    """

    start: float
    end: float
    label: int
    path: Path
    line: int


def build_stream_records(
    segments: dict[str, list[Segment]],
    videos_root: Path,
    *,
    background: int,
    bad: BadLines,
    missing_frames: Callable[[Path, str, int], int] | None = None,
    seconds: bool = False,
) -> list[VideoRecord]:
    """Stream records (see `streamact.data.records`) from each video's annotated segments.

    A video that does not exist, or whose frame folder lacks annotated frames, is skipped and counted (one
    warning for all); the stream's length is the video's frame count. A video with segments that overlap or run
    past its end gives no record: every such segment is added to `bad`, naming its line.

    Args:
        segments: annotated segments per video name, in any order.
        videos_root: where `resolve_video` finds each video.
        background: class of frames no segment covers.
        bad: collects the bad lines (the caller raises them together with its own, `BadLines.check`).
        missing_frames: for frame folders, ``(folder, video name, last annotated frame) -> number of annotated frames
            absent``; None counts nothing missing.
        seconds: segment times are in seconds (THUMOS), converted to frames at the video's frame rate.

    Returns:
        One record per readable video with consistent segments, in order of first appearance.
    """
    records, skipped = [], []
    for name, rows in segments.items():
        rows = sorted(rows, key=lambda r: (r.start, r.end))
        overlaps = [AnnotationError(row.path, row.line, f"{name}: {_span(row, seconds)} overlaps "
                                    f"{_span(prev, seconds)} ({prev.path.name}:{prev.line}); segments of a video "
                                    "must not overlap") for prev, row in zip(rows, rows[1:]) if row.start < prev.end]
        for error in overlaps:
            bad.add(error)
        path = resolve_video(videos_root, name)
        last = max(rows, key=lambda r: r.end)
        if path.is_dir() and missing_frames is not None and missing_frames(path, name, int(last.end)):
            skipped.append(name)
            continue
        try:
            with open_video(path) as reader:
                num_frames, scale = reader.num_frames, reader.fps if seconds else 1
        except VideoError:
            skipped.append(name)
            continue
        too_long = [row for row in rows if row.end * scale > num_frames + 0.5]  # half a frame of slack for rounding
        for row in too_long:
            where = f"{row.end:g} s" if seconds else f"frame {row.end:g}"
            bad.add(AnnotationError(row.path, row.line, f"{name}: segment ends at {where} but the video has "
                                    f"{num_frames} frames; fix the annotation or the video"))
        if overlaps or too_long:
            continue
        frames = [[round(r.start * scale), min(round(r.end * scale), num_frames), r.label] for r in rows]
        records.append(VideoRecord(path=path, label=-1, num_frames=num_frames, meta={
            "id": name, "background": background, "segments": [f for f in frames if f[1] > f[0]]}))
    if skipped:
        logger.warning("%s: skipped %d of %d videos that are missing or lack annotated frames: %s", videos_root,
                       len(skipped), len(segments), ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else ""))
    return records


def _span(row: Segment, seconds: bool) -> str:
    """A segment as the annotation gives it: times in seconds, or 1-based inclusive frames."""
    return f"{row.start:g}-{row.end:g} s" if seconds else f"frames {row.start + 1:g}-{row.end:g}"
