"""int8 post-training quantization (NNCF) of exported step graphs, and the streamed accuracy that judges it."""

import ctypes
import json
import faulthandler
import gc
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures import randomise_bn
from detection_fixture import write_tiny_detection_set

from streamact import create_model
from streamact.data.synthetic import GESTURE_CLASSES, generate_gestures
from streamact.errors import UserError
from streamact.engine.build import build_model_from_config
from streamact.engine.config import load_config
from streamact.export.int8 import (MIN_SAMPLES, calibration_samples, calibration_videos, detection_accuracy,
                                   quantize_int8, streaming_accuracy)
from streamact.export.openvino import export_openvino
from streamact.export.sidecar import load_sidecar
from streamact.inference.runtimes import OpenVINORuntime, openvino_core

pytestmark = pytest.mark.export


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """A tiny causal TSM over the synthetic gesture classes, its step IR, and a small synthetic gesture set."""
    pytest.importorskip("nncf")
    root = tmp_path_factory.mktemp("int8")
    gestures = root / "gestures"
    generate_gestures(gestures, per_class=3, seed=5, size=56, num_frames=(8, 10), splits=(0.34, 0.33, 0.33),
                      progress=False)
    torch.manual_seed(0)
    model = randomise_bn(create_model("tsm_mobilenetv2_100", num_classes=len(GESTURE_CLASSES), num_segments=4,
                                      causal=True, img_size=48, label_names=GESTURE_CLASSES)).eval()
    return export_openvino(model, root / "step.xml", streaming=True), gestures


def test_calibration_uses_the_train_split(setup):
    _, gestures = setup
    videos = calibration_videos(gestures)
    train = [line.split(";")[0] for line in (gestures / "train.csv").read_text().splitlines()]
    assert sorted(v.stem for v in videos) == sorted(train)


def test_too_few_calibration_steps_is_a_clear_error(setup, tmp_path):
    xml, gestures = setup
    one_video = calibration_videos(gestures)[0]
    with pytest.raises(UserError, match=r"holds \d+ model steps \(1 videos\), fewer than the 100 asked for"):
        quantize_int8(xml, tmp_path / "q.xml", one_video, num_samples=100, progress=False)
    with pytest.raises(UserError, match=f"--calib-samples 20 is too few .* at least {MIN_SAMPLES}"):
        quantize_int8(xml, tmp_path / "q.xml", gestures, num_samples=20, progress=False)
    assert not (tmp_path / "q.xml").exists()


@pytest.mark.slow  # NNCF statistics over 100 steps plus three streamed passes over the test split
def test_int8_graph_is_quantized_and_tracks_fp32(setup, tmp_path):
    xml, gestures = setup
    out = quantize_int8(xml, tmp_path / "step_int8.xml", gestures, num_samples=100, progress=False)
    sidecar = load_sidecar(out)
    assert sidecar["quantization"]["samples"] == 100
    ops = {op.get_type_name() for op in openvino_core().read_model(str(out)).get_ops()}
    assert "FakeQuantize" in ops
    fp32, int8 = OpenVINORuntime(xml, precision="fp32"), OpenVINORuntime(out, precision="fp32")
    frames = np.random.default_rng(0).standard_normal((12, 1, 3, 48, 48)).astype(np.float32)
    a_state, b_state = fp32.init_state(), int8.init_state()
    a = np.concatenate([fp32.step(f, a_state)[0] for f in frames])
    b = np.concatenate([int8.step(f, b_state)[0] for f in frames])
    assert not np.allclose(a, b, atol=1e-6)  # it did change the arithmetic
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.9  # yet computes the same function

    scores = streaming_accuracy({"fp32": fp32, "again": OpenVINORuntime(xml, precision="fp32"), "int8": int8},
                                gestures, reference="fp32", progress=False)
    assert scores["fp32"]["step_agreement"] is None
    assert scores["again"]["step_agreement"] == 1.0 and scores["again"]["top1"] == scores["fp32"]["top1"]
    assert scores["fp32"]["videos"] == len((gestures / "test.csv").read_text().splitlines())
    assert 0 <= scores["int8"]["step_agreement"] <= 1


def signal_stack() -> tuple[int, bool]:
    """This thread's alternate signal stack (sigaltstack): its address and whether that memory is still mapped."""
    libc = ctypes.CDLL(None, use_errno=True)

    class StackT(ctypes.Structure):
        _fields_ = [("ss_sp", ctypes.c_void_p), ("ss_flags", ctypes.c_int), ("ss_size", ctypes.c_size_t)]

    stack = StackT()
    assert libc.sigaltstack(None, ctypes.byref(stack)) == 0
    address = stack.ss_sp or 0
    ranges = (line.split()[0].split("-") for line in Path("/proc/self/maps").read_text().splitlines())
    return address, any(int(start, 16) <= address < int(end, 16) for start, end in ranges)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/maps")
