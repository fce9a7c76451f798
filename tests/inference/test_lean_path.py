"""The inference-only path: exported models run with numpy, PyAV and OpenVINO / ONNX Runtime, never PyTorch.

Each check runs in a fresh interpreter where torch, torchvision and timm cannot be imported (an import hook
raises ImportError and records the attempt), so an import anywhere on the path, even one caught and worked
around, fails the test.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import randomise_bn
from no_torch import NO_ATTEMPTS, lean_env, without_torch

from streamact import create_model
from streamact.cli.recognize import DEFAULT_MODEL
from streamact.export.bundle import bundled_export
from streamact.export.onnx import export_onnx
from streamact.export.openvino import export_openvino
from streamact.inference.runtimes import TorchRuntime
from streamact.inference.streaming import StreamingEngine
from streamact.io.sources import open_source
from streamact.io.writer import write_video

pytestmark = pytest.mark.export

LABELS = ["swipe_left", "swipe_right", "shake"]
# The modules a deployment runs: sources, preprocessing, engine, events, runtimes, exported-model loading,
# the recognize / demo commands and their drawing and plots, and online tube linking for detection.
LEAN_MODULES = [
    "streamact.cli.main", "streamact.cli.recognize", "streamact.cli.demo", "streamact.io.sources",
    "streamact.io.writer", "streamact.transforms.frame", "streamact.inference.streaming",
    "streamact.inference.runtimes", "streamact.inference.events", "streamact.export.sidecar",
    "streamact.export.bundle", "streamact.pretrained", "streamact.evaluation.stream", "streamact.viz",
    "streamact.data.synthetic", "streamact.inference.tubes", "streamact.inference.detection_decode",
    "streamact.evaluation.detection", "streamact.inference.detection", "streamact.cli.detect",
]


def run_without_torch(code: str, tmp_path: Path, *, tries_torch: bool = False) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-c", without_torch(code)], stdin=subprocess.DEVNULL,
                            capture_output=True, text=True, env=lean_env(tmp_path / "cache"), timeout=300)
    assert (NO_ATTEMPTS in result.stderr) != tries_torch, result.stderr[-2000:]
    return result


def recognize_without_torch(args: list, tmp_path: Path, **kw) -> subprocess.CompletedProcess:
    code = f"""
        import sys
        from streamact.cli.main import main
        code = main({[str(a) for a in args]!r} + ["--no-progress"])
        print("torch loaded:", "torch" in sys.modules, file=sys.stderr)
        sys.exit(code)
    """
    return run_without_torch(code, tmp_path, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny causal TSM, its OpenVINO IR and ONNX step graphs, and a short video."""
    torch.manual_seed(0)
    model = randomise_bn(create_model("tsm_mobilenetv2_100", num_classes=3, num_segments=4, causal=True, img_size=48,
                                      label_names=LABELS)).eval()
    out = tmp_path_factory.mktemp("lean")
    rng = np.random.default_rng(0)
    video = write_video(out / "clip.mp4", [rng.integers(0, 256, (60, 80, 3), dtype=np.uint8) for _ in range(10)],
                        fps=10)
    return (model, export_openvino(model, out / "step.xml", streaming=True),
            export_onnx(model, out / "step.onnx", streaming=True), video)


@pytest.fixture(scope="module")
def exported_detector(tmp_path_factory):
    """A tiny AMMA (K=2 clips of t=2 frames, 64 px) with heatmap peaks far enough apart (> 1e-3) that float rounding
    cannot reorder them, its ONNX and OpenVINO step graphs with the feature cache as state, and a short video."""
    torch.manual_seed(0)
    model = randomise_bn(create_model("amma_mobilenetv2", num_classes=2, num_clips=2, clip_len=2, img_size=64,
                                      label_names=["wave", "walk"])).eval()
    with torch.no_grad():
        model.head.center[-1].weight.mul_(50)
    out = tmp_path_factory.mktemp("lean_detect")
    video = write_video(out / "scene.mp4", (f for f, _ in open_source("synthetic:detection?frames=9&size=64")), fps=10)
    return (model, export_openvino(model, out / "step.xml", streaming=True),
            export_onnx(model, out / "step.onnx", streaming=True), video)


