"""Helpers of the server tests: a small numpy model (real engines and sessions, a model that costs nothing), a tiny
detector, encoded frames and a server in a thread."""
from __future__ import annotations

import contextlib
import io

import numpy as np
from PIL import Image

from streamact.models._pretrained import PretrainedCfg

LABELS = ("no_gesture", "red", "green")


class ColourRuntime:
    """Scores each frame by its mean red and green (after preprocessing); the state counts steps."""

    name = "colour"

    def __init__(self) -> None:
        self.pretrained_cfg = PretrainedCfg(input_size=(3, 16, 16), clip_len=2, num_segments=None,
                                            frame_interval=1, num_classes=3, label_names=LABELS)
        self.states = 0

    def init_state(self) -> dict:
        self.states += 1
        return {"steps": 0}

    def step(self, frame, state):
        x = np.asarray(frame)
        state["steps"] += 1
        logits = np.array([[0.0, 8 * float(x[0, 0].mean()), 8 * float(x[0, 1].mean())]], dtype=np.float32)
        return logits, state


def tiny_detector(labels=("wave", "walk")):
    """A tiny random-weight AMMA (K=2 clips of t=2 frames, 64 px) whose heatmap peaks (scores about 0.25 to 0.55 on
    synthetic:detection scenes) fall on both sides of the server's display score (0.3), with boxes of 3 x 3 grid
    cells (a random size branch would give boxes of negative width)."""
    import torch

    from streamact import create_model

    torch.manual_seed(0)
    model = create_model("amma_mobilenetv2", num_classes=len(labels), num_clips=2, clip_len=2, img_size=64,
                         label_names=list(labels)).eval()
    with torch.no_grad():
        model.head.center[-1].weight.mul_(50)
        model.head.center[-1].bias.fill_(-1.0)
        model.head.size[-1].weight.zero_()
        model.head.size[-1].bias.fill_(3.0)
    return model


def encode(rgb: np.ndarray, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt)
    return buffer.getvalue()


def solid(colour: tuple[int, int, int], size: int = 24) -> np.ndarray:
    return np.full((size, size, 3), colour, np.uint8)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_in_thread(app, **options):
    """Run `app` with uvicorn (and `options`) on a free loopback port in a thread; yields its base URL."""
    import threading
    import time

    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning",
                                           **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{server.config.port}"
    finally:
        server.should_exit = True
        thread.join(10)
