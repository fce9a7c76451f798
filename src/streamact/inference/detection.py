"""Online spatio-temporal action detection: push frames one at a time, get boxes, labels and tube ids per frame.

    frame (any size) ─► resize to the model's S x S, normalise ─► buffer of the last t frames
        every t-th frame (one clip): runtime.step(clip, feature cache of K clips) ─► heatmap, movement, size
        ─► decode_tubelets (numpy, source pixels) ─► TubeLinker.update (extends, starts or ends tubes; stable ids)
        ─► FrameDetections for every frame

Each step embeds only the newest clip of t frames (AMMA: t = 4) and reads the other K - 1 clip features from the
state, so a frame costs 1/t of one clip embedding plus the head.

Two modes for the frames between steps:

* ``zero-delay``: every frame is answered as soon as it is pushed, with the boxes of the latest step's tubelets
  (their last key frame). Boxes move in jumps of t frames.
* ``interpolated``: frames are answered when the step that ends their clip has run, with each tubelet's box
  linearly interpolated between its last two key frames, so up to t - 1 frames of delay (AMMA: 3).

Warm-up: the first step runs at frame t; zero-delay answers frames 1..t-1 with no detections, interpolated mode
answers them from the first tubelet. The first clip fills the whole cache (the stream looks static before it), so
the first K - 1 steps see less motion history than later ones. A stream shorter than t frames gets one step at
`finish`, over its frames padded with the first one.

Tube ids count the tubes shown, from 0 in the order they first appear (the linker numbers every tubelet that starts
a tube, most of them too weak to show); tubes never shown get theirs when they end, so the per-frame ids and the
tubes `finish` returns agree.

A stream keeps one frame size: the boxes are in source pixels and the tubes span frames, so a frame of another
size raises `UserError`; `reset` starts a new stream (of any size). Call `finish` at the end of a stream: it runs
a last step over the final t frames if frames remain after the last step (as the offline evaluation does) and
returns the linked tubes.
"""
from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from streamact.errors import UserError
from streamact.inference.detection_decode import decode_tubelets
from streamact.inference.runtimes import Runtime, as_runtime
from streamact.inference.tubes import Tube, TubeLinker, Tubelet
from streamact.io.frames import to_rgb

__all__ = ["FrameDetections", "DetectionEngine", "MODES"]

MODES = ("zero-delay", "interpolated")


