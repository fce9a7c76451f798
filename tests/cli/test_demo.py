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
    assert 0.0 <= summary["frame_accuracy"] <= 1.0 and summary["warmup_frames"] == 8  # 4 frames at frame_interval 2
    assert summary["runtime"] == runtime and summary["latency_ms"]["p50"] > 0
    with av.open(str(out / "annotated.mp4")) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary["frames"]
    assert (out / "timeline.png").stat().st_size > 1000
    lines = (out / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == summary["predictions"] and "truth" in json.loads(lines[0])
    events = [json.loads(line) for line in (out / "events.jsonl").read_text().splitlines()]
    m = summary["metrics"]
    assert len(events) == summary["events"] == m["events"] and m["gestures"] == len(timeline["segments"])
    assert all(e["emitted_at_frame"] % summary["frame_interval"] == 0 for e in events)  # decided at model steps
    assert m["levenshtein_accuracy"] <= 1 and 0 <= m["per_frame_map"] <= 1
    assert summary["smoothing"] == "none"  # the model's own setting, as in `streamact recognize`


@pytest.mark.slow
def test_demo_falls_back_to_torch_when_openvino_is_missing(tmp_path, monkeypatch, capsys):
    import streamact.cli.recognize as recognize

    real = recognize.load_streaming_runtime

    def no_openvino(model, *, runtime=None, **kwargs):
        if runtime == "openvino":
            raise ImportError("No module named 'openvino'")
        return real(model, runtime=runtime, **kwargs)

    monkeypatch.setattr(recognize, "load_streaming_runtime", no_openvino)
    assert main(["demo", "--out", str(tmp_path), "--num-gestures", "2", "--size", "96", "--no-progress"]) == 0
    assert json.loads((tmp_path / "summary.json").read_text())["runtime"] == "torch"
    assert "falling back to torch" in capsys.readouterr().err


@pytest.mark.slow
def test_demo_detection_writes_every_artifact_and_scores_the_scene(tmp_path, capsys):
    out = tmp_path / "demo_detection"
    assert main(["demo", "--task", "detection", "--out", str(out), "--frames", "80", "--no-progress"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert (summary["frames"], summary["runtime"], summary["model"]) == (80, "openvino", "amma_efficientnet_lite0_actions")
    assert summary["warmup_frames"] == 4 and summary["true_tubes"] >= 1 and summary["latency_ms"]["p50"] > 0
    lines = [json.loads(line) for line in (out / "detections.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(1, 81))
    assert sum(len(line["detections"]) for line in lines) == summary["detections"] > 0
    assert len(json.loads((out / "tubes.json").read_text())["tubes"]) == summary["tubes"]
    with av.open(str(out / "annotated.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 80 and frames[0].shape == (120, 160, 3)
    m = summary["metrics"]
    # The bundled detector finds the scene's actions (0.056 and 0.54 when written; random weights score 0).
    assert m["frame_map@0.5"] >= 0.03 and m["video_map@0.2"] >= 0.3 and 0 <= m["video_map@0.5"] <= m["video_map@0.2"]
    printed = capsys.readouterr().out
    assert "frame-mAP@0.5" in printed and f"{m['frame_map@0.5']:.3f}" in printed
