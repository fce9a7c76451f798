"""Live frame sources: one iterator over files, frame folders, cameras, network streams and synthetic gestures.

    spec ──► open_source ──► FrameSource ──► (frame RGB uint8 (H, W, 3), timestamp in s), one at a time

Specs and what reads them:

* ``clip.mp4`` (any file FFmpeg demuxes): decoded sequentially with PyAV, turned upright by its rotation metadata;
* ``frames/`` (a folder of jpg / png): images read in natural order with PIL;
* ``0``, ``1``, ... (a camera index), ``rtsp://...``, ``http(s)://...``: OpenCV capture (the ``camera`` extra);
* ``synthetic:gestures?seed=1&num=12&size=160``: `iter_stream_frames`, with the ground-truth label of every frame.
* ``synthetic:detection?seed=0&frames=120&size=160&actors=2``: one scene of figures performing actions
  (`render_detection_video`, the generator of `streamact data synth detection`); its boxes are in `tubes`.

Bad input never crashes the consumer: a frame that fails to decode is skipped and counted (`num_corrupt`); a source
that fails mid-stream (truncated file, demuxer error, camera unplugged, network stream gone) ends the iteration
normally with the reason in `error`, so whatever the consumer wrote so far stays valid. Frames may change size and
come as grayscale or RGBA from a folder; every frame leaves the source as RGB uint8 (H, W, 3).

``realtime=True`` replays a recorded source the way a camera delivers it: frame t is not handed out before its
timestamp, and when the consumer falls behind, the frames it missed are dropped (`num_dropped`) instead of queued,
so latency stays bounded and the consumer always sees the newest frame. `index` keeps the source's own frame
numbering through drops (a dropped frame leaves a gap), so outputs can stay on the source's clock.
"""
from __future__ import annotations

import abc
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

import av
import numpy as np
from PIL import Image

from streamact.io.errors import VideoDecodeError, VideoError, VideoNotFoundError
from streamact.io.frames import to_rgb
from streamact.io.video import FrameFolderReader, frame_to_rgb, open_container

__all__ = ["FrameSource", "open_source", "MAX_CONSECUTIVE_CORRUPT"]

# A decoder that fails this many frames in a row is broken rather than hit by a corrupt packet; the stream ends.
MAX_CONSECUTIVE_CORRUPT = 25

_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_Item = tuple[np.ndarray, float, int | None]  # frame, timestamp (s), ground-truth label
_Numbered = tuple[np.ndarray, float, int | None, int]  # ... and the frame's index in the source