@pytest.mark.parametrize("runtime, model_index", [("openvino", 1), ("onnxruntime", 2)])
def test_detect_with_an_exported_detector_without_torch(exported_detector, tmp_path, runtime, model_index):
    from streamact.inference.detection import DetectionEngine

    model, video = exported_detector[0], exported_detector[3]
    out = tmp_path / "detections.jsonl"
    result = recognize_without_torch(["detect", video, "--model", exported_detector[model_index], "--runtime",
                                      runtime, "--precision", "fp32", "--min-score", "0", "--out-jsonl", out],
                                     tmp_path)
    assert result.returncode == 0, result.stderr
    assert "torch loaded: False" in result.stderr
    lines = [json.loads(line)["detections"] for line in out.read_text().splitlines()]
    engine = DetectionEngine(TorchRuntime(model), min_display_score=0.0)  # the same video through PyTorch here
    with open_source(video) as source:
        expected = [d for frame, _ in source for d in engine.push(frame)]
    expected += engine.finish()[0]
    assert len(lines) == len(expected) == 9 and sum(map(len, lines)) > 0
    for got, want in zip(lines, expected):
        assert [(d["label_index"], d["tube"]) for d in got] == list(zip(want.labels.tolist(), want.tube_ids.tolist()))
        np.testing.assert_allclose([d["score"] for d in got], want.scores, atol=1e-4)


