"""The ASGI app of `streamact serve`: the live page, the stream API, health and metrics.

    browser camera ──(WebSocket /ws: JPEG / PNG frames in, JSON results out)──┐
    POST /api/streams {"source": ...} ──► allow-list ──► source thread ───────┤
                                                                              ▼
                        SessionManager: one Session per stream (own engine state, newest-wins frame slot)
                                                                              │ thread pool (one compiled model)
                  results ◄── WebSocket /api/streams/{id}/ws │ SSE /api/streams/{id}/events │ GET .../results

Endpoints (OpenAPI schema at /openapi.json, browsable at /docs):

* ``GET /`` the live page; ``GET /healthz``; ``GET /metrics`` (streams, frames in / processed / dropped,
  latency percentiles, memory); ``GET /api/info`` (model, labels, limits, worker threads);
* ``POST /api/streams`` opens a server-side source (file or folder under an allowed root, an allowed URL, a
  camera index if cameras are allowed, ``synthetic:gestures``), ``GET /api/streams`` lists, ``GET`` / ``DELETE
  /api/streams/{id}`` describes / stops one, ``GET /api/streams/{id}/results?after=SEQ`` polls its results;
* ``WS /ws``: the connection is a stream. The server first sends ``{"type": "hello", ...}``; the client sends
  binary messages, each one encoded frame, and may send ``{"type": "ping"}`` (answered by its counters). The
  server sends ``prediction`` messages (``frame`` = the index of the frame among those the client sent; a
  recognizer's carry ``label``, ``topk`` and ``events``, a detector's ``detections``: box, label, score and tube
  id of each, in the pixels of the frame sent), ``error`` messages for refused frames, and closes with a code for
  what cannot go on.

The calls about a stream by id go through a `StreamRegistry` (`streamact.serve.registry`): this server's own streams,
or, as Ray Serve replicas (`streamact serve --ray`), the other replicas' server-side sources too; there every
response also names the replica that answered (header ``X-Streamact-Instance``).

Errors. HTTP: 401 token, 403 source not allowed, 404 unknown stream, 422 malformed request or a source that does
not open, 503 too many streams; the body is ``{"detail": {"code": ..., "message": ...}}``. WebSocket close codes:
4401 token, 1013 too many streams, 1009 message or frame too large, 1007 not an image, 1003 unknown message,
4408 idle timeout. Frames faster than the limit are refused with an ``error`` message (code ``rate_limited``) and
counted; the connection stays open.
"""
from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from streamact.serve.detection import detection_engines
from streamact.serve.registry import StreamRegistry
from streamact.serve.session import FrameRejected, Limits, Session, SessionManager, TooManyStreams, check_image

__all__ = ["SourcePolicy", "SourceNotAllowed", "create_app", "recognition_engines", "uvicorn_options"]

STATIC = Path(__file__).parent / "static"
_URL_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://")


class SourceNotAllowed(ValueError):
    """A server-side source outside the allow-list."""


@dataclass(frozen=True)
class SourcePolicy:
    """Which server-side sources the stream API may open; nothing but synthetic streams unless allowed here.

    Attributes:
        roots: folders whose files and frame folders may be opened (paths are resolved, symlinks included, and
            must stay inside one of them: no ``..`` escapes).
        url_prefixes: rtsp / http(s) URLs starting with one of these may be opened.
        cameras: camera indices may be opened.
    """

    roots: tuple[Path, ...] = ()
    url_prefixes: tuple[str, ...] = ()
    cameras: bool = False

    def check(self, spec: str) -> str:
        """The source spec to open for `spec`.

        Raises:
            SourceNotAllowed: naming what would have to be allowed.
        """
        if spec.startswith("synthetic:"):
            return spec
        if spec.strip().isdigit():
            if not self.cameras:
                raise SourceNotAllowed(f"camera {spec.strip()} is not allowed; start the server with --allow-camera")
            return spec.strip()
        if "://" in spec:
            if spec.lower().startswith(_URL_SCHEMES) and any(spec.startswith(p) for p in self.url_prefixes):
                return spec
            raise SourceNotAllowed(f"URL {spec!r} is not allowed; start the server with --allow-url PREFIX "
                                   "(rtsp, http or https)")
        for root in self.roots:
            root = root.resolve()
            path = (root / spec).resolve()
            if path.is_relative_to(root):
                return str(path)
        raise SourceNotAllowed(f"{spec!r} is not inside an allowed folder; start the server with --allow-dir DIR "
                               "(paths are taken relative to it)")


