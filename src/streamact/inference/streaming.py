"""Frame-by-frame recognition: each pushed frame costs one `forward_step`, never a whole clip.

    frame (any size, RGB/BGR/gray/RGBA) ─► every frame_interval-th source frame ─► preprocess (model's pretrained_cfg)
        ─► runtime.step(frame, state) ─► logits ─► softmax ─► smoothing (EMA / window) ─► every stride-th: Prediction

No threads and no globals: one engine per stream; concurrency belongs to the caller (e.g. serve/).
"""
from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from streamact.inference.runtimes import Runtime, as_runtime
from streamact.io.frames import to_rgb
from streamact.transforms.frame import preprocess_frame

__all__ = ["Prediction", "StreamingEngine"]


@dataclass
class Prediction:
    """One output of the engine.

    Attributes:
        frame_index: index of the frame that produced it in the source (as given to `push`; by default 0-based,
            counting every pushed frame).
        label: name of the top class.
        label_index: its index.
        score: its smoothed probability.
        topk: [(label, probability), ...] best first.
        latency_ms: preprocessing + inference time of this frame.
        probs: the smoothed probability vector.
        warm: the model has seen a full window (``clip_len`` processed frames) since the last reset. Earlier
            predictions rest on fewer frames, mostly from before the action, so their top classes are often
            near-ties; the demo's accuracy and the benchmark's precision agreement count warm steps.
    """

    frame_index: int
    label: str
    label_index: int
    score: float
    topk: list[tuple[str, float]]
    latency_ms: float
    probs: np.ndarray = field(repr=False)
    warm: bool = True

    def to_json(self) -> dict:
        return {"frame": self.frame_index, "label": self.label, "score": round(self.score, 5),
                "topk": [[n, round(p, 5)] for n, p in self.topk], "latency_ms": round(self.latency_ms, 3),
                "warm": self.warm}


class StreamingEngine:
    """Push frames at any rate; get a `Prediction` every `stride` processed frames.

    Args:
        model_or_runtime: a streamable model (torch) or a `Runtime` (ONNX Runtime, OpenVINO).
        stride: emit a prediction every `stride` processed frames (1 = every processed frame).
        frame_interval: process every n-th source frame (temporal subsampling); default: the model's. After
            dropped frames, the next frame at least `frame_interval` source frames after the last processed one
            is processed.
        smoothing: "none", "ema" (exponential moving average of probabilities) or "window" (mean of the
            last `window` probability vectors); default: the model's own (``pretrained_cfg.events.smoothing``,
            the smoothing its event thresholds were tuned with).
        ema_alpha: weight of the newest frame for "ema".
        window: length of the "window" average.
        topk: how many classes each prediction lists.
        input_format: channel order of pushed colour frames, "rgb" or "bgr" (OpenCV cameras give BGR).
    """

    def __init__(self, model_or_runtime, *, stride: int = 1, frame_interval: int | None = None,
                 smoothing: str | None = None, ema_alpha: float = 0.3, window: int = 8, topk: int = 3,
                 input_format: str = "rgb") -> None:
        if input_format not in ("rgb", "bgr"):
            raise ValueError(f"input_format must be rgb or bgr, got {input_format!r}")
        if stride < 1:
            raise ValueError("stride must be >= 1")
        self.runtime: Runtime = as_runtime(model_or_runtime)
        cfg = self.runtime.pretrained_cfg
        smoothing = smoothing or cfg.events.smoothing
        if smoothing not in ("none", "ema", "window"):
            raise ValueError(f"smoothing must be none, ema or window, got {smoothing!r}")
        self.labels = list(cfg.label_names or [str(i) for i in range(cfg.num_classes)])
        self.stride = stride
        self.frame_interval = frame_interval or cfg.frame_interval
        self.smoothing, self.ema_alpha, self.window, self.topk = smoothing, ema_alpha, window, topk
        self.input_format = input_format
        self.reset()

    def reset(self) -> None:
        """Forget the stream: zero state, clear smoothing. Call at a new video, a scene cut or a long gap."""
        self.state = self.runtime.init_state()
        self.frame_index = -1  # source index of the last pushed frame
        self._last_processed: int | None = None  # source index of the last processed frame
        self.num_processed = 0
        self._ema: np.ndarray | None = None
        self._recent: deque[np.ndarray] = deque(maxlen=self.window)

    def push(self, frame: np.ndarray, frame_index: int | None = None) -> Prediction | None:
        """Feed the next frame of the stream; returns a prediction when one is due, else None.

        Args:
            frame: the frame.
            frame_index: its index in the source (`FrameSource.index`), which jumps where frames were dropped;
                default: one more than the last pushed frame's.
        """
        self.frame_index = self.frame_index + 1 if frame_index is None else frame_index
        if self._last_processed is not None and self.frame_index - self._last_processed < self.frame_interval:
            return None
        self._last_processed = self.frame_index
        t0 = time.perf_counter()
        rgb = to_rgb(frame)
        if self.input_format == "bgr" and rgb.shape[-1] == 3 and np.asarray(frame).ndim == 3:
            rgb = rgb[..., ::-1]
        x = preprocess_frame(rgb, self.runtime.pretrained_cfg)  # (1, C, H, W) float32
        logits, self.state = self.runtime.step(x, self.state)
        probs = _softmax(np.asarray(logits, dtype=np.float64).reshape(-1))
        self.num_processed += 1
        probs = self._smooth(probs)
        if (self.num_processed - 1) % self.stride:
            return None
        order = np.argsort(-probs)[: self.topk]
        best = int(order[0])
        return Prediction(self.frame_index, self.labels[best], best, float(probs[best]),
                          [(self.labels[i], float(probs[i])) for i in order],
                          (time.perf_counter() - t0) * 1e3, probs,
                          warm=self.num_processed >= self.runtime.pretrained_cfg.clip_len)

    def _smooth(self, probs: np.ndarray) -> np.ndarray:
        if self.smoothing == "ema":
            self._ema = probs if self._ema is None else self.ema_alpha * probs + (1 - self.ema_alpha) * self._ema
            return self._ema
        if self.smoothing == "window":
            self._recent.append(probs)
            return np.mean(self._recent, axis=0)
        return probs


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()