def test_lean_modules_import_without_torch(tmp_path):
    result = run_without_torch(f"""
        import importlib, sys
        for name in {LEAN_MODULES!r}:
            importlib.import_module(name)
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "torchvision", "timm")))
    """, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("runtime, model_index", [("openvino", 1), ("onnxruntime", 2)])
def test_recognize_exported_model_without_torch(exported, tmp_path, runtime, model_index):
    model, video = exported[0], exported[3]
    out = tmp_path / "predictions.jsonl"
    result = recognize_without_torch(["recognize", video, "--model", exported[model_index], "--runtime", runtime,
                                      "--precision", "fp32", "--out-jsonl", out], tmp_path)
    assert result.returncode == 0, result.stderr
    assert "torch loaded: False" in result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    engine = StreamingEngine(TorchRuntime(model))  # the same stream through PyTorch, in this process
    with open_source(video) as source:
        expected = [p for p in (engine.push(frame, source.index) for frame, _ in source) if p is not None]
    assert [line["label"] for line in lines] == [p.label for p in expected]
    np.testing.assert_allclose([line["score"] for line in lines], [p.score for p in expected], atol=1e-4)


@pytest.mark.slow  # two cold starts of the bundled model in fresh interpreters
@pytest.mark.skipif(bundled_export(DEFAULT_MODEL) is None, reason="no shipped IR")
def test_bundled_model_runs_from_its_shipped_ir_without_torch(exported, tmp_path):
    """The default model of `recognize` runs from the shipped IR, and a second run imports the compiled model."""
    out = tmp_path / "predictions.jsonl"
    argv = ["recognize", exported[3], "--out-jsonl", out, "--max-frames", 6]
    first = recognize_without_torch(argv, tmp_path)
    assert first.returncode == 0, first.stderr
    assert "torch loaded: False" in first.stderr and "warning" not in first.stderr
    interval = json.loads(bundled_export(DEFAULT_MODEL).with_suffix(".json").read_text())["pretrained_cfg"][
        "frame_interval"]
    assert len(out.read_text().splitlines()) == len(range(0, 6, interval))  # it steps on every interval-th frame
    blobs = list((tmp_path / "cache").glob("*.blob"))
    assert blobs, "the compiled model was not cached"
    second = recognize_without_torch(argv, tmp_path)
    assert second.returncode == 0 and list((tmp_path / "cache").glob("*.blob")) == blobs


@pytest.mark.slow  # a cold start of the bundled detector in a fresh interpreter
def test_bundled_detector_runs_from_its_shipped_ir_without_torch(exported_detector, tmp_path):
    """`detect`'s default model runs from the shipped IR: no PyTorch, every frame answered, tubes written."""
    out, tubes = tmp_path / "detections.jsonl", tmp_path / "tubes.json"
    result = recognize_without_torch(["detect", exported_detector[3], "--out-jsonl", out, "--tubes", tubes],
                                     tmp_path)
    assert result.returncode == 0, result.stderr
    assert "torch loaded: False" in result.stderr and "warning" not in result.stderr
    frames = [json.loads(line) for line in out.read_text().splitlines()]
    assert [f["frame"] for f in frames] == list(range(1, 10))  # the 9-frame scene, every frame answered
    assert isinstance(json.loads(tubes.read_text()), (list, dict))
    assert list((tmp_path / "cache").glob("*.blob")), "the compiled detector was not cached"


def test_commands_that_need_torch_say_which_extra_to_install(exported, tmp_path):
    result = recognize_without_torch(["recognize", exported[3], "--model", "tsm_mobilenetv2_100", "--runtime",
                                      "torch"], tmp_path, tries_torch=True)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == ("error: `streamact recognize` needs torch, which is not installed here; "
                                             "install it with pip install 'streamact[train]'")


def _recognize(argv, capsys):
    from streamact.cli.main import main

    code = main([str(a) for a in argv] + ["--no-progress"])
    return code, capsys.readouterr().err


def _copy_ir(xml: Path, to: Path, *, sidecar: bool = True) -> Path:
    to.mkdir()
    for suffix in (".xml", ".bin") + ((".json",) if sidecar else ()):
        (to / f"step{suffix}").write_bytes(xml.with_suffix(suffix).read_bytes())
    return to / "step.xml"


def test_ir_without_sidecar_is_one_clear_error(exported, tmp_path, capsys):
    xml = _copy_ir(exported[1], tmp_path / "m", sidecar=False)
    code, err = _recognize(["recognize", exported[3], "--model", xml], capsys)
    assert code == 2
    assert err.strip().splitlines() == [f"error: {xml}: sidecar not found, expected {xml.with_suffix('.json')} "
                                        "(`streamact export` writes it next to the model; it holds the "
                                        "preprocessing, labels and state layout the runtimes need)"]


@pytest.mark.skipif(bundled_export("tsm_efficientnet_lite0_gestures") is None, reason="no shipped IR")
def test_ir_with_the_sidecar_of_another_model_is_refused(exported, tmp_path, capsys):
    xml = _copy_ir(exported[1], tmp_path / "m", sidecar=False)
    xml.with_suffix(".json").write_text(bundled_export("tsm_efficientnet_lite0_gestures").with_suffix(".json")
                                        .read_text())
    code, err = _recognize(["recognize", exported[3], "--model", xml], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"error: {xml} does not match its sidecar {xml.with_suffix('.json')}: graph input" in err


@pytest.mark.parametrize("damage", ["xml", "bin"])
def test_corrupt_ir_is_one_clear_error(exported, tmp_path, capsys, damage):
    xml = _copy_ir(exported[1], tmp_path / "m")
    if damage == "xml":
        xml.write_text(xml.read_text()[:500])  # cut off mid-element
    else:
        weights = xml.with_suffix(".bin")
        weights.write_bytes(weights.read_bytes()[:1000])  # truncated download
    code, err = _recognize(["recognize", exported[3], "--model", xml], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"error: {xml}: cannot read the model, the file or its .bin is corrupt")
    assert err.rstrip().endswith("export it again")


def test_unusable_cache_folder_falls_back_with_a_warning(exported, tmp_path):
    from streamact.inference.runtimes import OpenVINORuntime

    frame = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    cached = OpenVINORuntime(exported[1], precision="fp32", cache_dir=tmp_path / "cache")
    expected = cached.step(frame, cached.init_state())[0]
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.warns(RuntimeWarning, match=f"model cache {not_a_folder} cannot be used .*compiling without it"):
        runtime = OpenVINORuntime(exported[1], precision="fp32", cache_dir=not_a_folder)
    np.testing.assert_array_equal(runtime.step(frame, runtime.init_state())[0], expected)


def test_corrupt_cache_is_recompiled(exported, tmp_path):
    from streamact.inference.runtimes import OpenVINORuntime

    frame = np.random.default_rng(0).standard_normal((1, 3, 48, 48)).astype(np.float32)
    first = OpenVINORuntime(exported[1], precision="fp32", cache_dir=tmp_path)
    expected = first.step(frame, first.init_state())[0]
    (blob,) = tmp_path.glob("*.blob")
    size = blob.stat().st_size
    garbage = b"\\0garbage" * 8
    blob.write_bytes(garbage)
    again = OpenVINORuntime(exported[1], precision="fp32", cache_dir=tmp_path)
    np.testing.assert_array_equal(again.step(frame, again.init_state())[0], expected)
    # OpenVINO compiled again and replaced the damaged blob (a new blob's size can differ by a few bytes)
    assert blob.read_bytes() != garbage and blob.stat().st_size > size * 0.9


def test_unusable_cache_folder_warning_is_one_line_on_the_command_line(exported, tmp_path, monkeypatch, capsys):
    from streamact.cli.main import main

    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    monkeypatch.setenv("STREAMACT_CACHE_DIR", str(not_a_folder))
    out = tmp_path / "predictions.jsonl"
    assert main(["recognize", str(exported[3]), "--model", str(exported[1]), "--runtime", "openvino",
                 "--precision", "fp32", "--out-jsonl", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err
    cache_lines = [line for line in err.splitlines() if "model cache" in line or "warn" in line]
    assert len(cache_lines) == 1, err
    assert cache_lines[0].startswith(f"warning: the OpenVINO model cache {not_a_folder} cannot be used (")
    assert cache_lines[0].endswith("compiling without it (set STREAMACT_CACHE_DIR to a writable folder)")
    assert "RuntimeWarning" not in err and "warnings.warn" not in err  # not Python's two-line format
    assert out.read_text().strip()  # the run itself went on
