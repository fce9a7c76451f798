"""Serving many streams: `streamact serve` under N concurrent camera-like streams, and memory over a soak.

    synthetic gesture video (mp4 file) ──► JPEG frames ──► client (this process): N WebSocket streams at 15
    frames/s ──► `streamact serve` (its own process, loopback, the bundled model on its default runtime)
        ──► per N: processed frames/s, results/s, drop rate, p50 / p95 end-to-end latency, server RSS
    then connect / send / disconnect cycles for the soak length ──► the server's RSS over time
    then the bundled detector the same way (a synthetic detection video, fewer streams)
    and the model step alone, batched: N streams' frames in one call (the state fed and read as arrays) against
        the server's way, one call per stream with the state in its own infer request ──► CPU ms per frame

The client and the server share the machine's cores, as they would on a box serving its own cameras; the client
sends on a fixed clock, so a server that falls behind shows up as drops and latency.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

SECTION = "serve"
FPS = 15.0
GOAL = {"streams": 12, "drop_rate": 0.01, "p95_ms": 150.0}


def _progress(message: str) -> None:
    print(message, file=sys.stderr)  # stdout is for the result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _encoded_frames(source: str, seconds: float) -> list[bytes]:
    """JPEG frames of `seconds` of a source, through a video file as a camera's frames would be."""
    from streamact.io.sources import open_source
    from streamact.io.writer import VideoWriter
    from streamact.serve.loadgen import encode_video_frames

    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "video.mp4"
        with VideoWriter(video, FPS) as writer, open_source(source) as frames:
            for i, (frame, _) in enumerate(frames):
                if i >= seconds * FPS:
                    break
                writer.write(frame)
        return encode_video_frames(video)


