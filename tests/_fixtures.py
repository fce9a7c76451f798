"""Helpers several test modules share: test videos written in real formats into a test's tmp_path, and
random BatchNorm statistics for streaming-vs-offline comparisons.

Import as ``from _fixtures import ...`` (the tests folder is on the path while pytest runs).
"""
from pathlib import Path

import av
import numpy as np

GRAY_STEP = 6  # frame i of `gray_frames` is a flat gray of level GRAY_STEP * i, so a decoded frame tells its index


def gray_level(i):
    """The gray level of frame(s) `i` of `gray_frames` (wraps below 240, away from the codec's clipping)."""
    return GRAY_STEP * np.asarray(i) % 240


def gray_frames(n: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    """`n` RGB frames, each a flat gray of `gray_level(i)`."""
    return [np.full((height, width, 3), gray_level(i), np.uint8) for i in range(n)]


def gray_levels(frames) -> np.ndarray:
    """The mean level of each frame: compare with `gray_level` of the indices expected."""
    return np.array([f.mean() for f in frames])


def write_truncated_video(path: Path, *, num_frames: int = 30, height: int = 48, width: int = 64,
                          keep: float = 0.5) -> Path:
    """An H.264 mp4 of random frames with its index at the front (faststart), cut after `keep` of its bytes.

    The index lets the file open and its first frames decode; the data runs out in the middle of the stream, the
    way a download or a recording that was interrupted ends.
    """
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width, stream.pix_fmt = height, width, "yuv420p"
        for _ in range(num_frames):
            frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return path


def randomise_bn(model):
    """Random BatchNorm statistics: timm zero-inits some residual BNs, which would hide temporal paths in
    streaming-vs-offline comparisons."""
    import torch

    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.weight.data = torch.rand(m.weight.shape, generator=g) + 0.5
            m.running_mean = torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1
    return model
