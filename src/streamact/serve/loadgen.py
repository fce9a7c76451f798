"""Load for a running `streamact serve`: N concurrent camera-like streams over WebSockets, and a connect /
disconnect soak; the client side of the serve benchmark (run it in a process other than the server's).

    encoded frames (from a file) ──► N WebSocket streams, each sending at `fps` on its own schedule ──► server
    each prediction's frame ──► end-to-end latency (send → result received); the server's counters ──► drops

A stream sends on a fixed clock whatever happens to its results (like a camera), so a server that falls behind
shows up as drops and latency, not as a slower client.
"""
from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path

import numpy as np

__all__ = ["encode_video_frames", "run_streams", "soak", "server_metrics"]


def encode_video_frames(path: str | Path, *, max_frames: int = 300, quality: int = 85) -> list[bytes]:
    """The frames of a video file as JPEG bytes, the way the live page sends them."""
    import io

    from PIL import Image

    from streamact.io.sources import open_source

    frames = []
    with open_source(path) as source:
        for frame, _ in source:
            buffer = io.BytesIO()
            Image.fromarray(frame).save(buffer, format="JPEG", quality=quality)
            frames.append(buffer.getvalue())
            if len(frames) == max_frames:
                break
    if not frames:
        raise ValueError(f"{path}: no frames to send")
    return frames


def server_metrics(base_url: str) -> dict:
    """GET /metrics of the server at `base_url` (http://host:port)."""
    with urllib.request.urlopen(f"{base_url}/metrics", timeout=10) as response:
        return json.load(response)


async def _one_stream(url: str, frames: list[bytes], fps: float, num_frames: int, start: float) -> dict:
    from websockets.asyncio.client import connect

    loop = asyncio.get_running_loop()
    sent_at: dict[int, float] = {}
    latencies: list[float] = []
    async with connect(url, max_size=None, open_timeout=30) as ws:
        hello = json.loads(await ws.recv())
        if hello.get("type") != "hello":
            raise RuntimeError(f"the server refused the stream: {hello}")
        final: dict = {}

        async def read() -> None:
            async for text in ws:
                message = json.loads(text)
                if message["type"] == "prediction":
                    latencies.append((time.perf_counter() - sent_at.pop(message["frame"])) * 1e3)
                elif message["type"] == "pong":
                    final.update(message)
                    return

        reader = asyncio.create_task(read())
        for i in range(num_frames):
            await asyncio.sleep(max(0.0, start + i / fps - loop.time()))
            sent_at[i] = time.perf_counter()
            await ws.send(frames[i % len(frames)])
        await asyncio.sleep(0.5)  # the last frames' results
        await ws.send('{"type": "ping"}')
        await asyncio.wait_for(reader, 10)
    return {"sent": num_frames, "latencies": latencies, **{k: final[k] for k in (
        "frames_in", "processed", "dropped", "rate_limited", "predictions")}}


async def _run_streams(url: str, frames: list[bytes], streams: int, fps: float, seconds: float) -> list[dict]:
    loop = asyncio.get_running_loop()
    start = loop.time() + 1.0
    num_frames = int(round(seconds * fps))
    # Streams start spread over one frame period, as independent cameras would.
    return await asyncio.gather(*(_one_stream(url, frames, fps, num_frames, start + k / (fps * streams))
                                  for k in range(streams)))


def run_streams(base_url: str, frames: list[bytes], *, streams: int, fps: float = 15.0,
                seconds: float = 20.0) -> dict:
    """Send `streams` concurrent streams of `frames` at `fps` for `seconds` to the server at `base_url`.

    Returns:
        ``streams``, ``sent``, ``processed_fps`` (frames the server took into its engines per second, all
        streams), ``results_fps`` (``prediction`` messages per second: a recognizer's model steps, a detector's
        answered frames), ``drop_rate`` (frames dropped as stale or refused over the limit, over those sent),
        ``latency_ms`` ({p50, p95}: frame sent to its prediction received) and ``rss_mb`` (the server's, after
        the run).
    """
    url = base_url.replace("http://", "ws://") + "/ws"
    results = asyncio.run(_run_streams(url, frames, streams, fps, seconds))
    latencies = np.concatenate([r["latencies"] for r in results]) if results else np.zeros(0)
    sent = sum(r["sent"] for r in results)
    lost = sum(r["dropped"] + r["rate_limited"] for r in results)
    return {"streams": streams, "fps": fps, "seconds": seconds, "sent": sent,
            "processed_fps": round(sum(r["processed"] for r in results) / seconds, 1),
            "results_fps": round(sum(r["predictions"] for r in results) / seconds, 1),
            "drop_rate": round(lost / max(sent, 1), 5),
            "latency_ms": {"p50": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
                           "p95": round(float(np.percentile(latencies, 95)), 1) if len(latencies) else None},
            "rss_mb": server_metrics(base_url)["rss_mb"]}


async def _soak(url: str, frames: list[bytes], seconds: float, streams: int, frames_per_cycle: int,
                fps: float) -> int:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    cycles = 0
    while True:  # at least one cycle
        await asyncio.gather(*(_one_stream(url, frames, fps, frames_per_cycle, loop.time())
                               for _ in range(streams)))
        cycles += 1
        if loop.time() >= end:
            return cycles


def soak(base_url: str, frames: list[bytes], *, seconds: float, streams: int = 4, frames_per_cycle: int = 10,
         fps: float = 30.0, samples: int = 10) -> dict:
    """Connect / send / disconnect `streams` streams over and over for `seconds`; the server's memory meanwhile.

    Returns:
        ``seconds``, ``cycles``, ``streams_opened`` (during the soak), ``rss_mb`` (the server's, sampled
        `samples` times: the first after one warm-up cycle), ``growth_mb`` (last minus first sample) and
        ``open_after`` (streams still open at the end: 0 when every disconnect freed its stream).
    """
    url = base_url.replace("http://", "ws://") + "/ws"
    asyncio.run(_soak(url, frames, 0.0, streams, frames_per_cycle, fps))  # warm-up: first allocations
    before = server_metrics(base_url)
    rss, cycles = [before["rss_mb"]], 0
    for _ in range(samples):
        cycles += asyncio.run(_soak(url, frames, seconds / samples, streams, frames_per_cycle, fps))
        rss.append(server_metrics(base_url)["rss_mb"])
    time.sleep(0.5)
    after = server_metrics(base_url)
    return {"seconds": seconds, "cycles": cycles, "streams_opened": after["streams_opened"] - before["streams_opened"],
            "rss_mb": rss, "growth_mb": round(rss[-1] - rss[0], 1), "open_after": after["streams"]}