class FrameSource(abc.ABC):
    """Iterator of ``(frame, timestamp_s)``: RGB uint8 frames (H, W, 3), timestamps from the first frame (0.0).

    Use as a context manager, or call `close()`, to release the file, camera or connection.

    Attributes:
        name: what the source reads (path, camera, URL, synthetic parameters), for messages.
        fps: nominal frame rate (the container's, the camera's, or the one given).
        num_frames: frames the source holds, when known beforehand (files, folders), else None.
        realtime: whether frames are paced by their timestamps and dropped when the consumer is behind.
        live: the source is a device or network stream that paces itself (`realtime` has no effect).
        num_dropped: frames dropped by realtime pacing.
        num_corrupt: frames that failed to decode and were skipped.
        error: the exception that ended the stream early, or None (ended normally or still running).
        class_names: names of the ground-truth labels (synthetic sources, and files with a ``<stem>.timeline.json``
            beside them), else None.
        label: ground-truth label index of the frame yielded last (where ground truth exists), else None.
        index: index of the frame yielded last among all frames the source delivered, dropped ones included
            (0-based; -1 before the first), so ``index`` jumps by more than one after a drop.
    """

    def __init__(self, name: str, fps: float, *, realtime: bool = False, num_frames: int | None = None,
                 live: bool = False, class_names: list[str] | None = None) -> None:
        self.name = name
        self.fps = float(fps)
        self.num_frames = num_frames
        self.realtime = realtime
        self.live = live
        self.num_dropped = 0
        self.num_corrupt = 0
        self.error: Exception | None = None
        self.class_names = class_names
        self.label: int | None = None
        self.index = -1
        self._items: Iterator[_Item] | None = None
        self._num_read = 0  # items taken from `_read` so far: the next one's index
        self._pending: _Numbered | None = None  # a frame read ahead by realtime pacing
        self._clock: float | None = None  # perf_counter() at timestamp 0 when paced
        self._closed = False

    @abc.abstractmethod
    def _read(self) -> Iterator[_Item]:
        """Yield ``(frame, timestamp, label)`` in stream order; set `error` and return on a fatal failure."""

    def _release(self) -> None:
        """Free the underlying file, device or connection."""

    def __iter__(self) -> FrameSource:
        return self

    def __next__(self) -> tuple[np.ndarray, float]:
        item = self._pull()
        if item is None:
            raise StopIteration
        if self.realtime and not self.live:
            item = self._pace(item)
        frame, timestamp, self.label, self.index = item
        return frame, timestamp

    def _pull(self) -> _Numbered | None:
        if self._pending is not None:
            item, self._pending = self._pending, None
            return item
        if self._closed:
            return None
        if self._items is None:
            self._items = self._read()
        item = next(self._items, None)
        if item is None:
            return None
        self._num_read += 1
        return (*item, self._num_read - 1)

    def _pace(self, item: _Numbered) -> _Numbered:
        """Hold `item` until its timestamp, or replace it by the newest frame already due (dropping the rest)."""
        if self._clock is None:
            self._clock = time.perf_counter() - item[1]
        while True:
            following = self._pull()
            if following is None or self._clock + following[1] > time.perf_counter():
                self._pending = following
                break
            # A camera would already show `following`: the consumer never gets to see `item`.
            self.num_dropped += 1
            item = following
        wait = self._clock + item[1] - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        return item

    def close(self) -> None:
        """Stop reading and release the source; iteration ends. Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        self._pending = None
        if self._items is not None:
            self._items.close()
        self._release()

    def __enter__(self) -> FrameSource:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.name!r}, fps={self.fps:g}, num_frames={self.num_frames}, "
                f"realtime={self.realtime})")


class _FileSource(FrameSource):
    """A video file decoded packet by packet with PyAV, so one corrupt packet costs one frame, not the stream."""

    def __init__(self, path: Path, *, realtime: bool, fps: float | None) -> None:
        if not path.exists():
            raise VideoNotFoundError(f"{path}: no such video file, frame folder or camera")
        self._container, self._stream = open_container(path)
        # Frame and slice threads: FFmpeg decodes the next frames in its own threads while the consumer runs its
        # model, instead of only when asked (the default, slice threads, leaves decoding in the consumer's time).
        self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        self._fixed_rate = fps is not None  # a given fps overrides the timestamps: frame i is at i / fps
        # The container's frame count (mp4 and avi record one) tells a truncated file from a complete one.
        self._declared = self._stream.frames or None
        # A `<stem>.timeline.json` beside the video (written by `streamact data synth stream`) is its frame-level
        # ground truth, so recognising such a file also scores it.
        timeline = path.with_suffix(".timeline.json")
        self._truth: list[int] | None = None
        class_names = None
        if timeline.is_file():
            data = json.loads(timeline.read_text())
            class_names, self._truth = list(data["classes"]), list(data["labels"])
        super().__init__(str(path), fps or (float(rate) if rate else 30.0), realtime=realtime,
                         num_frames=self._declared, class_names=class_names)

    def _read(self) -> Iterator[_Item]:
        packets = index = streak = 0
        start: float | None = None
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:
                    packets += 1
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    self.num_corrupt += 1
                    streak += 1
                    if streak >= MAX_CONSECUTIVE_CORRUPT:
                        self.error = VideoDecodeError(
                            f"{self.name}: decoder failed on {streak} frames in a row after {index} good ones")
                        return
                    continue
                streak = 0
                for frame in frames:
                    if self._fixed_rate or frame.time is None:
                        timestamp = index / self.fps
                    else:
                        start = frame.time if start is None else start
                        timestamp = frame.time - start
                    label = self._truth[index] if self._truth is not None and index < len(self._truth) else None
                    index += 1
                    yield frame_to_rgb(frame), timestamp, label
        except av.FFmpegError as e:
            self.error = VideoDecodeError(f"{self.name}: demuxing failed after {index} frames ({e})")
            return
        if self._declared and packets < self._declared:
            self.error = VideoDecodeError(
                f"{self.name}: truncated: the stream ended after {packets} of {self._declared} frames")

    def _release(self) -> None:
        self._container.close()


class _FolderSource(FrameSource):
    """Frame images in natural order; an unreadable image is skipped and counted, sizes may vary."""

    def __init__(self, path: Path, *, realtime: bool, fps: float | None) -> None:
        self._files = FrameFolderReader(path).files  # natural order; raises if the folder holds no frames
        super().__init__(str(path), fps or 30.0, realtime=realtime, num_frames=len(self._files))

    def _read(self) -> Iterator[_Item]:
        index = 0
        for file in self._files:
            try:
                with Image.open(file) as image:
                    image.load()
                    # Palette, CMYK and YCbCr images have no direct array form that to_rgb understands.
                    if image.mode not in ("RGB", "RGBA", "L", "LA", "I", "I;16", "F", "1"):
                        image = image.convert("RGB")
                    frame = to_rgb(np.array(image))  # a writable copy: consumers may draw on frames
            except (OSError, ValueError, SyntaxError):
                # PIL raises OSError for truncated data, UnidentifiedImageError (an OSError) for non-images.
                self.num_corrupt += 1
                continue
            yield frame, index / self.fps, None
            index += 1


class _CaptureSource(FrameSource):
    """A camera or network stream through OpenCV (FFmpeg / V4L2 backends), converted from BGR to RGB.

    A source whose frame count OpenCV cannot tell is live: it paces itself, its timestamps are wall-clock time
    since the first frame, and running out of frames is a failure (an unplugged camera, a dropped connection).
    """

    def __init__(self, target: int | str, *, realtime: bool, fps: float | None) -> None:
        try:
            import cv2
        except ImportError as e:
            raise ImportError("cameras and network streams need OpenCV: pip install 'streamact[camera]' "
                              "(opencv-python-headless)") from e
        self._cv2 = cv2
        name = f"camera {target}" if isinstance(target, int) else str(target)
        # OpenCV logs its own backend warnings for a missing device; the error below says it in one line.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self._capture = cv2.VideoCapture(target)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self._capture.isOpened():
            self._capture.release()
            if isinstance(target, int):
                raise VideoNotFoundError(f"camera {target}: no camera at index {target} (no such device, "
                                         "or it is busy or not permitted)")
            raise VideoNotFoundError(f"{target}: cannot open the stream (unreachable, refused or not a video)")
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        rate = self._capture.get(cv2.CAP_PROP_FPS)
        super().__init__(name, fps or (rate if rate and rate > 0 else 30.0), realtime=realtime,
                         num_frames=count if count > 0 else None, live=count <= 0)

    def _read(self) -> Iterator[_Item]:
        cv2 = self._cv2
        index = 0
        start = time.perf_counter()
        while True:
            ok, frame = self._capture.read()
            if not ok or frame is None:
                if self.live:
                    self.error = VideoError(f"{self.name}: stopped delivering frames after {index}")
                elif index < self.num_frames:
                    self.error = VideoDecodeError(f"{self.name}: ended after {index} of {self.num_frames} frames")
                return
            timestamp = time.perf_counter() - start if self.live else index / self.fps
            index += 1
            if frame.ndim == 3 and frame.shape[2] == 3:  # OpenCV's colour order is BGR
                frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            yield to_rgb(frame), timestamp, None

    def _release(self) -> None:
        self._capture.release()


class _SyntheticSource(FrameSource):
    """The synthetic gesture stream (`iter_stream_frames`) with its frame-level ground truth in `label`."""

    def __init__(self, options: dict[str, str], *, realtime: bool, fps: float | None) -> None:
        from streamact.data.synthetic import FPS, GESTURE_CLASSES

        self._seed = _int_option(options, "seed", 0)
        self._size = _int_option(options, "size", 160)
        num = options.get("num", "12")
        self._num_gestures = None if num == "inf" else _int_option(options, "num", 12)
        super().__init__(f"synthetic:gestures (seed {self._seed}, {num} gestures, {self._size}px)", fps or FPS,
                         realtime=realtime, class_names=list(GESTURE_CLASSES))

    def _read(self) -> Iterator[_Item]:
        from streamact.data.synthetic import iter_stream_frames

        frames = iter_stream_frames(num_gestures=self._num_gestures, seed=self._seed, size=self._size)
        for index, (frame, label) in enumerate(frames):
            yield frame, index / self.fps, label


class _SyntheticDetectionSource(FrameSource):
    """One synthetic detection scene (`render_detection_video`): figures idling, walking and performing actions.

    Attributes:
        tubes: the ground truth, (label id, (n, 5) rows of 1-based frame, x1, y1, x2, y2).
        action_names: the action classes the label ids index.
    """

    def __init__(self, options: dict[str, str], *, realtime: bool, fps: float | None) -> None:
        from streamact.data.synthetic import DETECTION_CLASSES, FPS

        self._seed = _int_option(options, "seed", 0)
        self._frames = _int_option(options, "frames", 120)
        self._width = _int_option(options, "size", 160)
        self._actors = _int_option(options, "actors", 2)
        if self._width < 64:
            raise ValueError(f"synthetic:detection: size must be at least 64 pixels, got {self._width}")
        self.action_names = list(DETECTION_CLASSES)
        self.tubes: list[tuple[int, np.ndarray]] = []
        super().__init__(f"synthetic:detection (seed {self._seed}, {self._frames} frames, {self._actors} actors, "
                         f"{self._width}px)", fps or FPS, realtime=realtime, num_frames=self._frames)

    def _read(self) -> Iterator[_Item]:
        from streamact.data.synthetic.detection import render_detection_video

        rng = np.random.default_rng(self._seed)
        labels = [int(c) for c in rng.integers(len(self.action_names), size=3)]
        frames, self.tubes = render_detection_video(rng, labels=labels, num_frames=self._frames, width=self._width,
                                                    height=self._width * 3 // 4, num_actors=self._actors)
        for index, frame in enumerate(frames):
            yield frame, index / self.fps, None


_SYNTHETIC = {"gestures": (_SyntheticSource, {"seed", "num", "size"}),
              "detection": (_SyntheticDetectionSource, {"seed", "frames", "size", "actors"})}


def _int_option(options: dict[str, str], key: str, default: int) -> int:
    value = options.get(key, str(default))
    try:
        number = int(value)
    except ValueError:
        raise ValueError(f"synthetic source: {key} must be an integer, got {value!r}") from None
    if number < 0 or (key != "seed" and number < 1):
        raise ValueError(f"synthetic source: {key} must be positive, got {number}")
    return number


def open_source(spec: str | int | Path, *, realtime: bool = False, fps: float | None = None) -> FrameSource:
    """Open a video file, frame folder, camera index, network stream or synthetic stream as a `FrameSource`.

    Args:
        spec: a video file path; a folder of frame images; a camera index (``0`` or ``"0"``); an ``rtsp://``,
            ``http://`` or ``https://`` URL; or ``synthetic:gestures`` with optional query parameters ``seed``
            (default 0), ``num`` (gestures, default 12; ``inf`` for an endless stream) and ``size`` (pixels,
            default 160), e.g. ``synthetic:gestures?seed=1&num=12&size=160``; or ``synthetic:detection`` with
            ``seed`` (0), ``frames`` (120), ``size`` (width in pixels, height 3/4 of it; 160) and ``actors`` (2).
        realtime: pace a recorded source like a live camera at its frame rate and drop the frames the consumer
            is too slow for (counted in `num_dropped`); otherwise every frame is delivered as fast as it is read.
        fps: frame rate of sources that store none (frame folders: default 30; synthetic: default 12); for files
            and streams it overrides theirs, and file timestamps become ``index / fps``.

    Returns:
        The source; iterate it for ``(frame, timestamp_s)`` and close it (or use it as a context manager).

    Raises:
        VideoNotFoundError: no file, folder, camera or stream answers to `spec` (the message names it).
        VideoDecodeError: the file exists but cannot be opened as a video.
        ValueError: a malformed ``synthetic:`` spec, or a non-positive `fps`.
        ImportError: a camera or URL without OpenCV installed.
    """
    if fps is not None and fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if isinstance(spec, int):
        return _CaptureSource(spec, realtime=realtime, fps=fps)
    text = str(spec)
    if text.startswith("synthetic:"):
        kind, _, query = text[len("synthetic:"):].partition("?")
        if kind not in _SYNTHETIC:
            raise ValueError(f"{text}: unknown synthetic source {kind!r} (available: {', '.join(_SYNTHETIC)})")
        cls, known = _SYNTHETIC[kind]
        options = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"{text}: unknown option(s) {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(options, realtime=realtime, fps=fps)
    if text.strip().isdigit():
        return _CaptureSource(int(text), realtime=realtime, fps=fps)
    if _URL.match(text):
        return _CaptureSource(text, realtime=realtime, fps=fps)
    path = Path(text)
    if path.is_dir():
        return _FolderSource(path, realtime=realtime, fps=fps)
    return _FileSource(path, realtime=realtime, fps=fps)
