"""Shared test setup: one torch thread per xdist worker (2 workers on 2 cores), deterministic seeds."""
import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
# OpenVINO's compiled-model cache goes to a temporary folder, not the user's ~/.cache.
os.environ.setdefault("STREAMACT_CACHE_DIR", tempfile.mkdtemp(prefix="streamact-test-cache-"))

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    np.random.seed(0)


def portrait_pattern(height=144, width=176):
    """An asymmetric, codec-friendly picture: red grows to the right, green downwards, blue in the top-left corner,
    so every rotation and mirror of it is distinguishable after H.264."""
    y, x = np.mgrid[0:height, 0:width]
    image = np.stack([x * 255 // (width - 1), y * 255 // (height - 1), np.zeros_like(x)], axis=-1).astype(np.uint8)
    image[: height // 4, : width // 4, 2] = 255
    return image


@pytest.fixture
def tagged_video(tmp_path):
    """Write `portrait_pattern()` frames to an mp4 tagged with a display matrix, as a phone does.

    Call as tagged_video(name, degrees, hflip=False, num_frames=6) -> (path, stored frame); `degrees` is
    counter-clockwise, as FFmpeg's display matrix (and PyAV's `VideoFrame.rotation`) counts it.
    """
    import av

    def write(name, degrees, hflip=False, num_frames=6):
        path = tmp_path / name
        stored = portrait_pattern()
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libx264", rate=10)
            stream.height, stream.width = stored.shape[:2]
            stream.pix_fmt = "yuv420p"
            stream.options = {"crf": "10"}
            stream.set_display_rotation(degrees, hflip=hflip)
            for _ in range(num_frames):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(stored, format="rgb24")))
            container.mux(stream.encode())
        return path, stored

    return write