def test_int8_runtimes_leave_the_signal_stack_usable(setup, tmp_path):
    """Compiling an int8 graph swaps the thread's signal stack inside OpenVINO's CPU plugin; with one Core per
    runtime, releasing them in the order they were made left it pointing at freed memory, and the next Python signal
    handler (a child process's SIGCHLD once a DataLoader has run) crashed the process with SIGSEGV."""
    faulthandler.enable()  # gives the thread a signal stack of its own, as pytest and a debugging user do
    xml, gestures = setup
    int8 = quantize_int8(xml, tmp_path / "step_int8.xml", gestures, num_samples=MIN_SAMPLES, progress=False)
    first, second = OpenVINORuntime(int8, precision="fp32"), OpenVINORuntime(int8, precision="fp32")
    del first, second
    gc.collect()
    assert signal_stack()[1], "the thread's signal stack points at unmapped memory"


def run_export(*argv):
    """`streamact export ...` through the command line's entry point (its one-line errors and exit codes)."""
    from streamact.cli.main import main

    return main(["export", *map(str, argv)])


def test_cli_int8_needs_calibration_and_an_openvino_step_graph(setup, tmp_path, capsys):
    xml, _ = setup
    assert run_export(xml, "--int8") == 2
    assert "error: --int8 needs calibration data" in capsys.readouterr().err
    assert run_export(xml) == 2
    assert "is exported already; give the .pt checkpoint, or --int8" in capsys.readouterr().err
    assert run_export(tmp_path / "model.pt", "--int8", "--calib", "x", "--format", "onnx") == 2
    assert "add --format openvino --streaming" in capsys.readouterr().err


def test_cli_int8_too_few_steps_is_one_line(setup, tmp_path, capsys):
    xml, gestures = setup
    one_video = calibration_videos(gestures)[0]
    assert run_export(xml, "--int8", "--calib", one_video, "--calib-samples", 100, "--out", tmp_path / "q.xml") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: the calibration data holds")  # the last line: no traceback


@pytest.mark.slow  # NNCF over 100 steps of a small AMMA plus three streamed passes over the test videos
def test_detector_int8_calibrates_on_streamed_clips_and_is_scored_by_map(tmp_path, capsys):
    """A tubelet detector quantizes like a recognizer, but its steps are clips of t frames carrying the K-clip
    feature cache, its calibration set is a detection dataset's train videos, and its accuracy is frame- and
    video-mAP."""
    pytest.importorskip("nncf")
    pkl = write_tiny_detection_set(tmp_path / "det", num_videos=24, num_frames=20)  # 120 train steps
    from streamact.data.datasets.detection import load_detection_annotations

    ann = load_detection_annotations(pkl)
    clip_len, size = 2, 64
    cfg = load_config("configs/detection_amma_effl0.yaml", [
        "--model.name=amma_mobilenetv2", "--model.pretrained=false", "--data.num_clips=3",
        f"--data.clip_len={clip_len}", f"--data.input_size={size}"])
    torch.manual_seed(0)
    model = randomise_bn(build_model_from_config(cfg, list(ann.labels), pretrained=False)).eval()
    xml = export_openvino(model, tmp_path / "step.xml", streaming=True, model_name="amma_mobilenetv2")

    videos = calibration_videos(tmp_path / "det")
    assert sorted(videos) == sorted(ann.frame_path(v, 1).parent for v in ann.train_videos[0])
    samples = calibration_samples(xml, videos, 40, progress=False)
    assert samples[0]["clip"].shape == (1, 3, clip_len, size, size)
    cache = [k for k in samples[0] if k != "clip"]
    assert cache and not any(samples[0][k].any() for k in cache)  # a stream starts from an empty cache ...
    assert all(samples[5][k].any() for k in cache)  # ... which its steps fill

    assert run_export(xml, "--int8", "--calib", tmp_path / "det", "--calib-samples", MIN_SAMPLES,
                      "--eval-data", tmp_path / "det") == 0
    report = json.loads(capsys.readouterr().out)  # stdout is the JSON alone (NNCF's progress goes to stderr)
    int8 = tmp_path / "step_int8.xml"
    assert report["int8"] == str(int8) and load_sidecar(int8)["detection"] == load_sidecar(xml)["detection"]
    assert "FakeQuantize" in {op.get_type_name() for op in openvino_core().read_model(str(int8)).get_ops()}
    test_videos = len(ann.test_videos[0])
    for name in ("fp32", "bf16", "int8"):
        assert report["accuracy"][name]["videos"] == test_videos
        assert set(report["accuracy"][name]) == {"videos", "frame_map@0.5", "video_map@0.2", "video_map@0.5"}

    scores = detection_accuracy({"fp32": OpenVINORuntime(xml, precision="fp32"),
                                 "again": OpenVINORuntime(xml, precision="fp32")}, tmp_path / "det", progress=False)
    assert scores["again"] == scores["fp32"] == report["accuracy"]["fp32"]  # deterministic: the same streams
    with pytest.raises(UserError, match="classes .* are not the model's"):
        detection_accuracy({"fp32": OpenVINORuntime(xml, precision="fp32")}, _other_classes(tmp_path), progress=False)


def _other_classes(tmp_path):
    """The tiny detection set with its classes renamed."""
    from streamact.data.datasets.detection import load_detection_annotations, save_detection_annotations

    ann = load_detection_annotations(tmp_path / "det" / "UCF101v2-GT.pkl")
    ann.labels = ["a", "b"]
    save_detection_annotations(ann, tmp_path / "det" / "UCF101v2-GT.pkl")
    return tmp_path / "det"
