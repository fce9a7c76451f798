"""A detection model behind `streamact serve`: every frame a client sends is answered with the boxes, labels, scores
and tube ids `DetectionEngine` gives on the same frames; `--model` takes a detector's export."""
from __future__ import annotations

import time

import numpy as np
import pytest

pytest.importorskip("fastapi")
pytest.importorskip("torch")
from fastapi.testclient import TestClient  # noqa: E402
from serve_helpers import encode, tiny_detector  # noqa: E402

from streamact.inference.detection import DetectionEngine  # noqa: E402
from streamact.inference.runtimes import TorchRuntime  # noqa: E402
from streamact.io.sources import open_source  # noqa: E402
from streamact.serve.app import create_app  # noqa: E402

LABELS = ["wave", "walk"]


@pytest.fixture(scope="module")
def detector():
    return tiny_detector(LABELS)


def scene(size: int, frames: int = 10) -> list[np.ndarray]:
    with open_source(f"synthetic:detection?frames={frames}&size={size}") as source:
        return [frame for frame, _ in source]


def send_one_by_one(ws, frames: list[np.ndarray]) -> list[dict]:
    """Each frame (PNG: lossless) and its prediction before the next, so none is dropped."""
    answers = []
    for frame in frames:
        ws.send_bytes(encode(frame))
        while (message := ws.receive_json())["type"] != "prediction":
            assert message["type"] != "error", message
        answers.append(message)
    return answers


def expected(detector, frames: list[np.ndarray]) -> list[list[tuple]]:
    engine = DetectionEngine(TorchRuntime(detector), min_display_score=0.3)
    return [[(int(label), int(tube)) for label, tube in zip(d.labels, d.tube_ids)]
            for frame in frames for d in engine.push(frame)]


def found(answer: dict) -> list[tuple]:
    return [(d["label_index"], d["tube"]) for d in answer["detections"]]


def test_each_frame_gets_the_boxes_and_tube_ids_of_the_detection_engine(detector):
    frames = scene(64)
    reference = DetectionEngine(TorchRuntime(detector), min_display_score=0.3)
    want = [d for frame in frames for d in reference.push(frame)]
    with TestClient(create_app(TorchRuntime(detector), model_name="tiny-amma")) as client:
        assert client.get("/api/info").json()["task"] == "detection"
        with client.websocket_connect("/ws") as ws:
            hello = ws.receive_json()
            assert (hello["task"], hello["labels"]) == ("detection", LABELS)
            answers = send_one_by_one(ws, frames)
    assert [a["frame"] for a in answers] == list(range(len(frames)))
    assert all((a["width"], a["height"], a["events"]) == (64, 48, []) for a in answers)  # the frames sent
    assert sum(len(a["detections"]) for a in answers) > 0
    for answer, frame in zip(answers, want):
        assert found(answer) == list(zip(frame.labels.tolist(), frame.tube_ids.tolist()))
        assert [d["label"] for d in answer["detections"]] == frame.label_names
        np.testing.assert_allclose([d["score"] for d in answer["detections"]], frame.scores, atol=1e-4)
        np.testing.assert_allclose(np.reshape([d["box"] for d in answer["detections"]], (-1, 4)), frame.boxes,
                                   atol=0.06)  # rounded to 0.1 px


def test_a_new_frame_size_starts_the_stream_over(detector):
    small, large = scene(64, frames=6), scene(96, frames=6)
    with TestClient(create_app(TorchRuntime(detector))) as client, client.websocket_connect("/ws") as ws:
        ws.receive_json()
        answers = send_one_by_one(ws, small + large)
    after, want = answers[len(small):], expected(detector, large)  # a fresh engine on the larger frames
    assert all((a["width"], a["height"]) == (96, 72) for a in after)
    assert [found(a) for a in after] == want and sum(map(len, want)) > 0


def test_a_server_side_source_streams_detections(detector):
    with TestClient(create_app(TorchRuntime(detector))) as client:
        created = client.post("/api/streams", json={"source": "synthetic:detection?frames=12&size=64", "fps": 30})
        assert created.status_code == 201, created.text
        stream_id = created.json()["id"]
        deadline = time.monotonic() + 60
        while (polled := client.get(f"/api/streams/{stream_id}/results").json())["status"] == "running":
            assert time.monotonic() < deadline, "the source did not end"
            time.sleep(0.05)
        results = polled["results"]
    predictions = [r for r in results if r["type"] == "prediction"]
    assert [r["type"] for r in results] == ["prediction"] * len(predictions) + ["end"] and results[-1]["error"] is None
    assert all((p["width"], p["height"]) == (64, 48) for p in predictions)
    assert [p["frame"] for p in predictions] == sorted({p["frame"] for p in predictions})  # source frames, in order
    assert sum(len(p["detections"]) for p in predictions) > 0


@pytest.mark.export
def test_serve_command_serves_an_exported_detector(detector, tmp_path, monkeypatch):
    import uvicorn

    from streamact.cli.main import main
    from streamact.export.openvino import export_openvino

    xml = export_openvino(detector, tmp_path / "amma.xml", streaming=True)
    served = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    assert main(["serve", "--model", str(xml), "--precision", "fp32"]) == 0
    with TestClient(served[0]) as client:
        info = client.get("/api/info").json()
        assert (info["task"], info["runtime"], info["labels"]) == ("detection", "openvino", LABELS)
        frames = scene(64)
        with client.websocket_connect("/ws") as ws:
            ws.receive_json()
            answers = send_one_by_one(ws, frames)
    assert [found(a) for a in answers] == expected(detector, frames)