def start_server(port: int, *, max_streams: int, model: str | None = None,
                 timeout_s: float = 300.0) -> subprocess.Popen:
    """`streamact serve` (with `model`, else its default) in its own process on 127.0.0.1:`port`, once it answers
    /healthz."""
    command = [sys.executable, "-m", "streamact", "serve", "--port", str(port), "--max-streams", str(max_streams),
               "--idle-timeout", "120", *(["--model", model] if model else [])]
    server = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": "1"})
    deadline = time.monotonic() + timeout_s
    while True:
        if server.poll() is not None:
            raise RuntimeError(f"`{' '.join(command)}` exited with code {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return server
        except OSError:
            if time.monotonic() > deadline:
                server.terminate()
                raise RuntimeError(f"the server did not answer within {timeout_s:g} s") from None
            time.sleep(0.5)


def run(*, quick: bool = False, data_root: Path | None = None) -> dict:
    """Measure each load level, then soak; returns a JSON-able dict.

    Args:
        quick: 8 s per level up to 16 streams and a 60 s soak (a few minutes); the full run takes 30 s per level
            up to 32 streams and a 30-minute soak.
        data_root: unused (the frames are generated).
    """
    from streamact.cli.detect import DEFAULT_MODEL as DETECTOR
    from streamact.cli.recognize import DEFAULT_MODEL

    levels = (1, 4, 8, 12, 16) if quick else (1, 4, 8, 12, 16, 24, 32)
    detector_levels = (1, 4) if quick else (1, 2, 4, 8)
    seconds, soak_s = (8.0, 60.0) if quick else (30.0, 1800.0)
    result: dict = {"quick": quick, "model": DEFAULT_MODEL, "fps": FPS, "seconds_per_level": seconds}
    frames = _encoded_frames("synthetic:gestures?seed=5&num=inf", seconds=20)
    result["frame"] = {"size": "160x160 JPEG", "mean_bytes": round(sum(map(len, frames)) / len(frames))}
    result.update(_levels(None, frames, levels, seconds, soak_s=soak_s))
    _progress("batched steps ...")
    result["batching"] = batching(DEFAULT_MODEL, repeats=20 if quick else 100)
    _progress(f"the detector {DETECTOR} ...")
    detection_frames = _encoded_frames("synthetic:detection?seed=5&frames=300", seconds=20)
    result["detector"] = {"model": DETECTOR, "frame": {"size": "160x120 JPEG", "mean_bytes": round(
        sum(map(len, detection_frames)) / len(detection_frames))},
                          **_levels(DETECTOR, detection_frames, detector_levels, seconds)}
    return result


def batching(model: str, *, repeats: int, sizes: tuple[int, ...] = (1, 4, 8, 16)) -> list[dict]:
    """CPU ms per frame of `model`'s shipped step graph (bf16, 1 thread): one call over a batch of N streams' frames
    with the state as inputs and outputs (copied back in as a server would) against N calls of batch 1 with the
    state in each stream's infer request (what the server runs)."""
    import numpy as np

    from streamact.export.bundle import bundled_export
    from streamact.inference.runtimes import OpenVINORuntime, openvino_core

    xml = bundled_export(model)
    single = OpenVINORuntime(xml, num_threads=1)
    sidecar, core = single.sidecar, openvino_core()
    frame_input, states = sidecar["inputs"][0], sidecar["state"]
    rows = []
    for n in sizes:
        graph = core.read_model(str(xml))
        graph.reshape({port.get_any_name(): [n, *port.get_partial_shape().to_shape()[1:]] for port in graph.inputs})
        request = core.compile_model(graph, "CPU", {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": 1,
                                                    "PERFORMANCE_HINT": "LATENCY"}).create_infer_request()
        rng = np.random.default_rng(0)
        feed = {frame_input["name"]: rng.standard_normal([n, *frame_input["shape"][1:]]).astype(np.float32),
                **{s["input"]: np.zeros([n, *s["shape"][1:]], np.float32) for s in states}}
        frame = feed[frame_input["name"]][:1]
        streams = [single.init_state() for _ in range(n)]
        timings = {"batched": [], "single": []}
        for _ in range(3):  # in alternation, after a warm-up call of each
            request.infer(feed)
            c0 = time.process_time()
            for _ in range(repeats):
                outputs = request.infer(feed)
                feed.update({s["input"]: outputs[s["output"]] for s in states})
            timings["batched"].append((time.process_time() - c0) * 1e3 / (repeats * n))
            single.step(frame, streams[0])
            c0 = time.process_time()
            for _ in range(repeats):
                for state in streams:
                    single.step(frame, state)
            timings["single"].append((time.process_time() - c0) * 1e3 / (repeats * n))
        rows.append({"streams": n, **{f"{k}_cpu_ms": round(min(v), 3) for k, v in timings.items()}})
    return rows


def _levels(model: str | None, frames: list[bytes], levels: tuple[int, ...], seconds: float, *,
            soak_s: float | None = None) -> dict:
    """A server of `model` (None: the default) under each number of streams, then (with `soak_s`) the soak."""
    from streamact.serve.loadgen import run_streams, server_metrics, soak

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    _progress("starting the server ...")
    server = start_server(port, max_streams=max(levels) + 8, model=model)
    try:
        result = {"runtime": _info(base)["runtime"], "rss_idle_mb": server_metrics(base)["rss_mb"], "levels": []}
        for n in levels:
            _progress(f"{n} streams at {FPS:g} frames/s for {seconds:g} s ...")
            result["levels"].append(run_streams(base, frames, streams=n, fps=FPS, seconds=seconds))
        if soak_s is not None:
            _progress(f"soak: connect / disconnect for {soak_s:g} s ...")
            result["soak"] = soak(base, frames, seconds=soak_s)
        return result
    finally:
        server.terminate()
        server.wait(30)


def _info(base: str) -> dict:
    import json

    with urllib.request.urlopen(f"{base}/api/info", timeout=10) as response:
        return json.load(response)


def goals(result: dict) -> list[dict]:
    """The serving goal next to this run's numbers."""
    level = next((r for r in result["levels"] if r["streams"] == GOAL["streams"]), None)
    met = (level is not None and level["drop_rate"] < GOAL["drop_rate"]
           and level["latency_ms"]["p95"] is not None and level["latency_ms"]["p95"] < GOAL["p95_ms"])
    measured = "not run" if level is None else (f"{100 * level['drop_rate']:.2f}% dropped, p95 "
                                                f"{level['latency_ms']['p95']} ms")
    soak_result = result["soak"]
    return [{"goal": f">= {GOAL['streams']} streams at {FPS:g} frames/s with < {100 * GOAL['drop_rate']:g}% drops "
                     f"and p95 < {GOAL['p95_ms']:g} ms", "measured": measured, "met": "yes" if met else "**no**"},
            {"goal": "memory flat over connect / disconnect cycles",
             "measured": f"{soak_result['growth_mb']:+.1f} MB over {soak_result['cycles']} cycles "
                         f"({soak_result['streams_opened']} streams), {soak_result['open_after']} left open",
             "met": "yes" if abs(soak_result["growth_mb"]) < 20 and soak_result["open_after"] == 0 else "**no**"}]


def to_markdown(result: dict) -> str:
    from streamact.benchmark.common import markdown_table

    rows = _level_rows(result["levels"])
    detector = result["detector"]
    detector_rows = _level_rows(detector["levels"])
    soak_result = result["soak"]
    batch_rows = [{"streams": r["streams"], "batched ms/frame": f"{r['batched_cpu_ms']:.3f}",
                   "one by one ms/frame": f"{r['single_cpu_ms']:.3f}",
                   "batched vs one by one": f"{r['single_cpu_ms'] / r['batched_cpu_ms']:.2f}x"}
                  for r in result["batching"]]
    best = max(result["batching"], key=lambda r: r["single_cpu_ms"] / r["batched_cpu_ms"])
    gain = best["single_cpu_ms"] / best["batched_cpu_ms"]
    return "\n".join([
        f"## Serving many streams{' — quick run' if result['quick'] else ''}\n",
        f"`streamact serve` with {result['model']} on {result['runtime']} in its own process; a client process "
        f"sends N concurrent WebSocket streams of {result['frame']['size']} frames (about "
        f"{result['frame']['mean_bytes']} bytes each, from a synthetic gesture video file) at {result['fps']:g} "
        f"frames/s each for {result['seconds_per_level']:g} s per level, on loopback. Latency: frame sent to its "
        "prediction received (the model steps on every second frame, and each step is one result). Drops: frames "
        "replaced by a newer one before the model got to them, or refused over the rate limit. Idle server: "
        f"{result['rss_idle_mb']} MB RSS.\n",
        markdown_table(rows, list(rows[0])),
        "",
        f"Soak: {soak_result['seconds']:g} s of connect / send 10 frames / disconnect cycles, 4 streams at a "
        f"time: {soak_result['cycles']} cycles, {soak_result['streams_opened']} streams opened and closed; server "
        f"RSS (MB) sampled along the way: {', '.join(f'{v:g}' for v in soak_result['rss_mb'])}.\n",
        markdown_table(goals(result), ["goal", "measured", "met"]),
        "",
        f"The bundled detector ({detector['model']}) on {detector['runtime']}, the same way, with "
        f"{detector['frame']['size']} frames (about {detector['frame']['mean_bytes']} bytes) of a synthetic "
        "detection scene: every frame is answered (zero delay, one result per frame) with the boxes of the latest "
        "step, and the model steps on every fourth frame over the clip it completes. Idle server: "
        f"{detector['rss_idle_mb']} MB RSS.\n",
        markdown_table(detector_rows, list(detector_rows[0])),
        "",
        f"Batching several streams' frames into one call, measured on the model step alone ({result['model']}'s "
        "shipped graph, bf16, 1 thread, CPU ms per frame; batched: one call over N frames with the state fed and "
        "read as arrays; one by one: what the server runs, one call per stream with its state in its own infer "
        "request):\n",
        markdown_table(batch_rows, list(batch_rows[0])),
        "",
        f"The best batch of this run ({best['streams']} streams) computes a frame {gain:.2f}x as fast as one call "
        "per stream, before counting the wait to fill a batch (up to one frame period of latency) and moving "
        "every stream's state through Python on each step, which the stateful infer requests avoid; "
        + ("so the server does not batch." if gain < 1.1 else "batching would pay off here, and the server does "
                                                               "not batch yet."),
    ])


def _level_rows(levels: list[dict]) -> list[dict]:
    return [{"streams": r["streams"], "frames/s sent": f"{r['streams'] * r['fps']:g}",
             "processed frames/s": f"{r['processed_fps']:g}", "results/s": f"{r['results_fps']:g}",
             "drop rate": f"{100 * r['drop_rate']:.2f}%", "p50 ms": f"{r['latency_ms']['p50']:g}",
             "p95 ms": f"{r['latency_ms']['p95']:g}", "server RSS MB": f"{r['rss_mb']:g}"} for r in levels]
