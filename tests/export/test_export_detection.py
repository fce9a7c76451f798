"""A tubelet detector (AMMA) exported with its K-clip feature cache as state: sidecar, raw head outputs of ONNX
Runtime and OpenVINO against PyTorch, identical detections after the shared numpy decoding, `streamact export` and
`streamact detect` on the exported graph, and a sidecar that does not match."""
import json

import numpy as np
import pytest
import torch
from _fixtures import randomise_bn

from streamact.cli.main import main as cli_main
from streamact.data.synthetic import DETECTION_CLASSES
from streamact.engine.build import build_model_from_config
from streamact.engine.checkpoint import save_checkpoint
from streamact.engine.config import config_to_dict, load_config
from streamact.export.onnx import export_onnx
from streamact.export.openvino import export_openvino
from streamact.export.validate import ExportMismatchError, check_parity, load_sidecar
from streamact.inference.detection import DetectionEngine
from streamact.inference.runtimes import OpenVINORuntime, TorchRuntime, load_runtime
from streamact.io.sources import open_source
from streamact.io.writer import write_video

pytestmark = pytest.mark.export

K, T, SIZE = 3, 2, 64
OVERRIDES = ["--model.name=amma_mobilenetv2", "--model.pretrained=false", f"--data.num_clips={K}",
             f"--data.clip_len={T}", f"--data.input_size={SIZE}"]


