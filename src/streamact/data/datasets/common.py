"""Helpers shared by the annotation parsers: the error type, line and JSON readers, label lookup."""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

from streamact.io.video import VIDEO_EXTENSIONS

__all__ = [
    "AnnotationError",
    "read_lines",
    "iter_json_items",
    "label_index",
    "load_class_list",
    "resolve_video",
    "class_index_map",
]


class AnnotationError(ValueError):
    """An annotation file cannot be parsed; the message names the file and, where it applies, the line."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {message}")


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