class StreamRequest(BaseModel):
    source: str = Field(min_length=1, max_length=2048, description="file or frame folder under an allowed folder "
                        "(relative to it), allowed rtsp/http(s) URL, camera index, or synthetic:gestures?...")
    fps: float | None = Field(None, gt=0, le=240, description="frame rate of sources that store none")


def recognition_engines(runtime, *, topk: int = 5) -> Callable[[], tuple[Any, Any]]:
    """A factory of ``(StreamingEngine, EventDetector or None)`` pairs sharing `runtime` (its compiled model)."""
    from streamact.inference.events import EventDetector
    from streamact.inference.streaming import StreamingEngine

    events = runtime.pretrained_cfg.events

    def make():
        engine = StreamingEngine(runtime, topk=topk)
        detector = EventDetector(engine.labels, events) if events.background in engine.labels else None
        return engine, detector

    return make


def uvicorn_options(limits: Limits) -> dict:
    """The uvicorn settings that enforce `limits` at the protocol layer, before the app sees anything.

    Oversized WebSocket messages are refused (close 1009) before they are buffered whole, and connections beyond
    a few per allowed stream get HTTP 503, so a flood of connection attempts cannot exhaust the server.
    """
    return {"ws_max_size": limits.max_message_bytes, "limit_concurrency": 4 * limits.max_streams + 32}


def _error(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, {"code": code, "message": message})


def _known(answer, stream_id: str):
    """`answer`, a registry's answer about `stream_id`; 404 if the registry does not know the stream."""
    if answer is None:
        raise _error(404, "unknown_stream", f"no stream {stream_id!r}; GET /api/streams lists them")
    return answer


class _InstanceHeader:
    """ASGI middleware: every HTTP response and WebSocket handshake tells which copy of the server answered
    (``X-Streamact-Instance``)."""

    def __init__(self, app, instance: str) -> None:
        self.app = app
        self.header = (b"x-streamact-instance", instance.encode())

    async def __call__(self, scope, receive, send) -> None:
        async def send_with_header(message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), self.header]}
            await send(message)

        await self.app(scope, receive, send_with_header if scope["type"] in ("http", "websocket") else send)


