"""Streams of one server: each owns its engine state and a one-frame queue where the newest frame wins.

    frames (browser WebSocket | server-side source thread) ──► Session.offer ──► pending slot (newest wins;
        a frame it replaces is dropped and counted) ──► the session's worker task ──► thread pool: decode +
        engine.push (own state; one compiled model for all) ──► prediction / events ──► history (polling) and
        each subscriber's bounded queue (WebSocket, Server-Sent Events; a full queue loses its oldest message)

Why one pending slot: a live stream is only worth its newest frame. A queue of stale frames adds their processing
time to every later result's latency; dropping them keeps latency bounded and the drop count tells the client.
A session's frames are processed one at a time in order (its engine state is sequential), while different
sessions run side by side on the pool's threads (OpenVINO releases the GIL during inference, each stream
infers on its own infer request). A slow subscriber only loses its own messages: nothing waits for it.

The engine is anything with ``push(frame, frame_index) -> result | None``, ``labels`` and ``num_processed`` (model
steps so far), where a result has ``to_json()``, ``frame_index`` and ``probs``: the recognition `StreamingEngine`,
or a detector's `streamact.serve.detection.DetectionStream`.

Warm-up: a model's first step in a process is slow (the runtime lays out its memory, the image decoders load), so a
stream that paid for it would see its next frame dropped as stale. `SessionManager.warm_up` pays it once at server
start on a throwaway engine; a new stream then only makes its own state (OpenVINO: an infer request on the
compiled model), never compiles anything.
"""
from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any

import numpy as np

from streamact.errors import UserError
from streamact.serve.limits import Limits

__all__ = ["Limits", "Session", "SessionManager", "TooManyStreams", "FrameRejected", "decode_frame", "check_image",
           "put_newest"]


class TooManyStreams(UserError):
    """The server already runs `Limits.max_streams` streams."""


class FrameRejected(UserError):
    """A frame that is not an image the server accepts; `code` says why (``bad_image``, ``frame_too_large``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_image(data: bytes, max_pixels: int) -> None:
    """Check that `data` is a JPEG / PNG / WebP image no larger than `max_pixels`, reading only its header.

    Raises:
        FrameRejected: ``bad_image`` for anything else, ``frame_too_large`` for too many pixels.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            kind, (width, height) = image.format, image.size
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise FrameRejected("bad_image", f"a frame must be a JPEG, PNG or WebP image ({e})") from None
    if kind not in ("JPEG", "PNG", "WEBP"):
        raise FrameRejected("bad_image", f"a frame must be a JPEG, PNG or WebP image, got {kind}")
    if width * height > max_pixels:
        raise FrameRejected("frame_too_large", f"frame of {width}x{height} pixels exceeds the limit of "
                                               f"{max_pixels} pixels; send smaller frames")