def _detector():
    """A small AMMA_M with random weights whose heatmap has distinct peaks (scores spread over (0, 1))."""
    torch.manual_seed(0)
    cfg = load_config("configs/detection_amma_effl0.yaml", OVERRIDES)
    model = randomise_bn(build_model_from_config(cfg, list(DETECTION_CLASSES), pretrained=False)).eval()
    with torch.no_grad():
        model.head.center[-1].weight.mul_(20)
    return cfg, model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The detector, its checkpoint, its ONNX and OpenVINO step graphs and a short 96x72 test video."""
    cfg, model = _detector()
    out = tmp_path_factory.mktemp("amma")
    checkpoint = out / "amma.pt"
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg),
                     "class_names": list(DETECTION_CLASSES)}, checkpoint)
    video = write_video(out / "scene.mp4", (f for f, _ in open_source(
        "synthetic:detection?seed=3&frames=21&size=96&actors=2")), fps=25)
    return {"model": model, "checkpoint": checkpoint, "video": video,
            "onnx": export_onnx(model, out / "step.onnx", streaming=True, model_name="amma_mobilenetv2"),
            "openvino": export_openvino(model, out / "ov" / "step.xml", streaming=True,
                                        model_name="amma_mobilenetv2")}


def test_sidecar_describes_the_clip_step_and_the_feature_cache(exported):
    model = exported["model"]
    sidecar = load_sidecar(exported["onnx"])
    assert sidecar["detection"] == {"num_clips": K, "clip_len": T}
    assert sidecar["inputs"][0] == {"name": "clip", "shape": [1, 3, T, SIZE, SIZE], "dtype": "float32"}
    grid = SIZE // 8
    assert [(p["name"], p["shape"]) for p in sidecar["outputs"][:3]] == [
        ("heatmap", [1, len(DETECTION_CLASSES), grid, grid]), ("movement", [1, 2 * K, grid, grid]),
        ("size", [1, 2 * K, grid, grid])]
    state = model.init_state(1)
    assert [(s["name"], s["shape"]) for s in sidecar["state"]] == [(k, list(v.shape)) for k, v in state.items()]
    assert state["features"].shape[1] == K  # the cache of K clip features is the state
    assert load_sidecar(exported["openvino"]) == sidecar


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_raw_head_outputs_match_torch_over_a_stream_of_clips(exported, runtime):
    rt = load_runtime(exported["onnx" if runtime == "onnxruntime" else "openvino"], precision="fp32", num_threads=1)
    assert rt.detection == {"num_clips": K, "clip_len": T}
    # 7 steps from a zero state: the cache fills (first step), shifts, and is compared at every step
    result = check_parity(exported["model"], rt, num_frames=7)
    assert result["num_frames"] == 7 and result["max_abs_diff"] < 1e-4, result
    assert result["top1_agreement"] == 1.0


def test_openvino_keeps_the_feature_cache_in_the_plugin(exported):
    model = exported["model"]
    rt = OpenVINORuntime(exported["openvino"], precision="fp32", num_threads=1)
    clips = torch.randn(2, 1, 3, T, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    state, other = rt.init_state(), rt.init_state()
    torch_state = model.init_state(1)
    for clip in clips:
        out, state = rt.step(clip.numpy(), state)
        with torch.no_grad():
            _, torch_state = model.forward_step(clip, torch_state)
    cache = state.arrays()
    assert cache["count"].item() == 2 and other.arrays()["count"].item() == 0  # one state per stream
    np.testing.assert_allclose(cache["features"], torch_state["features"].numpy(), atol=1e-4)
    assert isinstance(out, tuple) and [o.shape for o in out] == [
        (1, len(DETECTION_CLASSES), SIZE // 8, SIZE // 8), (1, 2 * K, SIZE // 8, SIZE // 8),
        (1, 2 * K, SIZE // 8, SIZE // 8)]


def _detections(runtime, video, mode="zero-delay"):
    engine = DetectionEngine(runtime, mode=mode, min_display_score=0.0)
    with open_source(video) as source:
        answered = [d for frame, _ in source for d in engine.push(frame)]
    tail, tubes = engine.finish()
    return answered + tail, tubes


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_identical_detections_after_decoding_on_a_video(exported, runtime):
    rt = load_runtime(exported["onnx" if runtime == "onnxruntime" else "openvino"], precision="fp32", num_threads=1)
    expected, expected_tubes = _detections(TorchRuntime(exported["model"]), exported["video"])
    got, tubes = _detections(rt, exported["video"])
    assert [d.frame for d in got] == list(range(1, 22))
    assert sum(len(d) for d in expected) > 20  # the comparison is not between empty frames
    for a, b in zip(got, expected):
        assert a.tube_ids.tolist() == b.tube_ids.tolist() and a.labels.tolist() == b.labels.tolist()
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-2)  # source pixels
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-4)
    assert [(t.tube_id, t.label, t.frames.tolist()) for t in tubes] == [
        (t.tube_id, t.label, t.frames.tolist()) for t in expected_tubes] and tubes


def test_export_and_detect_commands_on_a_checkpoint(exported, tmp_path, capsys):
    xml = tmp_path / "amma_step.xml"
    assert cli_main(["export", str(exported["checkpoint"]), "--format", "openvino", "--streaming", "--out", str(xml),
                     "--check", "--num-frames", "4"]) == 0
    out, err = capsys.readouterr()
    check = json.loads(out)
    assert check["check"] == "pass" and check["max_abs_diff"] < 1e-4 and check["num_frames"] == 4
    assert f"wrote {xml}" in err and "streaming step graph" in err
    lines = {}
    for name, model, runtime in (("torch", exported["checkpoint"], "torch"), ("openvino", xml, "openvino")):
        jsonl = tmp_path / f"{name}.jsonl"
        assert cli_main(["detect", str(exported["video"]), "--model", str(model), "--runtime", runtime,
                         "--precision", "fp32", "--min-score", "0.05", "--out-jsonl", str(jsonl),
                         "--no-progress"]) == 0
        lines[name] = [json.loads(line)["detections"] for line in jsonl.read_text().splitlines()]
    assert len(lines["openvino"]) == 21 and any(lines["openvino"])
    for a, b in zip(lines["openvino"], lines["torch"]):
        assert [(d["label"], d["tube"]) for d in a] == [(d["label"], d["tube"]) for d in b]
        np.testing.assert_allclose([d["box"] for d in a] or np.zeros((0, 4)), [d["box"] for d in b] or np.zeros((0, 4)),
                                   atol=0.11)  # boxes are written with one decimal


def test_a_checkpoint_runs_on_onnxruntime_exported_on_the_fly(exported, tmp_path):
    jsonl = tmp_path / "d.jsonl"
    assert cli_main(["detect", str(exported["video"]), "--model", str(exported["checkpoint"]), "--runtime",
                     "onnxruntime", "--max-frames", "6", "--out-jsonl", str(jsonl), "--no-progress"]) == 0
    assert len(jsonl.read_text().splitlines()) == 6


def _copy(exported, tmp_path, sidecar):
    onnx = tmp_path / "step.onnx"
    onnx.write_bytes(exported["onnx"].read_bytes())
    onnx.with_suffix(".json").write_text(json.dumps(sidecar))
    return onnx


def test_a_sidecar_that_does_not_match_is_one_clear_error(exported, tmp_path, capsys):
    sidecar = load_sidecar(exported["onnx"])
    wrong = _copy(exported, tmp_path, {**sidecar, "detection": {"num_clips": K + 1, "clip_len": T}})
    with pytest.raises(ExportMismatchError, match=r"a detector's first outputs must be 'heatmap' \[1, 7, h, w\], "
                                                  r"'movement' and 'size' \[1, 8, h, w\]"):
        load_sidecar(wrong)
    assert cli_main(["detect", str(exported["video"]), "--model", str(wrong)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {wrong} does not match its sidecar") and len(err.strip().splitlines()) == 1
    no_detection = _copy(exported, tmp_path, {k: v for k, v in sidecar.items() if k != "detection"})
    with pytest.raises(ExportMismatchError, match="first input must be 'frame'"):
        load_sidecar(no_detection)


def test_detect_refuses_an_exported_recognizer(tmp_path, capsys):
    from streamact import create_model

    model = create_model("tsm_mobilenetv2_100", num_classes=2, num_segments=2, causal=True, img_size=32).eval()
    onnx = export_onnx(model, tmp_path / "rec.onnx", streaming=True)
    assert cli_main(["detect", "synthetic:detection?frames=4", "--model", str(onnx)]) == 2
    err = capsys.readouterr().err
    assert f"error: {onnx} is a recognition model" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("name, motion", [("amma_resnet18", "convdiff"), ("amma_mobilenetv2", "convdiff"),
                                          ("amma_shufflenetv2", "convdiff"), ("amma_efficientnet_lite0", "convdiff"),
                                          ("amma_mobilenetv2", "signed")])
def test_every_backbone_exports_its_streaming_step(name, motion, tmp_path):
    from streamact import create_model

    torch.manual_seed(0)
    model = randomise_bn(create_model(name, num_classes=3, num_clips=2, clip_len=2, img_size=32,
                                      motion=motion)).eval()
    runtime = load_runtime(export_onnx(model, tmp_path / "step.onnx", streaming=True), num_threads=1)
    result = check_parity(model, runtime, num_frames=3)
    assert result["max_abs_diff"] < 1e-4, result
