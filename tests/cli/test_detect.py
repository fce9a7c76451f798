"""`streamact detect` end to end on a detection checkpoint with a static output: JSONL per frame, annotated mp4, tube
summary, the synthetic detection source, clean errors and partial outputs."""
import json

import av
import numpy as np
import pytest
import torch
from PIL import Image

from streamact.cli.main import main as cli_main
from streamact.data.synthetic import DETECTION_CLASSES
from streamact.engine.build import build_model_from_config
from streamact.engine.checkpoint import save_checkpoint
from streamact.engine.config import config_to_dict, load_config
from streamact.io.sources import open_source


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A detection checkpoint in the format `streamact train` writes (K=2 clips of t=2, 64 px, static output)."""
    torch.manual_seed(0)
    cfg = load_config("configs/detection_amma_effl0.yaml", ["--model.name=amma_resnet18", "--model.pretrained=false",
                                                            "--data.num_clips=2", "--data.clip_len=2",
                                                            "--data.input_size=64"])
    model = build_model_from_config(cfg, list(DETECTION_CLASSES), pretrained=False)
    with torch.no_grad():  # a static detector: every cell predicts a still 2.5-cell box of class 0, so tubes link
        for branch, bias in ((model.head.center, [2.0] + [-10.0] * 6), (model.head.movement, [0.0] * 4),
                             (model.head.size, [2.5, 2.5])):
            branch[-1].weight.zero_()
            branch[-1].bias.copy_(torch.tensor(bias))
    path = tmp_path_factory.mktemp("ckpt") / "amma.pt"
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg),
                     "class_names": list(DETECTION_CLASSES)}, path)
    return path


def test_detect_synthetic_writes_every_frame_video_and_tubes(checkpoint, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(["detect", "synthetic:detection?frames=30&size=96&actors=2", "--model", str(checkpoint),
                     "--min-score", "0.05", "--out-jsonl", str(out / "d.jsonl"), "--out-video", str(out / "d.mp4"),
                     "--tubes", str(out / "tubes.json"), "--no-progress"])
    assert code == 0
    lines = [json.loads(line) for line in (out / "d.jsonl").read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(1, 31))
    assert lines[0]["detections"] == []  # warm-up: the first step runs at frame t = 2
    boxes = [d for line in lines for d in line["detections"]]
    assert boxes and all(d["label"] == "wave_right" and d["score"] >= 0.05 for d in boxes)
    assert max(len(line["detections"]) for line in lines) <= 10  # the linker keeps the top 10 per class and step
    assert all(0 <= d["box"][0] <= d["box"][2] <= 95 and 0 <= d["box"][1] <= d["box"][3] <= 71 for d in boxes)
    tubes = json.loads((out / "tubes.json").read_text())["tubes"]
    assert tubes and {t["id"] for t in tubes} <= {d["tube"] for d in boxes}
    assert all(len(t["boxes"]) == t["end_frame"] - t["start_frame"] + 1 for t in tubes)
    with av.open(str(out / "d.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 30 and frames[0].shape == (72, 96, 3)
    # The source re-rendered: frames with boxes differ from the raw frames where the boxes are drawn.
    raw = [f for f, _ in open_source("synthetic:detection?frames=30&size=96&actors=2")]
    assert lines[-1]["detections"] and np.abs(frames[-1].astype(int) - raw[-1]).sum() > 0
    assert "30 frames" in capsys.readouterr().err


def test_detect_interpolated_mode_and_frame_folder(checkpoint, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(7):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(folder / f"{i:03d}.png")
    jsonl = tmp_path / "d.jsonl"
    assert cli_main(["detect", str(folder), "--model", str(checkpoint), "--mode", "interpolated",
                     "--out-jsonl", str(jsonl), "--no-progress"]) == 0
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == list(range(1, 8))


def test_detect_size_change_keeps_the_frames_before_it(checkpoint, tmp_path, capsys):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, size in enumerate([(40, 56)] * 5 + [(30, 40)] * 2):
        Image.fromarray(np.full((*size, 3), 90, np.uint8)).save(folder / f"{i:03d}.png")
    jsonl = tmp_path / "d.jsonl"
    assert cli_main(["detect", str(folder), "--model", str(checkpoint), "--out-jsonl", str(jsonl),
                     "--out-video", str(tmp_path / "d.mp4"), "--no-progress"]) == 1
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [1, 2, 3, 4, 5]
    err = capsys.readouterr().err
    assert "frame 6 is 40x30 but the stream started at 56x40" in err and "Traceback" not in err


@pytest.mark.parametrize("argv, message", [
    (["--model", "missing.pt"], "model not found: missing.pt"),
    (["--model", "amma_nosuch"], "no registered model has that name"),
    (["--runtime", "openvino", "--model", "missing.xml"], "model not found: missing.xml"),
])
def test_detect_clean_errors(argv, message, capsys):
    assert cli_main(["detect", "synthetic:detection?frames=4", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_detect_refuses_a_recognition_checkpoint_and_a_bad_source(tmp_path, capsys):
    cfg = load_config("configs/gestures_tsm_effl0_8f.yaml", ["--model.pretrained=false"])
    from streamact.data.synthetic import GESTURE_CLASSES

    model = build_model_from_config(cfg, list(GESTURE_CLASSES), pretrained=False)
    path = tmp_path / "rec.pt"
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg),
                     "class_names": list(GESTURE_CLASSES)}, path)
    assert cli_main(["detect", "synthetic:detection?frames=4", "--model", str(path)]) == 2
    assert "is a recognition model" in capsys.readouterr().err
    assert cli_main(["detect", "synthetic:detection?frames=4", "--model", "tsm_efficientnet_lite0_stream_gestures"]) == 2
    assert "is a recognition model" in capsys.readouterr().err
    assert cli_main(["detect", "synthetic:detection?bogus=1", "--model", str(path)]) == 2
    assert "unknown option(s) bogus" in capsys.readouterr().err


def test_detect_batch_writes_what_single_runs_write(checkpoint, tmp_path, capsys):
    spec = "synthetic:detection?frames=12&size=96&actors=1"
    (tmp_path / "list.txt").write_text(f"{spec}\nmissing.mp4\n{spec}\n")  # listed twice: labelled once
    out = tmp_path / "out"
    code = cli_main(["detect", "--batch", str(tmp_path / "list.txt"), "--out", str(out), "--model", str(checkpoint),
                     "--min-score", "0.05", "--no-progress"])
    assert code == 1 and json.loads(capsys.readouterr().out)["errors"] == 1
    rows = (out / "summary.csv").read_text().splitlines()
    assert len(rows) == 3 and ",ok," in rows[1] and ",error," in rows[2] and "missing.mp4" in rows[2]
    output = rows[1].split(",")[1]
    assert cli_main(["detect", spec, "--model", str(checkpoint), "--min-score", "0.05", "--out-jsonl",
                     str(tmp_path / "single.jsonl"), "--no-progress"]) == 0

    def boxes(path):
        return [(line["frame"], line["detections"]) for line in map(json.loads, path.read_text().splitlines())]

    assert boxes(out / output) == boxes(tmp_path / "single.jsonl") and boxes(out / output)[-1][1]
    tubes = json.loads((out / output.replace(".jsonl", ".tubes.json")).read_text())["tubes"]
    assert tubes and rows[1].split(",")[5] == str(len(tubes))  # the events column counts tubes


def test_detect_runs_the_bundled_detector_without_a_model_argument(tmp_path, capsys):
    jsonl = tmp_path / "det.jsonl"
    assert cli_main(["detect", "synthetic:detection?frames=24&actors=2", "--out-jsonl", str(jsonl),
                     "--no-progress"]) == 0
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 24
    names = {d["label"] for line in lines for d in line["detections"]}
    assert names and names <= set(DETECTION_CLASSES)


def test_labels_of_boxes_at_the_right_edge_stay_inside_the_frame():
    from streamact.cli.detect import _tube_color, draw_detections
    from streamact.inference.detection import FrameDetections

    det = FrameDetections(1, np.array([[150.0, 40.0, 159.0, 100.0]], np.float32), np.array([5]),
                          np.array([0.9], np.float32), np.array([7]), ["arms_raised"], 1.0)
    drawn = draw_detections(np.zeros((120, 160, 3), np.uint8), det)
    label_rows = np.all(drawn[:40] == _tube_color(7), axis=-1)  # the label's background, above the box
    columns = np.flatnonzero(label_rows.any(axis=0))
    assert columns.min() < 100 and columns.max() == 159  # shifted left so its end meets the frame's edge
