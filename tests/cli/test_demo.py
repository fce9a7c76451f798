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
