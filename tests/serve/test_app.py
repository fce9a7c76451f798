"""The server through its HTTP and WebSocket API: protocol, per-stream state, every limit and error code."""
from __future__ import annotations

import time

import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from starlette.websockets import WebSocketDisconnect  # noqa: E402

from streamact.serve.app import SourcePolicy, create_app  # noqa: E402
from streamact.serve.limits import Limits  # noqa: E402

from _fixtures import write_truncated_video  # noqa: E402
from serve_helpers import encode, solid  # noqa: E402

RED, GREEN = solid((255, 0, 0)), solid((0, 255, 0))


def client_for(runtime, **kwargs) -> TestClient:
    return TestClient(create_app(runtime, **kwargs))


def next_of(ws, kind: str, limit: int = 50) -> dict:
    for _ in range(limit):
        message = ws.receive_json()
        if message["type"] == kind:
            return message
    raise AssertionError(f"no {kind} message in {limit}")


def wait_for(predicate, timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.01)


def test_camera_stream_predicts_each_frame_with_its_own_state(runtime):
    with client_for(runtime) as client:
        with client.websocket_connect("/ws") as a, client.websocket_connect("/ws") as b:
            hello_a, hello_b = a.receive_json(), b.receive_json()
            assert hello_a["type"] == "hello" and hello_a["labels"] == ["no_gesture", "red", "green"]
            assert hello_a["stream"] != hello_b["stream"]
            a.send_bytes(encode(RED))
            b.send_bytes(encode(GREEN, "JPEG"))
            pa, pb = next_of(a, "prediction"), next_of(b, "prediction")
            assert (pa["label"], pa["frame"], pa["stream"]) == ("red", 0, hello_a["stream"])
            assert pb["label"] == "green" and pb["server_latency_ms"] >= 0
            a.send_text('{"type": "ping"}')
            pong = next_of(a, "pong")
            assert pong["frames_in"] == 1 and pong["processed"] == 1
            listed = client.get("/api/streams").json()["streams"]
            assert {s["id"] for s in listed} == {hello_a["stream"], hello_b["stream"]}
        assert runtime.states == 3  # one engine state per connection (and the warm-up's), one shared model
        wait_for(lambda: client.get("/healthz").json()["streams"] == 0)
        metrics = client.get("/metrics").json()
        assert metrics["streams_opened"] == 2 and metrics["streams_closed"] == 2
        assert metrics["frames_in"] == 2 and metrics["predictions"] == 2 and metrics["latency_ms"]["p50"] >= 0


def test_newest_frame_wins_and_drops_are_counted(runtime):
    slow = runtime.step

    def step(frame, state):
        time.sleep(0.05)
        return slow(frame, state)

    runtime.step = step
    with client_for(runtime) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        for frame in [RED] * 9 + [GREEN]:
            ws.send_bytes(encode(frame))
        ws.send_text('{"type": "ping"}')
        wait_for(lambda: client.get("/metrics").json()["processed"] + client.get("/metrics").json()["dropped"] == 10)
        counts = client.get("/metrics").json()
        assert counts["frames_in"] == 10 and counts["dropped"] >= 5  # stale frames never reach the model
        last = None
        for _ in range(20):
            message = ws.receive_json()
            if message["type"] == "prediction":
                last = message
                if message["frame"] == 9:
                    break
        assert last["frame"] == 9 and last["label"] == "green"  # the newest frame is always processed


def test_the_model_warms_up_at_start_so_a_new_stream_drops_none_of_its_first_frames(runtime):
    """The model's first step in a process is slow (here half a second, like a lazy compile); the server takes it
    at start on a throwaway state, so a new stream's first frames, sent at camera rate, all reach the model."""
    step, first = runtime.step, []

    def slow_first_step(frame, state):
        if not first:
            first.append(state)
            time.sleep(0.5)
        return step(frame, state)

    runtime.step = slow_first_step
    with client_for(runtime) as client:
        assert len(first) == 1 and runtime.states == 1  # before any stream
        assert client.get("/metrics").json()["streams_opened"] == 0  # the warm-up is not a stream
        with client.websocket_connect("/ws") as ws:
            ws.receive_json()
            for _ in range(6):
                ws.send_bytes(encode(RED))
                time.sleep(0.1)
            wait_for(lambda: client.get("/metrics").json()["processed"] + client.get("/metrics").json()["dropped"]
                     == 6)
            counts = client.get("/metrics").json()
            assert (counts["processed"], counts["dropped"], counts["predictions"]) == (6, 0, 6)
        assert runtime.states == 2  # the stream only made its own state


