"""MP4 writer (PyAV, H.264 yuv420p). Frames are RGB uint8 arrays of shape (H, W, 3)."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np

__all__ = ["VideoWriter", "write_video"]


class VideoWriter:
    """Write RGB frames to a video file; use as a context manager.

    The frame size is fixed by the first frame; H.264 needs even sizes, so odd sizes are padded by one
    pixel (edge-replicated) rather than rejected. The frame rate is kept exact: a float such as 29.97002997
    (NTSC's 30000/1001, as a source reports it) is written as that fraction, not rounded to 30, so a copy of a
    video keeps its duration.
    """

    def __init__(self, path: str | Path, fps: float | Fraction = 30.0, *, codec: str = "libx264",
                 crf: int = 23) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The NTSC family (24000/1001, 30000/1001, 60000/1001) has denominator 1001; floats of it come back exactly.
        self.rate = Fraction(fps).limit_denominator(1001)
        if self.rate <= 0:
            raise ValueError(f"{self.path}: frame rate must be positive, got {fps}")
        self.fps = float(self.rate)
        self._container = av.open(str(self.path), mode="w")
        self._stream = self._container.add_stream(codec, rate=self.rate)
        self._stream.pix_fmt = "yuv420p"
        # x264's output depends on its thread count, which defaults to the CPUs visible to the process: a fixed
        # count makes a given list of frames encode to the same bytes on every machine (generated datasets and the
        # demo stream are reproducible).
        self._stream.options = {"crf": str(crf), "preset": "veryfast"}
        self._stream.codec_context.thread_count = 2
        self._size: tuple[int, int] | None = None
        self.num_frames = 0

    def write(self, frame: np.ndarray) -> None:
        if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected an RGB uint8 frame (H, W, 3), got {frame.dtype} {frame.shape}")
        h, w = frame.shape[:2]
        pad_h, pad_w = h % 2, w % 2
        if pad_h or pad_w:
            frame = np.pad(frame, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")
        if self._size is None:
            self._size = frame.shape[:2]
            self._stream.height, self._stream.width = self._size
        elif frame.shape[:2] != self._size:
            raise ValueError(f"{self.path}: frame size changed from {self._size} to {frame.shape[:2]}")
        for packet in self._stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
            self._container.mux(packet)
        self.num_frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        if self._size is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_video(path: str | Path, frames, fps: float = 30.0) -> Path:
    """Write an iterable of RGB uint8 frames to `path` and return it."""
    with VideoWriter(path, fps) as writer:
        for frame in frames:
            writer.write(np.asarray(frame))
    return Path(path)