@dataclass
class FrameDetections:
    """The detections on one frame.

    Attributes:
        frame: 1-based frame number in the stream (every pushed frame counts).
        boxes: (N, 4) float32 x1, y1, x2, y2 in source pixels.
        labels: (N,) class indices.
        scores: (N,) scores after the linker's tubelet NMS.
        tube_ids: (N,) id of the tube each box belongs to (counting the tubes shown), stable while it is linked.
        label_names: (N,) class names.
        latency_ms: preprocessing + inference + decoding + linking time spent in the `push` that answered it.
    """

    frame: int
    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray
    tube_ids: np.ndarray
    label_names: list[str] = field(default_factory=list)
    latency_ms: float = 0.0

    def __len__(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict:
        return {"frame": self.frame, "latency_ms": round(self.latency_ms, 3),
                "detections": [{"box": [round(float(v), 1) for v in box], "label": name, "label_index": int(label),
                                "score": round(float(score), 5), "tube": int(tube)}
                               for box, label, name, score, tube in zip(self.boxes, self.labels, self.label_names,
                                                                        self.scores, self.tube_ids)]}


class DetectionEngine:
    """Push frames; get `FrameDetections` for every frame (see the module docstring for the two modes).

    Args:
        model_or_runtime: a tubelet detector with `init_state` / `forward_step` (AMMA), or a runtime of one: its
            `TorchRuntime`, or an `OnnxRuntime` / `OpenVINORuntime` of its exported step graph (the same decoding
            and linking, in numpy, follow every runtime).
        mode: ``zero-delay`` or ``interpolated``.
        top_k: tubelet candidates decoded per step (over all classes).
        min_score: candidates scoring at most this are dropped at decoding.
        min_display_score: tubelets scoring below this (after the linker's NMS) are linked but not reported per
            frame; tubes are filtered by the linker's own `min_score` at `finish`.
        input_format: channel order of pushed colour frames, ``rgb`` or ``bgr``.
        keep_tubes: keep the tubes that end mid-stream for `finish` to return. A live stream that never asks for
            them (the server) passes False, so memory stays flat however long it runs; `finish` then returns only
            the tubes still running at the end.
        on_step: called with (end frame, all decoded tubelets) after every step (the offline evaluation records
            the steps through it).
        **linker_kwargs: `TubeLinker` options.
    """

    def __init__(self, model_or_runtime, *, mode: str = "zero-delay", top_k: int = 100, min_score: float = 0.01,
                 min_display_score: float = 0.3, input_format: str = "rgb", keep_tubes: bool = True,
                 on_step: Callable[[int, list[Tubelet]], None] | None = None, **linker_kwargs) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
        if input_format not in ("rgb", "bgr"):
            raise ValueError(f"input_format must be rgb or bgr, got {input_format!r}")
        self.runtime: Runtime = as_runtime(model_or_runtime)
        detection = getattr(self.runtime, "detection", None)
        if detection is None:
            model = getattr(self.runtime, "model", None)
            raise UserError(f"{type(model or self.runtime).__name__} is not a tubelet detector; `streamact detect` "
                            "needs a detection checkpoint (e.g. AMMA, trained with `data.format: detection`)")
        cfg = self.runtime.pretrained_cfg
        self.num_clips, self.clip_len, self.size = detection["num_clips"], detection["clip_len"], cfg.input_size[-1]
        self.labels = list(cfg.label_names or [str(i) for i in range(cfg.num_classes)])
        std = np.asarray(cfg.std, np.float32)[:, None, None] * 255  # (3, 1, 1)
        self._scale, self._offset = 1 / std, -np.asarray(cfg.mean, np.float32)[:, None, None] * 255 / std
        self.mode, self.top_k, self.min_score, self.min_display_score = mode, top_k, min_score, min_display_score
        self.input_format, self.on_step, self.keep_tubes = input_format, on_step, keep_tubes
        self.linker = TubeLinker(**linker_kwargs)
        self.reset()

    def reset(self) -> None:
        """Start a new stream (any frame size): empty cache, no tubes, frame numbers from 1."""
        self.state = self.runtime.init_state()
        self.linker.reset()
        self.frame = 0  # frames pushed
        self.source_size: tuple[int, int] | None = None  # (height, width)
        self.num_steps = 0
        self._clip: deque[np.ndarray] = deque(maxlen=self.clip_len)  # the last t preprocessed frames
        self._last_step = 0  # frame of the last step
        self._latest: list[tuple[int, Tubelet]] = []  # (tube id, tubelet) of the last step, shown
        self._answered = 0  # frames answered so far
        self._tubes: list[Tube] = []  # ended tubes that pass the linker's filters
        self._ids: dict[int, int] = {}  # the linker's id of a tube -> the id shown, for the tubes the linker holds
        self._next_id = 0

    def push(self, frame: np.ndarray) -> list[FrameDetections]:
        """Feed the next frame; returns the frames answered by this push (zero-delay: this one; interpolated: none,
        or the frames of the clip this frame completes)."""
        t0 = time.perf_counter()
        rgb = to_rgb(frame)
        if self.input_format == "bgr" and np.asarray(frame).ndim == 3 and np.asarray(frame).shape[-1] >= 3:
            rgb = np.ascontiguousarray(rgb[..., ::-1])
        size = rgb.shape[:2]
        if self.source_size is None:
            self.source_size = size
        elif size != self.source_size:
            raise UserError(f"frame {self.frame + 1} is {size[1]}x{size[0]} but the stream started at "
                            f"{self.source_size[1]}x{self.source_size[0]}; boxes and tubes are in source pixels, so "
                            "a stream keeps one size (start a new stream, `reset()`, after a size change)")
        self.frame += 1
        self._clip.append(self._preprocess(rgb))
        if self.frame % self.clip_len == 0:
            self._step()
        return self._answer(self.frame if self.mode == "zero-delay" else self._last_step, t0)

    def finish(self) -> tuple[list[FrameDetections], list[Tube]]:
        """End the stream: a last step over the final t frames if frames remain after the last step, the frames not
        yet answered, and the linked tubes (filtered as `TubeLinker.finish`); then `reset`.

        Returns:
            (frames answered now, tubes sorted by id).
        """
        t0 = time.perf_counter()
        answered: list[FrameDetections] = []
        if self.frame > self._last_step:
            while len(self._clip) < self.clip_len:  # a stream shorter than one clip: pad with its first frame
                self._clip.appendleft(self._clip[0])
            self._step()
            answered = self._answer(self.frame, t0)
        tubes = self._tubes + self._renumbered(self.linker.finish(self.frame))
        tubes.sort(key=lambda tube: tube.tube_id)
        self.reset()
        return answered, tubes

    def _preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 -> (3, S, S) float32 normalised, resized exactly as the training samples."""
        from streamact.transforms.boxes import resize_frame

        # Channels first while still uint8 (a quarter of the bytes to move), then (x - mean) / std in place.
        out = np.ascontiguousarray(resize_frame(rgb, self.size).transpose(2, 0, 1)).astype(np.float32)
        out *= self._scale
        out += self._offset
        return out

    def _step(self) -> None:
        clip = np.stack(self._clip, axis=1)[None]  # (1, 3, t, S, S)
        (heatmap, movement, size), self.state = self.runtime.step(clip, self.state)
        tubelets = decode_tubelets(np.asarray(heatmap)[0], np.asarray(movement)[0], np.asarray(size)[0],
                                   end_frame=self.frame, clip_len=self.clip_len, source_size=self.source_size,
                                   top_k=self.top_k, min_score=self.min_score)
        if self.on_step is not None:
            self.on_step(self.frame, tubelets)
        linked = self.linker.update(self.frame, tubelets)
        self._latest = [(self._shown_id(tube_id), t) for tube_id, t in linked if t.score >= self.min_display_score]
        ended = self._renumbered(self.linker.pop_finished())  # only tubes that pass the filters
        if self.keep_tubes:
            self._tubes += ended
        held = self.linker.held_ids()
        self._ids = {tube_id: shown for tube_id, shown in self._ids.items() if tube_id in held}
        self._last_step = self.frame
        self.num_steps += 1

    def _shown_id(self, tube_id: int) -> int:
        if tube_id not in self._ids:
            self._ids[tube_id] = self._next_id
            self._next_id += 1
        return self._ids[tube_id]

    def _renumbered(self, tubes: list[Tube]) -> list[Tube]:
        for tube in tubes:
            tube.tube_id = self._shown_id(tube.tube_id)
        return tubes

    def _answer(self, upto: int, t0: float) -> list[FrameDetections]:
        """FrameDetections for frames after the last answered one up to `upto`, from the last step's tubelets."""
        frames = range(self._answered + 1, upto + 1)
        if not frames:
            return []
        self._answered = upto
        latency = (time.perf_counter() - t0) * 1e3
        return [self._detections(f, latency) for f in frames]

    def _detections(self, frame: int, latency_ms: float) -> FrameDetections:
        rows = []
        for tube_id, t in self._latest:
            if self.mode == "zero-delay" or frame >= t.key_frames[-1]:
                box = np.asarray(t.boxes[-1], np.float32)
            else:  # interpolated between the tubelet's key frames
                frames, boxes = t.per_frame()
                box = boxes[np.clip(frame - frames[0], 0, len(frames) - 1)].astype(np.float32)
            rows.append((box, t.label, t.score, tube_id))
        if not rows:
            return FrameDetections(frame, np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32),
                                   np.zeros(0, np.int64), [], latency_ms)
        boxes, labels, scores, ids = zip(*rows)
        return FrameDetections(frame, np.stack(boxes), np.array(labels, np.int64), np.array(scores, np.float32),
                               np.array(ids, np.int64), [self.labels[i] for i in labels], latency_ms)
