"""Spatio-temporal action detection annotations in the UCF101v2-GT.pkl / JHMDB-GT.pkl layout.

The de-facto format of UCF101-24 (corrected "v2" annotations) and JHMDB-21, used by ACT, MOC-Detector and AMMA: one
pickle holding a dict ::

    labels         list of class names; index = label id
    nframes        {video: number of frames}
    resolution     {video: (height, width)}
    gttubes        {video: {label id: [tube, ...]}}, a tube an (n, 5) float array of rows
                   (frame, x1, y1, x2, y2): frame 1-based, corners in 0-based pixels of the original resolution
    train_videos   one list of video names per split (UCF-24: 1 split, JHMDB: 3)
    test_videos    same

Frames live below the dataset folder: UCF-24 ``rgb-images/<video>/00001.jpg``, JHMDB ``Frames/<video>/00001.png``.
The official files are Python-2 pickles (read with ``encoding='iso-8859-1'``); ours are ordinary pickles with two
optional extra keys, ``frame_pattern`` and ``motion_pairs`` (pairs of label ids that differ only by the direction of
their motion). Unknown keys are ignored.

A pickle can run code when loaded, so only the types an annotation file needs (containers, numbers, strings, numpy
arrays) are allowed.

Validation: `load_detection_annotations` checks structure and every tube (frames within 1..nframes and increasing,
x1 <= x2, y1 <= y2, boxes overlapping the frame) and every video (has a resolution, frame count and at least one
tube). Boxes that stick out of their frame are clipped to it and counted (`DetectionAnnotations.clipped_boxes`).
By default the first problem is raised as a one-line `UserError` naming video and frame; with ``on_error="skip"``
bad tubes and tube-less videos are dropped, and each problem is kept in `DetectionAnnotations.skipped`, so training
can go on and report how much it lost. `check_detection_annotations` lists every problem at once, including missing
frame files (`streamact data check` on a pickle).
"""
from __future__ import annotations

import pickle
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamact.errors import UserError

__all__ = [
    "DetectionAnnotations",
    "ANNOTATION_GLOB",
    "UCF_FRAME_PATTERN",
    "JHMDB_FRAME_PATTERN",
    "load_detection_annotations",
    "validate_detection_annotations",
    "save_detection_annotations",
    "check_detection_annotations",
    "read_frame",
]

ANNOTATION_GLOB = "*GT.pkl"  # the annotation file of a dataset folder: UCF101v2-GT.pkl, JHMDB-GT.pkl, ...
UCF_FRAME_PATTERN = "rgb-images/{video}/{frame:05d}.jpg"
JHMDB_FRAME_PATTERN = "Frames/{video}/{frame:05d}.png"

_REQUIRED_KEYS = ("labels", "nframes", "resolution", "gttubes", "train_videos", "test_videos")


@dataclass
class DetectionAnnotations:
    """A spatio-temporal detection dataset in the UCF101v2-GT.pkl / JHMDB-GT.pkl layout."""

    root: Path  # dataset folder (frames below it)
    labels: list[str]  # class names; index = label id
    nframes: dict[str, int]  # video -> number of frames
    resolution: dict[str, tuple[int, int]]  # video -> (h, w)
    # video -> {label id: [tube (n, 5) float32: frame (1-based), x1, y1, x2, y2]}
    gttubes: dict[str, dict[int, list[np.ndarray]]]
    train_videos: list[list[str]]  # per split
    test_videos: list[list[str]]  # per split
    frame_pattern: str = UCF_FRAME_PATTERN  # JHMDB: "Frames/{video}/{frame:05d}.png"
    motion_pairs: list[tuple[int, int]] = field(default_factory=list)  # label-id pairs told apart only by motion
    skipped: list[str] = field(default_factory=list)  # problems dropped by on_error="skip", one line each
    clipped_boxes: int = 0  # boxes partly outside their frame, clipped to it when loaded

    def frame_path(self, video: str, frame: int) -> Path:
        """Path of 1-based `frame` of `video`."""
        return self.root / self.frame_pattern.format(video=video, frame=frame)

    def videos(self, split: str = "train", index: int = 0) -> list[str]:
        """Video names of split `split` ("train" or "test") number `index` (0-based)."""
        lists = {"train": self.train_videos, "test": self.test_videos}.get(split)
        if lists is None:
            raise UserError(f"unknown detection split {split!r}; use 'train' or 'test'")
        if not 0 <= index < len(lists):
            raise UserError(f"split index {index} does not exist: this dataset has {len(lists)} {split} split(s)")
        return list(lists[index])

    def tubes(self, video: str) -> Iterator[tuple[int, np.ndarray]]:
        """(label id, tube) for every ground-truth tube of `video`."""
        for label, tubes in sorted(self.gttubes.get(video, {}).items()):
            for tube in tubes:
                yield label, tube