def create_app(runtime, *, model_name: str = "model", limits: Limits = Limits(),
               policy: SourcePolicy = SourcePolicy(), token: str | None = None, workers: int | None = None,
               reap_every_s: float | None = None, instance: str | None = None,
               registry: Callable[[SessionManager], StreamRegistry] = StreamRegistry) -> FastAPI:
    """The app serving `runtime` (one shared model) to many streams.

    Args:
        runtime: a streaming `Runtime` (`streamact.cli.recognize.load_runtime_or_fallback`): a recognizer, whose
            predictions carry the top classes and gesture events, or a tubelet detector (``runtime.detection``
            set; `streamact.serve.detection`), whose predictions carry each frame's boxes, labels, scores and tube
            ids.
        model_name: shown on the page and in /api/info.
        limits: what the server accepts.
        policy: which server-side sources the API may open.
        token: if set, every API call and WebSocket must carry it (``Authorization: Bearer TOKEN`` or
            ``?token=TOKEN``); the page and /healthz stay open.
        workers: threads decoding and inferring (default: one per CPU).
        reap_every_s: how often idle streams are looked for (default: a quarter of the idle timeout).
        instance: which copy of the server this is, when several serve behind one address (Ray Serve replicas);
            told in the ``hello`` message, /healthz and the ``X-Streamact-Instance`` header of every response.
        registry: makes, from the server's sessions, what answers the API's calls about a stream by id:
            `StreamRegistry` (this server's streams) or, on Ray Serve replicas,
            `streamact.cluster.streams.SharedStreams` (the other replicas' server-side sources too).
    """
    cfg = runtime.pretrained_cfg
    detector = getattr(runtime, "detection", None) is not None
    workers = workers or os.cpu_count() or 2
    info = {"model": model_name, "runtime": getattr(runtime, "name", type(runtime).__name__),
            "labels": list(cfg.label_names or [str(i) for i in range(cfg.num_classes)]),
            "frame_interval": cfg.frame_interval, "task": "detection" if detector else "recognition",
            "limits": asdict(limits), "token_required": token is not None, "instance": instance, "workers": workers}
    factory = detection_engines(runtime) if detector else recognition_engines(runtime)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        executor = ThreadPoolExecutor(workers, thread_name_prefix="streamact-serve")
        manager = app.state.manager = SessionManager(factory, executor, limits)
        streams = app.state.streams = registry(manager)
        await asyncio.get_running_loop().run_in_executor(executor, manager.warm_up)
        await streams.start()
        reaper = asyncio.create_task(_reap(manager, reap_every_s or limits.idle_timeout_s / 4))
        try:
            yield
        finally:
            reaper.cancel()
            await manager.close_all()
            await streams.close()
            executor.shutdown(wait=True, cancel_futures=True)

    async def _reap(manager: SessionManager, every: float) -> None:
        while True:
            await asyncio.sleep(every)
            await manager.reap_idle()

    app = FastAPI(title="streamact serve", lifespan=lifespan,
                  description="Live action recognition over many streams: one model, one state per stream.")
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if instance is not None:
        app.add_middleware(_InstanceHeader, instance=instance)

    def token_ok(headers, query) -> bool:
        if token is None:
            return True
        given = query.get("token") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(given.encode(), token.encode())

    def authorize(request: Request) -> StreamRegistry:
        if not token_ok(request.headers, request.query_params):
            raise _error(401, "unauthorized", "missing or wrong token: send 'Authorization: Bearer TOKEN' or "
                                              "?token=TOKEN")
        return request.app.state.streams

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz", summary="liveness: the server answers")
    async def health(request: Request) -> dict:
        return {"status": "ok", "streams": len(request.app.state.manager.sessions), "instance": instance}

    @app.get("/metrics", summary="streams, frames in / processed / dropped, latency percentiles, memory")
    async def metrics(request: Request) -> dict:
        return authorize(request).manager.metrics()

    @app.get("/api/info", summary="the model, its labels and the server's limits")
    async def model_info(request: Request) -> dict:
        authorize(request)
        return info

    @app.post("/api/streams", status_code=201, summary="open a server-side source as a new stream")
    async def create_stream(body: StreamRequest, request: Request) -> dict:
        from streamact.io.errors import VideoError
        from streamact.io.sources import open_source

        streams = authorize(request)
        manager = streams.manager
        try:
            spec = policy.check(body.source)
        except SourceNotAllowed as e:
            raise _error(403, "source_not_allowed", str(e)) from None
        if len(manager.sessions) >= limits.max_streams:  # before opening a camera or connection for nothing
            raise _error(503, "too_many_streams", f"the server already runs {len(manager.sessions)} streams "
                                                  f"(limit {limits.max_streams}); stop one or try again later")
        try:
            source = await asyncio.to_thread(open_source, spec, realtime=True, fps=body.fps)
        except (VideoError, ValueError, ImportError) as e:
            raise _error(422, "source_failed", f"cannot open {body.source!r}: {e}") from None
        try:
            session = manager.open("source", body.source)
        except TooManyStreams as e:
            source.close()
            raise _error(503, "too_many_streams", str(e)) from None
        threading.Thread(target=_feed, args=(source, session, asyncio.get_running_loop()), daemon=True,
                         name=f"streamact-source-{session.id}").start()
        await streams.opened(session)
        return session.info()

    @app.get("/api/streams", summary="list the streams")
    async def list_streams(request: Request) -> dict:
        return {"streams": await authorize(request).list()}

    @app.get("/api/streams/{stream_id}", summary="one stream's state and counters")
    async def get_stream(stream_id: str, request: Request) -> dict:
        return _known(await authorize(request).info(stream_id), stream_id)

    @app.delete("/api/streams/{stream_id}", summary="stop a stream and free its state")
    async def stop_stream(stream_id: str, request: Request) -> dict:
        return _known(await authorize(request).stop(stream_id), stream_id)

    @app.get("/api/streams/{stream_id}/results", summary="poll results newer than `after` (a seq number)")
    async def poll_results(stream_id: str, request: Request, after: int = -1) -> dict:
        return _known(await authorize(request).results(stream_id, after), stream_id)

    @app.get("/api/streams/{stream_id}/events", summary="results as Server-Sent Events (until the stream ends)")
    async def sse(stream_id: str, request: Request) -> StreamingResponse:
        streams = authorize(request)
        queue = _known(await streams.subscribe(stream_id), stream_id)

        async def lines():
            try:
                while True:
                    try:
                        message = await asyncio.wait_for(queue.get(), 15)
                    except asyncio.TimeoutError:
                        yield ": keep-alive\n\n"
                        continue
                    if message is None:
                        break
                    yield f"event: {message['type']}\ndata: {json.dumps(message)}\n\n"
                    if message["type"] in ("end", "closed"):
                        break
            finally:
                streams.unsubscribe(stream_id, queue)

        return StreamingResponse(lines(), media_type="text/event-stream")

    @app.websocket("/api/streams/{stream_id}/ws")
    async def watch(ws: WebSocket, stream_id: str) -> None:
        await ws.accept()
        if not token_ok(ws.headers, ws.query_params):
            await _refuse(ws, 4401, "unauthorized", "missing or wrong token")
            return
        streams: StreamRegistry = ws.app.state.streams
        queue = await streams.subscribe(stream_id)
        if queue is None:
            await _refuse(ws, 4404, "unknown_stream", f"no stream {stream_id!r}")
            return
        try:
            await _send_results(ws, queue)
        finally:
            streams.unsubscribe(stream_id, queue)

    @app.websocket("/ws")
    async def camera(ws: WebSocket) -> None:
        await ws.accept()
        if not token_ok(ws.headers, ws.query_params):
            await _refuse(ws, 4401, "unauthorized", "missing or wrong token: add ?token=TOKEN")
            return
        manager: SessionManager = ws.app.state.manager
        try:
            session = manager.open("camera", f"browser {ws.client.host if ws.client else ''}".strip())
        except TooManyStreams as e:
            await _refuse(ws, 1013, "too_many_streams", str(e))
            return
        queue = session.subscribe()
        sender = asyncio.create_task(_send_results(ws, queue))
        try:
            # gone, possibly mid-message, or closed by the sender
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await ws.send_json({"type": "hello", "stream": session.id, **info})
                await _receive_frames(ws, session)
        finally:
            sender.cancel()
            session.unsubscribe(queue)
            await manager.close(session.id, "disconnected")

    async def _receive_frames(ws: WebSocket, session: Session) -> None:
        last_warning = 0.0
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes")
            if data is None:
                try:
                    request = json.loads(message.get("text") or "")
                except json.JSONDecodeError:
                    request = None
                if not isinstance(request, dict) or request.get("type") != "ping":
                    await _refuse(ws, 1003, "bad_message", "text messages must be JSON {\"type\": \"ping\"}; "
                                                           "send frames as binary messages")
                    return
                await ws.send_json({"type": "pong", **session.info()})
                continue
            if len(data) > limits.max_message_bytes:
                await _refuse(ws, 1009, "message_too_large", f"message of {len(data)} bytes exceeds the limit of "
                                                             f"{limits.max_message_bytes} bytes")
                return
            try:
                check_image(data, limits.max_frame_pixels)
            except FrameRejected as e:
                await _refuse(ws, 1009 if e.code == "frame_too_large" else 1007, e.code, str(e))
                return
            if not session.offer(data) and time.monotonic() - last_warning >= 1.0:
                last_warning = time.monotonic()
                await ws.send_json({"type": "error", "code": "rate_limited",
                                    "message": f"more than {limits.max_fps:g} frames/s; frames over the limit are "
                                               f"refused ({session.rate_limited} so far)"})

    return app


