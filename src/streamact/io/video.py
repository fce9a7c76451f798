"""Video sources for datasets: files decoded with PyAV and folders of frame images.

Both readers share one small interface (`fps`, `num_frames`, `duration`, `height`, `width`,
`get_frames(indices)`, `iter_frames()`, context manager) and always return RGB uint8 frames.

Random access in a video file is frame accurate without decoding the whole file: the first access demuxes
the stream once (packets only, nothing decoded) to learn every frame's presentation timestamp and where the
keyframes are. `get_frames` then seeks to the keyframe at or before each wanted frame and decodes forward,
continuing instead of seeking again when the next wanted frame lies before the next keyframe. The same
index gives `num_frames`; the container's own count (`stream.frames`) is missing for mkv / webm and can
disagree with what the decoder produces, so it is not used for that.

It is used to tell a truncated file, though: a file whose index lies at the front ("faststart" mp4) still opens
when its end is cut off, and only the frames past the cut fail to decode. Such a file is refused when it is
indexed (fewer packets present than the container declares, or a last packet that runs past the end of the file),
whatever frames are asked for, so `streamact data check` and training make the same decision about it every time.

Frames come out the way players show them: the display matrix a phone writes instead of rotating the pixels
(rotation by quarter turns, mirroring) is applied when decoding (`frame_to_rgb`), here and in `streamact.io.sources`.
"""
from __future__ import annotations

import bisect
import logging
import operator
import re
import warnings
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from streamact.io.errors import VideoDecodeError, VideoNotFoundError
from streamact.io.frames import to_rgb