# --------------------------------------------------------------------------------------------------------------------
# Reading pickles safely.

_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("collections", "OrderedDict"),
    ("collections", "defaultdict"),
    ("__builtin__", "list"),
    ("builtins", "list"),
    ("copy_reg", "_reconstructor"),
    ("copyreg", "_reconstructor"),
    ("__builtin__", "object"),
    ("builtins", "object"),
}


class _AnnotationUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals an annotation pickle needs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"it references {module}.{name}, which an annotation file never needs")
        # Python 2 module names, and numpy < 2's (pickles name the module that wrote them).
        renamed = {"__builtin__": "builtins", "copy_reg": "copyreg"}
        if hasattr(np, "_core"):
            renamed["numpy.core.multiarray"] = "numpy._core.multiarray"
        return super().find_class(renamed.get(module, module), name)


def _read_pickle(path: Path) -> dict:
    try:
        with open(path, "rb") as f:
            # iso-8859-1 turns Python-2 byte strings (names, and numpy array buffers) back into what they were.
            data = _AnnotationUnpickler(f, encoding="iso-8859-1").load()
    except FileNotFoundError:
        raise UserError(f"{path}: annotation file not found") from None
    except IsADirectoryError:
        found = ", ".join(p.name for p in sorted(path.glob(ANNOTATION_GLOB))) or "no *-GT.pkl in it"
        raise UserError(f"{path}: a folder, not an annotation file; pass the pickle inside it ({found})") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError, ValueError) as e:
        raise UserError(f"{path}: not a readable detection annotation pickle ({e})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: expected a dict of {', '.join(_REQUIRED_KEYS)}, found {type(data).__name__}")
    missing = [k for k in _REQUIRED_KEYS if k not in data]
    if missing:
        raise UserError(f"{path}: missing key(s) {', '.join(missing)}; a detection pickle needs "
                        f"{', '.join(_REQUIRED_KEYS)}")
    return data


def _text(value: object) -> str:
    return value.decode("latin-1") if isinstance(value, bytes) else str(value)


# --------------------------------------------------------------------------------------------------------------------
# Validation: one function yields every problem; loading raises or skips, checking lists them all.


def _tube_problems(video: str, label: int, tube: np.ndarray, nframes: int, hw: tuple[int, int]) -> Iterator[str]:
    """One-line descriptions of what is wrong with one tube (nothing if it is fine)."""
    if tube.ndim != 2 or tube.shape[1] != 5 or len(tube) == 0:
        yield (f"video {video}: a tube of label {label} has shape {tube.shape}, expected (n, 5) rows of frame x1 y1 "
               "x2 y2")
        return
    h, w = hw
    for row in tube:
        frame, x1, y1, x2, y2 = (float(v) for v in row)
        where = f"video {video} frame {frame:g} (label {label})"
        if not (frame == int(frame) and 1 <= frame <= nframes):
            problem = f"{where}: frame outside 1..{nframes} (nframes of the video)"
        elif x2 < x1 or y2 < y1:
            problem = f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) has x2 < x1 or y2 < y1"
        elif not (np.isfinite(row).all() and x2 >= 0 and y2 >= 0 and x1 <= w and y1 <= h):
            problem = f"{where}: box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the {w}x{h} frame"
        else:
            continue
        yield problem
        return  # one problem per tube is enough to act on
    steps = np.diff(tube[:, 0])
    if np.any(steps <= 0):
        frame = tube[int(np.argmax(steps <= 0)) + 1, 0]
        yield f"video {video} frame {frame:g} (label {label}): tube frames are not strictly increasing"