async def _send_results(ws: WebSocket, queue: asyncio.Queue) -> None:
    """Forward a session's messages to `ws` until the session closes (idle timeout: close code 4408)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            message = await queue.get()
            if message is None:
                await ws.close(1000)
                return
            await ws.send_json(message)
            if message["type"] == "closed" and message["reason"].startswith("idle"):
                await ws.close(4408, "idle timeout")
                return


async def _refuse(ws: WebSocket, code: int, name: str, message: str) -> None:
    """Tell the client why (an ``error`` message), then close with `code` (reasons are capped at 123 bytes)."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        await ws.send_json({"type": "error", "code": name, "message": message})
        await ws.close(code, name)


def _feed(source, session: Session, loop: asyncio.AbstractEventLoop) -> None:
    """Source thread: read frames at the source's pace and offer each to the session until it closes."""
    error = None
    try:
        for frame, _ in source:
            if session.stopped.is_set():
                return
            loop.call_soon_threadsafe(session.offer, frame, time.monotonic())
        error = None if source.error is None else str(source.error)
    except Exception as e:  # a source failing in a way it does not catch itself must not kill the server
        error = f"{type(e).__name__}: {e}"
    finally:
        source.close()
    if not session.stopped.is_set():
        with contextlib.suppress(RuntimeError):  # the loop is gone: the server is shutting down
            loop.call_soon_threadsafe(session.end, error)