def decode_frame(data: bytes) -> np.ndarray:
    """An encoded image -> RGB uint8 (H, W, 3).

    Raises:
        FrameRejected: ``bad_image`` if it does not decode (e.g. truncated).
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.array(image.convert("RGB"))
    except (OSError, ValueError) as e:
        raise FrameRejected("bad_image", f"frame does not decode ({e})") from None


class Session:
    """One stream: its engine (own state), its newest-wins frame slot, its results and its counters.

    Create through `SessionManager.open`. Counters: ``frames_in`` (accepted frames), ``processed`` (pushed to the
    engine), ``dropped`` (replaced in the slot by a newer frame before being processed), ``rate_limited``
    (refused: faster than `Limits.max_fps`), ``corrupt`` (failed to decode or to go through the engine),
    ``predictions``. ``stopped`` is set when the stream closes, however it closes: a server-side source's thread
    stops reading there.
    """

    def __init__(self, stream_id: str, kind: str, name: str, engine, detector, executor: Executor,
                 limits: Limits, on_latency: Callable[[float], None]) -> None:
        self.id, self.kind, self.name = stream_id, kind, name
        self.engine, self.detector = engine, detector
        self.limits = limits
        self.created = time.time()
        self.last_active = time.monotonic()
        self.frames_in = self.processed = self.dropped = self.rate_limited = self.corrupt = self.predictions = 0
        self.status = "running"
        self.error: str | None = None
        self.stopped = threading.Event()
        self.results: deque[dict] = deque(maxlen=limits.history)
        self._seq = itertools.count()
        self._subscribers: set[asyncio.Queue] = set()
        self._recent: deque[float] = deque()  # arrival times within the last second (rate limit)
        self._pending: tuple[Any, float, int] | None = None
        self._ending: str | None = None  # set by `end`: the error ("" for none) to finish with
        self._wake = asyncio.Event()
        self._executor = executor
        self._on_latency = on_latency
        self._task = asyncio.get_running_loop().create_task(self._run())

    def offer(self, frame: bytes | np.ndarray, received: float | None = None) -> bool:
        """Hand the session its next frame (encoded bytes or an RGB array); returns False if rate-limited.

        The frame takes the pending slot; a frame still waiting there is dropped (newest wins).
        """
        now = time.monotonic()
        self.last_active = now
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.limits.max_fps:
            self.rate_limited += 1
            return False
        self._recent.append(now)
        if self._pending is not None:
            self.dropped += 1
        self._pending = (frame, now if received is None else received, self.frames_in)
        self.frames_in += 1
        self._wake.set()
        return True

    def subscribe(self) -> asyncio.Queue:
        """A queue receiving every later message of this stream (dicts; None when the stream closes)."""
        queue: asyncio.Queue = asyncio.Queue(self.limits.subscriber_queue)
        self._subscribers.add(queue)
        if self.status != "running":
            queue.put_nowait(None)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._subscribers.discard(queue)

    def publish(self, message: dict) -> None:
        """Record `message` (numbered ``seq``) and pass it to every subscriber, dropping a full queue's oldest."""
        message = {"seq": next(self._seq), "stream": self.id, **message}
        self.results.append(message)
        for queue in self._subscribers:
            put_newest(queue, message)

    def end(self, error: str | None = None) -> None:
        """The stream's input ended (a server-side source ran out or failed): no more frames will come.

        The frame still waiting, if any, is processed first; then the stream's status becomes ``ended`` (or
        ``failed``) and an ``end`` message is the last result.
        """
        if self.status == "running" and self._ending is None:
            self._ending = error or ""
            self._wake.set()

    async def close(self, reason: str = "stopped") -> None:
        """Stop the worker, free the engine state and tell the subscribers (a ``closed`` message with `reason`)."""
        self.status = "closed"
        self.stopped.set()
        self.publish({"type": "closed", "reason": reason})
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.engine = self.detector = None  # the engine's state (OpenVINO: its infer request) goes with it
        for queue in self._subscribers:
            put_newest(queue, None)

    def info(self) -> dict:
        """JSON-able description and counters."""
        return {"id": self.id, "kind": self.kind, "source": self.name, "status": self.status, "error": self.error,
                "frames_in": self.frames_in, "processed": self.processed, "dropped": self.dropped,
                "rate_limited": self.rate_limited, "corrupt": self.corrupt, "predictions": self.predictions,
                "idle_s": round(time.monotonic() - self.last_active, 3)}

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            item, self._pending = self._pending, None
            if item is None:
                if self._ending is not None:
                    self.status = "failed" if self._ending else "ended"
                    self.error = self._ending or None
                    self.publish({"type": "end", "status": self.status, "error": self.error})
                    return
                continue
            if self._ending is not None:
                self._wake.set()  # come back for the end once this frame is done
            frame, received, index = item
            try:
                result, events = await loop.run_in_executor(self._executor, _step, self.engine, self.detector,
                                                            frame, index)
            except FrameRejected as e:
                self.corrupt += 1
                self.publish({"type": "error", "code": e.code, "message": str(e), "frame": index})
                continue
            except Exception as e:  # one frame the engine cannot take must not end the stream or the server
                self.corrupt += 1
                self.publish({"type": "error", "code": "frame_failed", "frame": index,
                              "message": f"the model could not process frame {index}: {type(e).__name__}: {e}"})
                continue
            self.processed += 1
            if result is None:
                continue
            latency = (time.monotonic() - received) * 1e3
            self._on_latency(latency)
            self.predictions += 1
            self.publish({"type": "prediction", **result.to_json(), "server_latency_ms": round(latency, 3),
                          "frames_in": self.frames_in, "dropped": self.dropped,
                          "events": [e.to_json() for e in events]})


