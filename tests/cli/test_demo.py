"""`streamact demo`: the main job end to end with the bundled model on a short synthetic stream."""
import json

import av
import pytest

from streamact.cli.main import main


@pytest.mark.slow
@pytest.mark.parametrize("runtime", ["openvino", "torch"])
def test_demo_writes_every_artifact(tmp_path, runtime):
    out = tmp_path / "demo"
    code = main(["demo", "--out", str(out), "--num-gestures", "3", "--size", "96", "--runtime", runtime,
                 "--no-progress"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    timeline = json.loads((out / "stream.timeline.json").read_text())
    assert summary["frames"] == len(timeline["labels"])
    assert summary["predictions"] == -(-summary["frames"] // summary["frame_interval"])  # one per processed frame
    assert 0.0 <= summary["frame_accuracy"] <= 1.0 and summary["warmup_frames"] == 16
    assert summary["runtime"] == runtime and summary["latency_ms"]["p50"] > 0
    with av.open(str(out / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary["frames"]
    assert (out / "timeline.png").stat().st_size > 1000
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == summary["predictions"] and "truth" in json.loads(lines[0])


@pytest.mark.slow
def test_demo_falls_back_to_torch_when_openvino_is_missing(tmp_path, monkeypatch, capsys):
    import streamact.cli.recognize as recognize

    real = recognize.load_streaming_runtime

    def no_openvino(model, *, runtime=None, precision=None):
        if runtime == "openvino":
            raise ImportError("No module named 'openvino'")
        return real(model, runtime=runtime, precision=precision)

    monkeypatch.setattr(recognize, "load_streaming_runtime", no_openvino)
    assert main(["demo", "--out", str(tmp_path), "--num-gestures", "2", "--size", "96", "--no-progress"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["runtime"] == "torch"
    assert "falling back to torch" in capsys.readouterr().err