def _clip_to_frame(ann: DetectionAnnotations, tube: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """`tube` with boxes that stick out of the (h, w) frame clipped to it, counted in ``ann.clipped_boxes``."""
    h, w = hw
    boxes = np.clip(tube[:, 1:5], 0, np.array([w, h, w, h], tube.dtype))
    changed = int(np.count_nonzero(np.any(boxes != tube[:, 1:5], axis=1)))
    if not changed:
        return tube
    ann.clipped_boxes += changed
    return np.concatenate([tube[:, :1], boxes], axis=1)


def _video_problems(ann: DetectionAnnotations, video: str) -> Iterator[str]:
    if video not in ann.nframes or video not in ann.resolution:
        yield f"video {video}: listed in a split but has no nframes / resolution entry"
        return
    if not any(len(tubes) for tubes in ann.gttubes.get(video, {}).values()):
        yield f"video {video}: no ground-truth tubes"


def _split_videos(ann: DetectionAnnotations) -> list[str]:
    seen: dict[str, None] = {}
    for lists in (ann.train_videos, ann.test_videos):
        for videos in lists:
            seen.update(dict.fromkeys(videos))
    return list(seen)


def load_detection_annotations(
    path: str | Path, *, root: str | Path | None = None, on_error: str = "raise"
) -> DetectionAnnotations:
    """Read a UCF101v2-GT.pkl / JHMDB-GT.pkl (Python-2 pickle, encoding='iso-8859-1') or our own pickle; validate.

    Args:
        path: the pickle.
        root: dataset folder holding the frames (default: the pickle's folder).
        on_error: "raise" (default) raises the first problem; "skip" drops bad tubes and videos without tubes
            (also from the splits) and records each problem in `skipped`.

    Returns:
        The annotations; tubes as float32 (n, 5) arrays, label ids as ints, resolution as (h, w) int tuples. The
        frame pattern is the pickle's own ``frame_pattern`` if it has one, JHMDB's if the file is named JHMDB-GT.pkl
        or ``root/Frames`` exists, else UCF-24's.

    Raises:
        UserError: the file is missing, not a detection pickle, or (with on_error="raise") a tube or video is
            invalid; the message names the video and frame.
    """
    path = Path(path)
    data = _read_pickle(path)
    root = Path(root) if root is not None else path.parent
    if "frame_pattern" in data:
        pattern = _text(data["frame_pattern"])
    elif path.name.upper().startswith("JHMDB") or (root / "Frames").is_dir():
        pattern = JHMDB_FRAME_PATTERN
    else:
        pattern = UCF_FRAME_PATTERN
    try:
        ann = DetectionAnnotations(
            root=root,
            labels=[_text(name) for name in data["labels"]],
            nframes={_text(v): int(n) for v, n in data["nframes"].items()},
            resolution={_text(v): (int(hw[0]), int(hw[1])) for v, hw in data["resolution"].items()},
            gttubes={
                _text(v): {int(label): [np.asarray(t, dtype=np.float32) for t in tubes]
                           for label, tubes in by_label.items()}
                for v, by_label in data["gttubes"].items()
            },
            train_videos=[[_text(v) for v in videos] for videos in data["train_videos"]],
            test_videos=[[_text(v) for v in videos] for videos in data["test_videos"]],
            frame_pattern=pattern,
            motion_pairs=[(int(a), int(b)) for a, b in data.get("motion_pairs", [])],
        )
    except (AttributeError, TypeError, ValueError, IndexError) as e:
        raise UserError(f"{path}: malformed detection annotations ({e}); see the layout in the README") from None

    return validate_detection_annotations(ann, on_error=on_error, source=path)


def validate_detection_annotations(
    ann: DetectionAnnotations, *, on_error: str = "raise", source: str | Path | None = None
) -> DetectionAnnotations:
    """Check every tube and every split video of `ann` (in place; see the module docstring).

    Args:
        ann: the annotations.
        on_error: "raise" the first problem, or "skip": drop bad tubes and videos without tubes (also from the
            splits) and record each problem in ``ann.skipped``.
        source: file named in error messages.

    Returns:
        `ann`.
    """
    if on_error not in ("raise", "skip"):
        raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    prefix = f"{source}: " if source is not None else ""
    hint = f" (`streamact data check {source}` lists every problem)" if source is not None else ""

    def fail(message: str) -> None:
        if on_error == "raise":
            raise UserError(f"{prefix}{message}{hint}")
        ann.skipped.append(message)

    for video, by_label in ann.gttubes.items():
        nframes, hw = ann.nframes.get(video), ann.resolution.get(video)
        for label in list(by_label):
            if not 0 <= label < len(ann.labels):
                fail(f"video {video}: label id {label} outside 0..{len(ann.labels) - 1}")
                del by_label[label]
                continue
            if nframes is None or hw is None:
                continue  # reported once per video below
            kept = []
            for tube in by_label[label]:
                problems = list(_tube_problems(video, label, tube, nframes, hw))
                for problem in problems:
                    fail(problem)
                if not problems:
                    kept.append(_clip_to_frame(ann, tube, hw))
            by_label[label] = kept
    bad_videos = set()
    for video in _split_videos(ann):
        for problem in _video_problems(ann, video):
            fail(problem)
            bad_videos.add(video)
    if bad_videos:
        ann.train_videos = [[v for v in videos if v not in bad_videos] for videos in ann.train_videos]
        ann.test_videos = [[v for v in videos if v not in bad_videos] for videos in ann.test_videos]
    return ann


def check_detection_annotations(path: str | Path, *, root: str | Path | None = None) -> dict:
    """Validate a detection pickle and its frames in one pass and list every problem.

    Args:
        path: the pickle.
        root: dataset folder (default: the pickle's folder).

    Returns:
        A JSON-serialisable dict: `format` ("detection"), `num_videos` and `num_frames` (every video with a frame
        count), `num_tubes` (valid ones), `clipped_boxes`, `problems` (annotation problems, one line each),
        `missing_frames` (one line per video with frame files missing, naming the first missing frame and the
        count).
    """
    ann = load_detection_annotations(path, root=root, on_error="skip")
    missing: list[str] = []
    videos = list(ann.nframes)  # every video of the file, also those whose tubes were all bad
    for video in videos:
        absent = [f for f in range(1, ann.nframes[video] + 1) if not ann.frame_path(video, f).is_file()]
        if absent:
            missing.append(
                f"video {video} frame {absent[0]}: {len(absent)} of {ann.nframes[video]} frame files missing "
                f"(first: {ann.frame_path(video, absent[0])})"
            )
    return {
        "format": "detection",
        "clipped_boxes": ann.clipped_boxes,
        "num_videos": len(videos),
        "num_tubes": sum(1 for v in videos for _ in ann.tubes(v)),
        "num_frames": sum(ann.nframes[v] for v in videos),
        "problems": ann.skipped,
        "missing_frames": missing,
    }


def save_detection_annotations(ann: DetectionAnnotations, path: str | Path) -> Path:
    """Write `ann` as a pickle in the UCF101v2-GT.pkl layout (plus ``frame_pattern`` and ``motion_pairs``).

    Tubes are written as float32 (n, 5) arrays; the file is written to a temporary name and renamed, so an
    interrupted run never leaves a truncated pickle.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {
        "labels": list(ann.labels),
        "nframes": dict(ann.nframes),
        "resolution": {v: tuple(int(x) for x in hw) for v, hw in ann.resolution.items()},
        "gttubes": {
            v: {int(label): [np.asarray(t, np.float32) for t in tubes] for label, tubes in by_label.items()}
            for v, by_label in ann.gttubes.items()
        },
        "train_videos": [list(videos) for videos in ann.train_videos],
        "test_videos": [list(videos) for videos in ann.test_videos],
        "frame_pattern": ann.frame_pattern,
        "motion_pairs": [tuple(p) for p in ann.motion_pairs],
    }
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        pickle.dump(data, f, protocol=4)
    tmp.replace(path)
    return path


def read_frame(annotations: DetectionAnnotations, video: str, frame: int) -> np.ndarray:
    """Frame `frame` (1-based) of `video` as an (H, W, 3) uint8 RGB array.

    Raises:
        UserError: the file is missing or cannot be decoded; the message names video, frame and path.
    """
    from PIL import Image, UnidentifiedImageError

    path = annotations.frame_path(video, frame)
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except FileNotFoundError:
        raise UserError(f"video {video} frame {frame}: frame file {path} is missing") from None
    except (UnidentifiedImageError, OSError) as e:
        raise UserError(f"video {video} frame {frame}: cannot decode {path} ({e})") from None