def test_garbage_bytes_close_only_that_connection(runtime):
    with client_for(runtime) as client, client.websocket_connect("/ws") as good:
        good.receive_json()
        with client.websocket_connect("/ws") as bad:
            bad.receive_json()
            bad.send_bytes(b"\x00garbage" * 100)
            error = bad.receive_json()
            assert error["code"] == "bad_image"
            with pytest.raises(WebSocketDisconnect) as closed:
                bad.receive_json()
            assert closed.value.code == 1007
        good.send_bytes(encode(RED))
        assert next_of(good, "prediction")["label"] == "red"


@pytest.mark.parametrize("message, code, name", [
    (b"x" * 5000, 1009, "message_too_large"),
    (encode(solid((1, 2, 3), size=80)), 1009, "frame_too_large"),
])
def test_oversized_messages_and_frames_are_refused(runtime, message, code, name):
    limits = Limits(max_message_bytes=4000, max_frame_pixels=64 * 64)
    with client_for(runtime, limits=limits) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_bytes(message)
        assert ws.receive_json()["code"] == name
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == code


def test_a_frame_the_model_fails_on_is_reported_and_the_stream_goes_on(runtime):
    step = runtime.step

    def failing_on_blue(frame, state):
        if frame[0, 2].mean() > 0:
            raise RuntimeError("cannot take blue")
        return step(frame, state)

    runtime.step = failing_on_blue
    with client_for(runtime) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_bytes(encode(solid((0, 0, 255))))
        error = next_of(ws, "error")
        assert error["code"] == "frame_failed" and "cannot take blue" in error["message"] and error["frame"] == 0
        ws.send_bytes(encode(RED))
        assert next_of(ws, "prediction")["label"] == "red"
        assert client.get("/metrics").json()["corrupt"] == 1


def test_text_that_is_not_a_known_message_closes_the_connection(runtime):
    with client_for(runtime) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        ws.send_text("{not json")
        assert ws.receive_json()["code"] == "bad_message"
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1003