def _step(engine, detector, frame, index: int):
    """Runs on the pool: decode, one engine step, the events it decides."""
    rgb = decode_frame(frame) if isinstance(frame, bytes | bytearray) else frame
    result = engine.push(rgb, index)
    events = [] if result is None or detector is None else detector.update(result.frame_index, result.probs)
    return result, events


def put_newest(queue: asyncio.Queue, message: dict | None) -> None:
    """Put `message` in a subscriber's `queue`, dropping the queue's oldest message if it is full."""
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(message)


class SessionManager:
    """All streams of a server: opens them within the limit, closes them, reaps idle ones, sums the metrics.

    Args:
        engine_factory: makes ``(engine, detector)`` for a new stream (a fresh state on the shared model).
        executor: the pool that runs decoding and inference.
        limits: the server's limits.
    """

    def __init__(self, engine_factory: Callable[[], tuple[Any, Any]], executor: Executor, limits: Limits) -> None:
        self.engine_factory = engine_factory
        self.executor = executor
        self.limits = limits
        self.sessions: dict[str, Session] = {}
        self.opened = self.closed = 0
        self._latencies: deque[float] = deque(maxlen=4096)
        self._totals = dict.fromkeys(("frames_in", "processed", "dropped", "rate_limited", "corrupt",
                                      "predictions"), 0)  # of closed streams

    def warm_up(self) -> None:
        """Push black JPEG frames through a throwaway engine until the model has stepped once (an engine steps
        within its first clip; see the module docstring). Run it on the pool before the first stream opens; the
        streams' counters do not see it."""
        from PIL import Image

        engine, detector = self.engine_factory()
        buffer = io.BytesIO()
        Image.new("RGB", (64, 64)).save(buffer, format="JPEG")
        for index in itertools.count():
            _step(engine, detector, buffer.getvalue(), index)
            if engine.num_processed:
                return

    def open(self, kind: str, name: str) -> Session:
        """A new stream with a fresh engine state.

        Raises:
            TooManyStreams: at `Limits.max_streams`.
        """
        if len(self.sessions) >= self.limits.max_streams:
            raise TooManyStreams(f"the server already runs {len(self.sessions)} streams (limit "
                                 f"{self.limits.max_streams}); stop one or try again later")
        engine, detector = self.engine_factory()
        session = Session(uuid.uuid4().hex[:12], kind, name, engine, detector, self.executor, self.limits,
                          self._latencies.append)
        self.sessions[session.id] = session
        self.opened += 1
        return session

    async def close(self, stream_id: str, reason: str = "stopped") -> None:
        """Close a stream and free its state (no-op if it is already gone)."""
        session = self.sessions.pop(stream_id, None)
        if session is None:
            return
        await session.close(reason)
        for key in self._totals:
            self._totals[key] += getattr(session, key)
        self.closed += 1

    async def close_all(self) -> None:
        for stream_id in list(self.sessions):
            await self.close(stream_id, "server shutting down")

    async def reap_idle(self) -> None:
        """Close the streams idle for longer than `Limits.idle_timeout_s` (their sources stop with them)."""
        now = time.monotonic()
        idle = [s.id for s in self.sessions.values() if now - s.last_active > self.limits.idle_timeout_s]
        for stream_id in idle:
            await self.close(stream_id, f"idle timeout: no frame for {self.limits.idle_timeout_s:g} s")

    def metrics(self) -> dict:
        """Streams open, frames in / processed / dropped (all streams ever), latency percentiles, memory."""
        totals = dict(self._totals)
        for session in self.sessions.values():
            for key in totals:
                totals[key] += getattr(session, key)
        latencies = np.array(self._latencies) if self._latencies else None
        return {"streams": len(self.sessions), "streams_opened": self.opened, "streams_closed": self.closed,
                **totals,
                "latency_ms": {q: None if latencies is None else round(float(np.percentile(latencies, p)), 3)
                               for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
                "rss_mb": round(_rss_mb(), 1)}


def _rss_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    import os

    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return 0.0
