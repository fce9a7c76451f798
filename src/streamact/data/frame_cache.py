"""A disk cache of whole decoded videos, so that training on long streams is not bound by decoding.

A stream window is a few frames from anywhere in a long video: reading it from an mp4 means seeking to the
keyframe before it and decoding forward, tens of frames per window frame kept (docs/RESULTS.md, "Training on
streams: decoding once"). The cache decodes each video once, resized to the training scale (the shorter side the
training transform resizes to first, so the transform then sees exactly the frames it would have made itself), into
an uncompressed uint8 ``.npy`` file that every later sample reads by memory map: a window costs a copy of its frames.

Layout of the cache folder, one pair of files per video::

    <video name>-<digest>.npy     frames, (N, H, W, 3) uint8 RGB
    <video name>-<digest>.json    the source's path, size and modification time, and the scale

The digest names the source path and scale. An entry whose source changed since (size or modification time) is
rebuilt. Entries are written under a temporary name and renamed, so concurrent DataLoader workers and interrupted
runs never leave a half-written entry behind.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streamact.io.errors import VideoDecodeError, VideoError
from streamact.io.video import open_video
from streamact.transforms.functional import resize_short

__all__ = ["FrameCache", "CachedVideo"]


class CachedVideo:
    """The frames of one cached video, with the part of the video reader interface datasets use.

    Args:
        frames: (N, H, W, 3) uint8, usually a read-only memory map.
    """

    def __init__(self, frames: np.ndarray) -> None:
        self.frames = frames

    @property
    def num_frames(self) -> int:
        return len(self.frames)

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """The frames at `indices` (any order, repeats allowed) as a new (len(indices), H, W, 3) array.

        Raises:
            IndexError: an index is negative or not below num_frames.
        """
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"frame index {bad[0]} out of range for {self.num_frames} frames")
        return np.array(self.frames[list(indices)])  # fancy indexing copies out of the memory map

    def __enter__(self) -> CachedVideo:
        return self

    def __exit__(self, *exc) -> None:
        """Nothing to release: the memory map closes with its array (a context manager like the video readers)."""


class FrameCache:
    """Whole videos decoded once, resized so their shorter side is `short_side`, kept in folder `root`.

    Args:
        root: the cache folder (created when needed).
        short_side: the shorter side of the cached frames: the training transform's first resize.
    """

    def __init__(self, root: str | Path, *, short_side: int) -> None:
        if short_side < 1:
            raise ValueError(f"short_side must be >= 1, got {short_side}")
        self.root = Path(root)
        self.short_side = short_side

    def open(self, path: str | Path) -> CachedVideo:
        """The cached frames of video `path`, decoding it first when it has no entry or a stale one.

        Raises:
            VideoError: the video cannot be read (missing, corrupt, truncated).
        """
        frames_file, meta_file = self._entry(Path(path))
        if not self._is_fresh(Path(path), meta_file) or not frames_file.exists():
            self._build(Path(path), frames_file, meta_file)
        return CachedVideo(np.load(frames_file, mmap_mode="r"))

    def build(self, paths: Iterable[str | Path], *, progress: bool = True) -> int:
        """Make sure every video of `paths` has a fresh entry (duplicates are built once).

        Unreadable videos are left out; the dataset meets them again, then skips and counts their samples.

        Returns:
            How many videos could not be read.
        """
        unique = list(dict.fromkeys(Path(p) for p in paths))
        failed = 0
        for path in tqdm(unique, desc="decoding into the frame cache", unit="video", disable=not progress):
            try:
                self.open(path)
            except VideoError:
                failed += 1
        return failed

    def _entry(self, path: Path) -> tuple[Path, Path]:
        digest = hashlib.sha1(f"{path.resolve()}|{self.short_side}".encode()).hexdigest()[:16]
        stem = self.root / f"{path.stem}-{digest}"
        return stem.with_suffix(".npy"), stem.with_suffix(".json")

    def _source_stamp(self, path: Path) -> dict:
        stat = path.stat()
        return {"source": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                "short_side": self.short_side}

    def _is_fresh(self, path: Path, meta_file: Path) -> bool:
        try:
            return json.loads(meta_file.read_text()) == self._source_stamp(path)
        except (OSError, ValueError):  # no entry yet, a vanished source (the build then names it), a broken file
            return False

    def _build(self, path: Path, frames_file: Path, meta_file: Path) -> None:
        """Decode `path` into `frames_file` and stamp it in `meta_file`, each written whole, then renamed."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = frames_file.with_name(f"{frames_file.stem}.{os.getpid()}.tmp.npy")
        try:
            with open_video(path) as reader:
                stamp = self._source_stamp(path)  # taken before decoding: a change during it leaves the entry stale
                num_frames, out, decoded = reader.num_frames, None, 0
                for frame in reader.iter_frames():
                    frame = resize_short(frame, self.short_side).numpy()  # (H', W', 3): the transform's first step
                    if out is None:
                        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8,
                                                        shape=(num_frames, *frame.shape))
                    if decoded < num_frames:
                        out[decoded] = frame
                    decoded += 1
                if decoded != num_frames:
                    raise VideoDecodeError(f"{path}: decoded {decoded} of {num_frames} frames (truncated?)")
            out.flush()
            del out
            os.replace(tmp, frames_file)
        finally:
            tmp.unlink(missing_ok=True)
        meta_tmp = meta_file.with_name(f"{meta_file.stem}.{os.getpid()}.tmp.json")
        meta_tmp.write_text(json.dumps(stamp))
        os.replace(meta_tmp, meta_file)
