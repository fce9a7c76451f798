"""The load generator against a real server on loopback (a cheap model, so only the serving is measured)."""
from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
from serve_helpers import encode, serve_in_thread, solid  # noqa: E402

from streamact.serve.app import create_app  # noqa: E402
from streamact.serve.loadgen import run_streams, server_metrics, soak  # noqa: E402

FRAMES = [encode(solid((255, 0, 0))), encode(solid((0, 255, 0)))]


def test_concurrent_streams_are_counted_from_both_ends(runtime):
    with serve_in_thread(create_app(runtime)) as url:
        result = run_streams(url, FRAMES, streams=3, fps=20, seconds=1.0)
        metrics = server_metrics(url)
    assert result["sent"] == 60 and metrics["frames_in"] + metrics["rate_limited"] == 60
    assert result["processed_fps"] == pytest.approx(metrics["processed"], rel=1e-6)  # over 1 s
    assert result["results_fps"] == metrics["predictions"] > 0
    assert result["drop_rate"] == pytest.approx((metrics["dropped"] + metrics["rate_limited"]) / 60, abs=1e-5)
    assert 0 <= result["latency_ms"]["p50"] <= result["latency_ms"]["p95"]
    assert metrics["streams"] == 0 and metrics["streams_closed"] == 3


def test_soak_opens_and_frees_every_stream(runtime):
    with serve_in_thread(create_app(runtime)) as url:
        result = soak(url, FRAMES, seconds=1.0, streams=2, frames_per_cycle=3, samples=2)
    assert result["open_after"] == 0 and result["cycles"] >= 2
    assert result["streams_opened"] == 2 * result["cycles"] and len(result["rss_mb"]) == 3
    assert runtime.states == result["streams_opened"] + 3  # the warm-up cycle's two streams and the server's own