def test_frames_faster_than_the_limit_are_refused_and_counted(runtime):
    with client_for(runtime, limits=Limits(max_fps=3)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        for _ in range(6):
            ws.send_bytes(encode(RED))
        error = next_of(ws, "error")
        assert error["code"] == "rate_limited"
        ws.send_text('{"type": "ping"}')
        pong = next_of(ws, "pong")
        assert pong["frames_in"] == 3 and pong["rate_limited"] == 3


def test_stream_limit_refuses_the_next_connection_and_api_stream(runtime):
    with client_for(runtime, limits=Limits(max_streams=1)) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        with client.websocket_connect("/ws") as refused:
            assert refused.receive_json()["code"] == "too_many_streams"
            with pytest.raises(WebSocketDisconnect) as closed:
                refused.receive_json()
            assert closed.value.code == 1013
        response = client.post("/api/streams", json={"source": "synthetic:gestures?num=1&size=32"})
        assert response.status_code == 503 and response.json()["detail"]["code"] == "too_many_streams"
        ws.send_bytes(encode(GREEN))
        assert next_of(ws, "prediction")["label"] == "green"


def test_token_is_required_everywhere_but_the_page_and_health(runtime):
    with client_for(runtime, token="s3cret") as client:
        assert client.get("/").status_code == 200 and client.get("/healthz").status_code == 200
        for path in ("/metrics", "/api/streams", "/api/info"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert client.get("/api/info?token=s3cret").json()["token_required"] is True
        with client.websocket_connect("/ws") as ws:
            assert ws.receive_json()["code"] == "unauthorized"
            with pytest.raises(WebSocketDisconnect) as closed:
                ws.receive_json()
            assert closed.value.code == 4401
        with client.websocket_connect("/ws?token=s3cret") as ws:
            assert ws.receive_json()["type"] == "hello"


def test_idle_streams_time_out_and_free_their_state(runtime):
    limits = Limits(idle_timeout_s=0.2)
    with client_for(runtime, limits=limits, reap_every_s=0.05) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        closed_message = next_of(ws, "closed")
        assert closed_message["reason"].startswith("idle timeout")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 4408
        assert client.get("/metrics").json()["streams"] == 0


def test_server_side_source_results_by_polling_sse_and_websocket(runtime):
    with client_for(runtime) as client:
        created = client.post("/api/streams", json={"source": "synthetic:gestures?num=1&size=32", "fps": 60})
        assert created.status_code == 201, created.text
        stream_id = created.json()["id"]
        with client.websocket_connect(f"/api/streams/{stream_id}/ws") as ws:
            assert next_of(ws, "prediction")["stream"] == stream_id
        with client.stream("GET", f"/api/streams/{stream_id}/events") as events:
            kinds = [line.removeprefix("event: ") for line in events.iter_lines() if line.startswith("event: ")]
        assert kinds[-1] == "end" and "prediction" in kinds
        polled = client.get(f"/api/streams/{stream_id}/results").json()
        assert polled["status"] == "ended"
        seqs = [r["seq"] for r in polled["results"]]
        assert seqs == sorted(seqs) and polled["results"][-1]["type"] == "end"
        later = client.get(f"/api/streams/{stream_id}/results", params={"after": seqs[-2]}).json()["results"]
        assert [r["seq"] for r in later] == [seqs[-1]]
        assert client.delete(f"/api/streams/{stream_id}").json()["status"] == "closed"
        assert client.get(f"/api/streams/{stream_id}").status_code == 404
        assert client.delete(f"/api/streams/{stream_id}").json()["detail"]["code"] == "unknown_stream"


def test_sources_outside_the_allow_list_are_refused(runtime, tmp_path):
    allowed = tmp_path / "videos"
    allowed.mkdir()
    (tmp_path / "secret.txt").write_text("no")
    policy = SourcePolicy(roots=(allowed,), url_prefixes=("rtsp://cams.local/",))
    with client_for(runtime, policy=policy) as client:
        for source in ("../secret.txt", str(tmp_path / "secret.txt"), "/etc/passwd", "0", "file:///etc/passwd",
                       "rtsp://elsewhere/x", "http://cams.local/"):
            response = client.post("/api/streams", json={"source": source})
            assert response.status_code == 403, source
            assert response.json()["detail"]["code"] == "source_not_allowed"
        missing = client.post("/api/streams", json={"source": "nothing.mp4"})
        assert missing.status_code == 422 and missing.json()["detail"]["code"] == "source_failed"
        assert client.post("/api/streams", json={"source": ""}).status_code == 422
        assert client.get("/metrics").json()["streams"] == 0


def test_a_source_failing_mid_stream_ends_only_that_stream(runtime, tmp_path):
    write_truncated_video(tmp_path / "cut.mp4", num_frames=30)  # opens, then runs out mid-stream
    with client_for(runtime, policy=SourcePolicy(roots=(tmp_path,))) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        created = client.post("/api/streams", json={"source": "cut.mp4", "fps": 100})
        assert created.status_code == 201, created.text
        stream_id = created.json()["id"]
        wait_for(lambda: client.get(f"/api/streams/{stream_id}").json()["status"] != "running")
        failed = client.get(f"/api/streams/{stream_id}").json()
        assert failed["status"] == "failed" and "truncated" in failed["error"] and failed["frames_in"] > 0
        ws.send_bytes(encode(RED))
        assert next_of(ws, "prediction")["label"] == "red"


def test_openapi_schema_lists_the_stream_api(runtime):
    with client_for(runtime) as client:
        paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/streams", "/api/streams/{stream_id}", "/api/streams/{stream_id}/results", "/metrics",
            "/healthz"} <= set(paths)
