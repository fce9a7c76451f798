"""Annotation parsers, one per dataset format, all producing `(list[VideoRecord], class_names)`.

`build_records(format, **paths)` calls a parser by format name, or loads a named split of a dataset folder
(`build_records("jester", root=..., split="val")`, what training configs use). `discover_splits(path)` recognises
a dataset folder or an annotation file by the files present and returns one `DatasetSpec` per split, ready to
build; `detect_format(path)` names the format. `streamact data check LIST_OR_DIR` is built on these.

Recognised layouts (a directory, or any one of its annotation files)::

    ssv2        *labels.json + train/validation/test .json, videos <id>.webm
    ucf101      classInd.txt (in the folder or a subfolder such as ucfTrainTestlist/) + trainlist0N/testlist0N.txt
    kinetics    CSVs whose header has youtube_id (label,youtube_id,time_start,time_end,split)
    jester      *labels.csv + ';'-separated split CSVs (train, validation / val, test), frame folders or <id>.mp4
    ipn         classIdx.txt + Annot_*List.txt (IPN Hand streams: video,label,id,t_start,t_end,frames), frame folders
                <video>/<video>_000001.jpg or <video>.mp4
    thumos      per-class temporal annotations <class>_<split>.txt ("video start_s end_s"), videos <video>.mp4
    rawframes   a list file of "frame_dir num_frames [label]" lines
    videolist   a list file of "path [label]" lines
    folder      a directory with none of the above: every video file and frame folder in it

Video locations are found by looking for the first annotated video in the annotation folder and its immediate
subfolders (e.g. Jester's 20bn-jester-v1/, UCF's UCF-101/, the synthetic set's videos/).
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from streamact.data.datasets.common import (
    AnnotationError,
    DatasetError,
    DatasetNotFoundError,
    iter_json_items,
    read_lines,
    resolve_video,
)
from streamact.data.datasets.ipn import parse_ipn
from streamact.data.datasets.jester import parse_jester
from streamact.data.datasets.kinetics import parse_kinetics
from streamact.data.datasets.ssv2 import parse_ssv2
from streamact.data.datasets.thumos import THUMOS_FILE, parse_thumos
from streamact.data.datasets.ucf101 import parse_ucf101
from streamact.data.datasets.videolist import parse_rawframe_list, parse_video_list, scan_video_folder
from streamact.data.records import VideoRecord

__all__ = [
    "AnnotationError",
    "DatasetError",
    "DatasetNotFoundError",
    "DatasetSpec",
    "FORMATS",
    "build_records",
    "detect_format",
    "discover_splits",
    "load_split",
    "parse_ipn",
    "parse_jester",
    "parse_kinetics",
    "parse_rawframe_list",
    "parse_ssv2",
    "parse_thumos",
    "parse_ucf101",
    "parse_video_list",
    "scan_video_folder",
]

FORMATS: dict[str, Callable[..., tuple[list[VideoRecord], list[str]]]] = {
    "jester": parse_jester,
    "ssv2": parse_ssv2,
    "kinetics": parse_kinetics,
    "ucf101": parse_ucf101,
    "ipn": parse_ipn,
    "thumos": parse_thumos,
    "videolist": parse_video_list,
    "rawframes": parse_rawframe_list,
    "folder": scan_video_folder,
}

SPLIT_ORDER = ("train", "val", "validation", "test")
# The parser argument naming a split's annotation file, per format ("root" for a plain folder).
ANNOTATION_KEYS = ("annotation_csv", "annotation_json", "split_file", "annotation_list", "annotation_files", "list_file",
                   "root")


def build_records(format: str, **paths) -> tuple[list[VideoRecord], list[str]]:
    """Parse a dataset split with the parser registered for `format` (see `FORMATS`).

    Two call forms:

    - the parser's own arguments, e.g. `build_records("jester", annotation_csv=..., labels_csv=...,
      frames_root=...)`;
    - `build_records(format, root=DATASET_DIR, split=NAME)`: the split is found by `load_split`.

    Args:
        format: one of the `FORMATS` keys.
        **paths: the parser's arguments, or `root` and `split`.

    Returns:
        (records, class_names).

    Raises:
        DatasetError: unknown format, or (second form) a folder of another format or without that split.
        AnnotationError: the annotation files do not parse.
    """
    if format not in FORMATS:
        raise DatasetError(f"unknown dataset format {format!r}; known: {', '.join(FORMATS)}")
    if "split" in paths:
        return load_split(format=format, **paths)
    return FORMATS[format](**paths)


def load_split(root: str | Path, split: str, *, format: str | None = None) -> tuple[list[VideoRecord], list[str]]:
    """Load one split of the dataset folder `root` by name.

    The name matches a split as `discover_splits` names it ("train", "validation", "test", "trainlist01", ...)
    or the stem of its annotation file; "val" and "validation" are interchangeable. Kinetics splits take the
    training split's class list, so indices agree across splits.

    Args:
        root: the dataset folder.
        split: the split name.
        format: the expected format; None accepts whatever is found.

    Returns:
        (records, class_names).

    Raises:
        DatasetError: the folder holds another format, or no such split.
    """
    specs = discover_splits(root)
    if format is not None and specs[0].format != format:
        raise DatasetError(f"{root}: holds a {specs[0].format} dataset, not {format}; set --data.format="
                           f"{specs[0].format}")
    matching = [s for s in specs if _is_split(s, split)]
    if not matching:
        raise DatasetError(f"{root}: no split {split!r}; found {', '.join(s.split for s in specs)}")
    spec = matching[0]
    train = next((s for s in specs if s.split == "train"), None)
    if spec.format == "kinetics" and train is not None and train is not spec:
        _, class_names = train.build()
        return build_records(spec.format, **spec.paths, class_names=class_names)
    return spec.build()


@dataclass
class DatasetSpec:
    """One split of a recognised dataset.

    Attributes:
        format: a `FORMATS` key.
        split: split name taken from the annotation file ("train", "test", ...; "all" for a plain folder).
        paths: keyword arguments for the parser.
    """

    format: str
    split: str
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def annotation(self) -> Path:
        """The split's annotation file (the folder itself for the 'folder' format)."""
        found = next(self.paths[k] for k in ANNOTATION_KEYS if k in self.paths)
        return found[0] if isinstance(found, list) else found  # THUMOS: one file per class

    def build(self) -> tuple[list[VideoRecord], list[str]]:
        """Parse this split."""
        return build_records(self.format, **self.paths)


def detect_format(path: str | Path) -> str:
    """Name the format of a dataset folder or annotation file (see the module docstring)."""
    return discover_splits(path)[0].format


def discover_splits(path: str | Path) -> list[DatasetSpec]:
    """Recognise the dataset at `path` and return one spec per split.

    Args:
        path: a dataset folder, an annotation file, or a folder of videos.

    Returns:
        Specs in split order (train, validation, test, then others).

    Raises:
        DatasetNotFoundError: nothing exists at `path`.
        DatasetError: an annotation file whose companion files (class list, split files) cannot be found.
    """
    path = Path(path)
    if path.is_dir():
        for finder in (_ssv2_splits, _ucf101_splits, _ipn_splits, _thumos_splits, _csv_splits):
            specs = finder(path)
            if specs:
                return _sorted(specs)
        return [DatasetSpec("folder", "all", {"root": path})]
    if not path.is_file():
        raise DatasetNotFoundError(f"{path}: no such file or directory; give a dataset folder or one of its "
                                   "annotation files (e.g. the folder `streamact data synth gestures --out` wrote)")
    specs = _file_splits(path)
    if not specs:
        raise DatasetError(f"{path}: a class list without split files next to it")
    return specs


def _file_splits(path: Path) -> list[DatasetSpec]:
    folder = path.parent
    name = path.name.lower()
    if path.suffix.lower() == ".json":
        specs = _ssv2_splits(folder)
        if "labels" in name:
            return _sorted(specs)
        matching = [s for s in specs if s.paths["annotation_json"] == path]
        if not matching:
            raise DatasetError(f"{path}: a JSON annotation file needs a *labels.json class file next to it")
        return matching
    if name == "classidx.txt" or name.startswith("annot_"):
        specs = _ipn_splits(folder)
        if not specs:
            raise DatasetError(f"{path}: IPN Hand annotations need classIdx.txt and Annot_*List.txt side by side")
        return _sorted(specs) if name == "classidx.txt" else [s for s in specs if s.paths["annotation_list"] == path]
    if THUMOS_FILE.match(path.name) and _thumos_splits(folder):
        return [s for s in _thumos_splits(folder) if path in s.paths["annotation_files"]]
    if name == "classind.txt":
        return _sorted(_ucf101_splits(folder))
    if name.startswith(("trainlist", "testlist")):
        matching = [s for s in _ucf101_splits(folder) if s.paths["split_file"] == path]
        if not matching:
            raise DatasetError(f"{path}: a UCF-101 split list needs classInd.txt next to it")
        return matching
    if path.suffix.lower() == ".csv":
        if _is_kinetics_csv(path):
            return [_kinetics_spec(path)]
        specs = _jester_splits(folder)
        if "labels" in name:
            return _sorted(specs)
        matching = [s for s in specs if s.paths["annotation_csv"] == path]
        if not matching:
            raise DatasetError(f"{path}: a Jester split file needs a *labels.csv class file next to it")
        return matching
    return _list_splits(path)


def _ssv2_splits(folder: Path) -> list[DatasetSpec]:
    labels = sorted(folder.glob("*labels.json"))
    if not labels:
        return []
    annotations = [f for f in sorted(folder.glob("*.json")) if f != labels[0]]
    ids = []
    for annotation in annotations:
        first = next(iter_json_items(annotation), None)
        if first is not None and isinstance(first[2], dict) and first[2].get("id"):
            ids.append(str(first[2]["id"]))
    root = _locate(folder, lambda c: any(resolve_video(c, video_id).exists() for video_id in ids))
    return [
        DatasetSpec("ssv2", _split_name(f), {"annotation_json": f, "labels_json": labels[0], "videos_root": root})
        for f in annotations
    ]


def _ucf101_splits(folder: Path) -> list[DatasetSpec]:
    class_ind = next(iter(sorted(folder.glob("classInd.txt")) + sorted(folder.glob("*/classInd.txt"))), None)
    if class_ind is None:
        return []
    split_files = sorted(class_ind.parent.glob("*list0*.txt"))
    # All splits share one video folder: find it from the first video of any split.
    firsts = [next(read_lines(f), (0, ""))[1].split()[:1] for f in split_files]
    relatives = [first[0] for first in firsts if first]
    root = _locate(class_ind.parent, lambda c: any((c / relative).exists() for relative in relatives))
    return [
        DatasetSpec("ucf101", f.stem, {"split_file": f, "class_ind": class_ind, "videos_root": root})
        for f in split_files
    ]


def _ipn_splits(folder: Path) -> list[DatasetSpec]:
    class_idx = folder / "classIdx.txt"
    lists = sorted(folder.glob("Annot_*List.txt"))
    if not class_idx.is_file() or not lists:
        return []
    firsts = []
    for f in lists:
        rows = [text.split(",")[0].strip() for _, text in read_lines(f)][:2]
        firsts += [r for r in rows if r and r != "video"][:1]
    root = _locate(folder, lambda c: any(resolve_video(c, video).exists() for video in firsts))
    return [DatasetSpec("ipn", _split_name(f), {"annotation_list": f, "class_idx": class_idx, "videos_root": root})
            for f in lists]


def _thumos_splits(folder: Path) -> list[DatasetSpec]:
    by_split: dict[str, list[Path]] = {}
    for f in sorted(folder.glob("*_*.txt")):
        match = THUMOS_FILE.match(f.name)
        if match and _is_thumos_file(f):
            by_split.setdefault(match.group(2), []).append(f)
    if not by_split:
        return []
    firsts = [next(read_lines(files[0]), (0, ""))[1].split()[:1] for files in by_split.values()]
    names = [first[0] for first in firsts if first]
    root = _locate(folder, lambda c: any(resolve_video(c, name).exists() for name in names))
    return [DatasetSpec("thumos", split, {"annotation_files": files, "videos_root": root})
            for split, files in by_split.items()]


def _is_thumos_file(path: Path) -> bool:
    """The first line reads "video start_s end_s" with two numbers."""
    fields = next(read_lines(path), (0, ""))[1].split()
    try:
        return len(fields) == 3 and all(float(f) >= 0 for f in fields[1:])
    except ValueError:
        return False


def _csv_splits(folder: Path) -> list[DatasetSpec]:
    kinetics = [_kinetics_spec(p) for p in sorted(folder.glob("*.csv")) if _is_kinetics_csv(p)]
    return kinetics or _jester_splits(folder)


def _jester_splits(folder: Path) -> list[DatasetSpec]:
    labels = sorted(folder.glob("*labels.csv"))
    if not labels:
        return []
    annotations = [f for f in sorted(folder.glob("*.csv")) if f != labels[0] and not _is_kinetics_csv(f)]
    ids = [next(read_lines(f), (0, ""))[1].split(";")[0].strip() for f in annotations]
    ids = [video_id for video_id in ids if video_id]
    root = _locate(folder, lambda c: any(resolve_video(c, video_id).exists() for video_id in ids))
    return [
        DatasetSpec("jester", _split_name(f), {"annotation_csv": f, "labels_csv": labels[0], "frames_root": root})
        for f in annotations
    ]


def _kinetics_spec(annotation: Path) -> DatasetSpec:
    with open(annotation, newline="", encoding="utf-8-sig") as f:
        rows = csv.DictReader(f)
        first = next(rows, None) or {}

    def has_first_clip(candidate: Path) -> bool:
        try:
            stem = f"{first['youtube_id']}_{int(first['time_start']):06d}_{int(first['time_end']):06d}"
        except (KeyError, TypeError, ValueError):
            return False
        label = first.get("label")
        folders = [candidate] if label is None else [candidate / label, candidate / label.replace(" ", "_")]
        return any(resolve_video(f, stem).exists() for f in folders)

    root = _locate(annotation.parent, has_first_clip)
    return DatasetSpec("kinetics", _split_name(annotation), {"annotation_csv": annotation, "videos_root": root})


def _list_splits(path: Path) -> list[DatasetSpec]:
    first = next(read_lines(path), (0, ""))[1].split()
    root = _locate(path.parent, lambda c: bool(first) and (c / first[0]).exists())
    # "dir num_frames label" is a rawframe list; anything else is read as "path [label]" (paths may be folders).
    format = "rawframes" if len(first) == 3 and first[1].isdigit() else "videolist"
    return [DatasetSpec(format, _split_name(path), {"list_file": path, "root": root})]


def _is_kinetics_csv(path: Path) -> bool:
    first = next(read_lines(path), (0, ""))[1]
    return "youtube_id" in [h.strip() for h in first.split(",")]


def _locate(folder: Path, has_video: Callable[[Path], bool]) -> Path:
    """Where the videos live: the first folder for which `has_video` holds.

    Tries `folder`, its subfolders, its parent and the parent's subfolders (so annotations/ next to videos/ is
    found); `folder` when none holds.
    """
    for base in dict.fromkeys((folder, folder.parent)):
        if has_video(base):
            return base
        for sub in sorted(p for p in base.iterdir() if p.is_dir()):
            if has_video(sub):
                return sub
    return folder


def _is_split(spec: DatasetSpec, name: str) -> bool:
    name = name.lower()
    aliases = {"val", "validation"}
    return name in (spec.split, spec.annotation.stem.lower()) or (name in aliases and spec.split in aliases)


def _split_name(path: Path) -> str:
    stem = path.stem.lower()
    return next((s for s in ("validation", "train", "test", "val") if s in stem), path.stem)


def _sorted(specs: list[DatasetSpec]) -> list[DatasetSpec]:
    def key(spec: DatasetSpec) -> tuple[int, str]:
        order = SPLIT_ORDER.index(spec.split) if spec.split in SPLIT_ORDER else len(SPLIT_ORDER)
        return order, str(spec.annotation)

    return sorted(specs, key=key)