__all__ = [
    "open_container",
    "frame_to_rgb",
    "VideoReader",
    "FrameFolderReader",
    "open_video",
    "IMAGE_EXTENSIONS",
    "VIDEO_EXTENSIONS",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")


def open_container(path: Path) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open `path` with PyAV and return the container and its first video stream.

    Raises:
        VideoNotFoundError: no file at `path`.
        VideoDecodeError: the file is not a readable video, or has no video stream.
    """
    if not path.exists():
        raise VideoNotFoundError(f"{path}: no such file")
    try:
        container = av.open(str(path))
    except av.FFmpegError as e:
        raise VideoDecodeError(f"{path}: cannot open as a video ({e})") from e
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: no video stream")
    return container, container.streams.video[0]


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as players show it: RGB uint8 (H, W, 3) with its display matrix applied.

    Phones record in the sensor's orientation and store how to turn the picture for display (the display matrix,
    from the container's rotation metadata) instead of rotating the pixels; a portrait clip is stored landscape.
    Quarter turns and mirroring are applied exactly; another angle (which no camera writes) is left as stored.

    Args:
        frame: a frame from PyAV's decoder.

    Returns:
        The displayed frame, C-contiguous (a writable copy where it was turned).
    """
    # One colour-conversion thread: swscale's pool (one thread per CPU by default) outlives the frame, and a
    # DataLoader worker forked while it exists deadlocks in its first conversion.
    image = frame.to_ndarray(format="rgb24", threads=1)
    matrix = frame.side_data.get("DISPLAYMATRIX")
    if matrix is not None:
        image = _orient(image, np.frombuffer(bytes(matrix), dtype=np.int32), frame)
    return to_rgb(image)


def _orient(image: np.ndarray, matrix: np.ndarray, frame: av.VideoFrame) -> np.ndarray:
    """Apply the display matrix (FFmpeg's layout: 16.16 fixed point [a b u; c d v; x y w]) to an (H, W, C) image.

    A source point (x, y) is shown at x' = a*x + c*y, y' = b*x + d*y (plus an offset that keeps the picture in
    view): with a = d = 0 rows and columns swap (a quarter turn, possibly mirrored), and a negative coefficient
    reverses the axis it writes to.
    """
    a, b, _, c, d = (round(v / 65536) for v in matrix[:5])
    if a == d == 0 and abs(b) == abs(c) == 1:
        image = image.transpose(1, 0, 2)  # rows now follow source x (which feeds y'), columns source y (x')
        flip_x, flip_y = c < 0, b < 0
    elif b == c == 0 and abs(a) == abs(d) == 1:
        flip_x, flip_y = a < 0, d < 0
    else:
        # warnings (not logging): shown once, not for every frame of the video
        warnings.warn(f"display matrix rotates by {frame.rotation} degrees, not a quarter turn: frames are used as "
                      f"stored", stacklevel=2)
        return image
    if flip_x:
        image = image[:, ::-1]
    if flip_y:
        image = image[::-1]
    return image


class VideoReader:
    """Frame-accurate reader for a video file (mp4, avi, mkv, webm, anything FFmpeg demuxes).

    Use as a context manager, or call `close()`, to release the file.

    Args:
        path: the video file.

    Raises:
        VideoNotFoundError: the path does not exist.
        VideoDecodeError: the file is empty, corrupt, truncated, not a video or has no video stream.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._container, self._stream = open_container(self.path)
        # One decoding thread: datasets decode in parallel DataLoader workers already, and FFmpeg's decoder threads
        # can outlive the reader in the process that opened it, deadlocking the workers forked from it later.
        self._stream.codec_context.thread_count = 1
        rate = self._stream.average_rate or self._stream.guessed_rate or self._stream.base_rate
        if not rate:
            self._container.close()
            raise VideoDecodeError(f"{self.path}: no frame rate in the container")
        self._rate = Fraction(rate)
        self._pts: list[int] | None = None  # presentation timestamps in display order
        self._pts_to_index: dict[int, int] = {}
        self._keyframes: list[int] = []  # frame indices of keyframes, ascending
        self._shape: tuple[int, int] | None = None  # displayed (height, width), known once a frame is decoded
        self.num_decoded = 0  # frames decoded so far; shows what random access costs

    @property
    def fps(self) -> float:
        """Average frame rate in frames per second."""
        return float(self._rate)

    @property
    def num_frames(self) -> int:
        """Number of frames, counted once by demuxing (no decoding) and cached."""
        return len(self._index())

    @property
    def duration(self) -> float:
        """Duration in seconds, from the container when it records one, else num_frames / fps."""
        if self._stream.duration and self._stream.time_base:
            return float(self._stream.duration * self._stream.time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        return self.num_frames / self.fps

    @property
    def height(self) -> int:
        """Height of the displayed frames in pixels (the rotation metadata applied; decodes a frame once)."""
        return self._display_shape()[0]

    @property
    def width(self) -> int:
        """Width of the displayed frames in pixels (the rotation metadata applied; decodes a frame once)."""
        return self._display_shape()[1]

    def __len__(self) -> int:
        return self.num_frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Decode the frames at `indices`, in the order given (unsorted and repeated indices are fine).

        Args:
            indices: frame indices in [0, num_frames).

        Returns:
            Array of shape (len(indices), H, W, 3), RGB uint8.

        Raises:
            IndexError: an index is negative or not below num_frames.
            VideoDecodeError: a wanted frame could not be decoded (corrupt or truncated data).
        """
        indices = [operator.index(i) for i in indices]
        num_frames = self.num_frames
        bad = [i for i in indices if not 0 <= i < num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame index {bad[0]} out of range for {num_frames} frames")
        wanted = set(indices)
        decoded: dict[int, np.ndarray] = {}
        frames: Iterator[tuple[int, av.VideoFrame]] | None = None
        position = -1  # index of the last frame decoded by the current forward pass
        for target in sorted(wanted):
            keyframe = self._keyframes[bisect.bisect_right(self._keyframes, target) - 1]
            # Seek only when a keyframe lies past the current position; otherwise decoding on is cheaper.
            if frames is None or keyframe > position + 1:
                frames = self._decode_from(keyframe, target)
            for index, frame in frames:
                position = index
                if index in decoded or index not in wanted:
                    continue
                decoded[index] = frame_to_rgb(frame)
                if index >= target:
                    break
            if target not in decoded:
                raise VideoDecodeError(f"{self.path}: frame {target} of {num_frames} could not be decoded")
        if not indices:
            return np.empty((0, self.height, self.width, 3), np.uint8)
        return np.stack([decoded[i] for i in indices])

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield every frame from the first, as RGB uint8 arrays of shape (H, W, 3).

        Raises:
            VideoDecodeError: the data is corrupt or truncated.
        """
        self._seek(0)
        try:
            for frame in self._container.decode(self._stream):
                self.num_decoded += 1
                yield frame_to_rgb(frame)
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding failed ({e})") from e

    def close(self) -> None:
        """Release the file."""
        self._container.close()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _display_shape(self) -> tuple[int, int]:
        if self._shape is None:
            self._shape = self.get_frames([0]).shape[1:3]
        return self._shape

    def _index(self) -> list[int]:
        """Demux every packet once to list frame timestamps (display order) and keyframe positions.

        Every path that reads the container calls this first, so demuxing starts from the beginning.

        Raises:
            VideoDecodeError: demuxing fails, there are no frames, or the file is truncated (see the module
                docstring).
        """
        if self._pts is not None:
            return self._pts
        packets: list[tuple[int, bool]] = []
        present, data_end = 0, 0  # packets with data, and the file offset where the last one ends
        try:
            for packet in self._container.demux(self._stream):
                if packet.size:
                    present += 1
                    if packet.pos is not None and packet.pos >= 0:
                        data_end = max(data_end, packet.pos + packet.size)
                timestamp = packet.pts if packet.pts is not None else packet.dts
                # The final flush packet has no data and no timestamp; discarded packets are never shown.
                if timestamp is None or packet.size == 0 or packet.is_discard:
                    continue
                packets.append((timestamp, packet.is_keyframe))
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: demuxing failed ({e})") from e
        if not packets:
            raise VideoDecodeError(f"{self.path}: no video frames")
        declared = self._stream.frames
        if (declared and present < declared) or data_end > self.path.stat().st_size:
            raise VideoDecodeError(f"{self.path}: truncated: the file ends after {present} of "
                                   f"{declared or present} frames; copy or download it again")
        packets.sort()
        self._pts = [timestamp for timestamp, _ in packets]
        self._pts_to_index = {timestamp: i for i, timestamp in enumerate(self._pts)}
        self._keyframes = [i for i, (_, key) in enumerate(packets) if key]
        # The first frame is where decoding starts after a seek to the beginning, flagged or not.
        if not self._keyframes or self._keyframes[0] != 0:
            self._keyframes.insert(0, 0)
        return self._pts

    def _seek(self, index: int) -> None:
        try:
            self._container.seek(self._index()[index], stream=self._stream, backward=True, any_frame=False)
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: seek failed ({e})") from e

    def _decode_from(self, keyframe: int, target: int) -> Iterator[tuple[int, av.VideoFrame]]:
        """Seek to `keyframe` and yield (index, frame) in display order from there to the end.

        If the demuxer lands after `target` (an inexact seek table), decoding restarts from the first frame.
        """
        self._seek(keyframe)
        first = True
        try:
            for frame in self._container.decode(self._stream):
                self.num_decoded += 1
                timestamp = frame.pts if frame.pts is not None else frame.dts
                index = self._pts_to_index.get(timestamp)
                if index is None:
                    continue
                if first and index > target and keyframe > 0:
                    yield from self._decode_from(0, target)
                    return
                first = False
                yield index, frame
        except av.FFmpegError as e:
            raise VideoDecodeError(f"{self.path}: decoding failed ({e})") from e


class FrameFolderReader:
    """Reader for a folder of frame images (jpg / png), e.g. Jester's `<id>/00001.jpg`.

    Frames are the image files sorted by name, numbers compared as numbers (so `2.jpg` precedes `10.jpg`).
    Gaps in the numbering are tolerated: the frames that exist are used in order and a warning is logged.

    Args:
        path: the folder.
        fps: frame rate to report; folders do not store one (Jester was recorded at 12 fps).

    Raises:
        VideoNotFoundError: the folder does not exist or holds no frame images.
    """

    def __init__(self, path: str | Path, fps: float = 30.0) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise VideoNotFoundError(f"{self.path}: no such frame folder")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise VideoNotFoundError(f"{self.path}: no frame images ({', '.join(IMAGE_EXTENSIONS)})")
        self._fps = float(fps)
        self._size: tuple[int, int] | None = None
        missing = _count_missing(self.files)
        if missing:
            logger.warning("%s: %d frame(s) missing from the numbering; using the %d present",
                           self.path, missing, len(self.files))

    @property
    def fps(self) -> float:
        """Frame rate given at construction."""
        return self._fps

    @property
    def num_frames(self) -> int:
        """Number of frame images present."""
        return len(self.files)

    @property
    def duration(self) -> float:
        """num_frames / fps, in seconds."""
        return self.num_frames / self._fps

    @property
    def height(self) -> int:
        """Height of the first frame in pixels."""
        return self._first_size()[0]

    @property
    def width(self) -> int:
        """Width of the first frame in pixels."""
        return self._first_size()[1]

    def __len__(self) -> int:
        return self.num_frames

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Load the frames at `indices`, in the order given (each distinct file is read once).

        Args:
            indices: frame indices in [0, num_frames).

        Returns:
            Array of shape (len(indices), H, W, 3), RGB uint8.

        Raises:
            IndexError: an index is negative or not below num_frames.
            VideoDecodeError: a frame image is unreadable or its size differs from the others.
        """
        indices = [operator.index(i) for i in indices]
        bad = [i for i in indices if not 0 <= i < self.num_frames]
        if bad:
            raise IndexError(f"{self.path}: frame index {bad[0]} out of range for {self.num_frames} frames")
        if not indices:
            return np.empty((0, self.height, self.width, 3), np.uint8)
        loaded = {i: self._load(self.files[i]) for i in sorted(set(indices))}
        return np.stack([loaded[i] for i in indices])

    def iter_frames(self) -> Iterator[np.ndarray]:
        """Yield every frame in order as RGB uint8 arrays of shape (H, W, 3).

        Raises:
            VideoDecodeError: a frame image is unreadable or its size differs from the others.
        """
        for file in self.files:
            yield self._load(file)

    def close(self) -> None:
        """Nothing to release; present so both readers share one interface."""

    def __enter__(self) -> "FrameFolderReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _first_size(self) -> tuple[int, int]:
        if self._size is None:
            try:
                with Image.open(self.files[0]) as image:
                    self._size = (image.height, image.width)
            except (OSError, ValueError) as e:
                raise VideoDecodeError(f"{self.files[0]}: unreadable frame ({e})") from e
        return self._size

    def _load(self, file: Path) -> np.ndarray:
        try:
            with Image.open(file) as image:
                image.load()
                # Palette, CMYK and YCbCr images have no direct array form that to_rgb understands.
                if image.mode not in ("RGB", "RGBA", "L", "LA", "I", "I;16", "F", "1"):
                    image = image.convert("RGB")
                frame = to_rgb(np.asarray(image))
        except (OSError, ValueError, SyntaxError) as e:
            # PIL raises OSError for truncated data, UnidentifiedImageError (an OSError) for non-images.
            raise VideoDecodeError(f"{file}: unreadable frame ({e})") from e
        if frame.shape[:2] != self._first_size():
            raise VideoDecodeError(f"{file}: frame size {frame.shape[:2]} differs from {self._first_size()}")
        return frame


def open_video(path: str | Path, *, fps: float = 30.0) -> VideoReader | FrameFolderReader:
    """Open a video file or a frame folder.

    Args:
        path: a video file, or a folder of frame images.
        fps: frame rate reported for frame folders (video files carry their own).

    Returns:
        A `FrameFolderReader` for a folder, else a `VideoReader`.

    Raises:
        VideoNotFoundError: nothing exists at `path`, or the folder holds no frames.
        VideoDecodeError: the file cannot be read as a video.
    """
    path = Path(path)
    if path.is_dir():
        return FrameFolderReader(path, fps=fps)
    if not path.exists():
        raise VideoNotFoundError(f"{path}: no such video file or frame folder")
    return VideoReader(path)


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def _count_missing(files: list[Path]) -> int:
    """Frames missing from a numbered sequence (00001.jpg, img_00002.jpg, ...); 0 when names carry no number."""
    numbers = []
    for file in files:
        match = re.search(r"(\d+)$", file.stem)
        if match is None:
            return 0
        numbers.append(int(match.group(1)))
    return max(numbers) - min(numbers) + 1 - len(set(numbers))
