"""Export to ONNX / OpenVINO: sidecar, runtimes' parity with PyTorch, mismatch errors, `streamact export`."""
import json
import re
import shutil

import numpy as np
import pytest
import torch
from _fixtures import randomise_bn

from streamact import create_model
from streamact.cli.main import main as cli_main
from streamact.engine.checkpoint import save_checkpoint
from streamact.engine.config import config_to_dict, load_config
from streamact.engine.build import build_model_from_config
from streamact.export.onnx import export_onnx
from streamact.export.openvino import export_openvino
from streamact.export.validate import ExportMismatchError, check_clip_parity, check_parity, load_sidecar, sidecar_path
from streamact.inference.runtimes import OnnxRuntime, OpenVINORuntime, TorchRuntime, load_runtime
from streamact.inference.streaming import StreamingEngine
from streamact.models._pretrained import PretrainedCfg

pytestmark = pytest.mark.export

T, SIZE = 4, 64
LABELS = ["swipe_left", "swipe_right", "shake", "none"]
MODELS = ["tsm_mobilenetv2_100", "mixtconv_mobilenetv2_100", "tsn_mobilenetv2_100"]


@pytest.fixture(scope="module", params=MODELS)
def exported(request, tmp_path_factory):
    """A tiny causal model and its streaming exports (ONNX and OpenVINO IR)."""
    name = request.param
    torch.manual_seed(0)
    model = randomise_bn(create_model(name, num_classes=4, num_segments=T, causal=True, img_size=SIZE,
                                      label_names=LABELS)).eval()
    out = tmp_path_factory.mktemp(name)
    onnx_path = export_onnx(model, out / "step.onnx", streaming=True, model_name=name)
    xml_path = export_openvino(model, out / "ov" / "step.xml", streaming=True, model_name=name)
    return name, model, onnx_path, xml_path


@pytest.fixture(scope="module")
def tsm_onnx(tmp_path_factory):
    """The TSM step graph in a directory of its own, for tests that copy and corrupt it."""
    torch.manual_seed(0)
    model = randomise_bn(create_model(MODELS[0], num_classes=4, num_segments=T, causal=True, img_size=SIZE,
                                      label_names=LABELS)).eval()
    return model, export_onnx(model, tmp_path_factory.mktemp("tsm") / "step.onnx", streaming=True)


def test_sidecar_describes_graph_and_state(exported):
    name, model, onnx_path, xml_path = exported
    sidecar = load_sidecar(onnx_path)
    state = model.init_state(1)
    assert sidecar["mode"] == "streaming" and sidecar["model_name"] == name and sidecar["opset"] == 17
    assert PretrainedCfg.from_dict(sidecar["pretrained_cfg"]) == model.pretrained_cfg
    assert [s["name"] for s in sidecar["state"]] == list(state)  # StreamState order, original keys
    assert [s["shape"] for s in sidecar["state"]] == [list(v.shape) for v in state.values()]
    assert [p["name"] for p in sidecar["inputs"]] == ["frame"] + [f"state_in.{i}" for i in range(len(state))]
    assert [p["name"] for p in sidecar["outputs"]] == ["logits"] + [f"state_out.{i}" for i in range(len(state))]
    assert load_sidecar(xml_path) == sidecar  # one interface, whatever the file format


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_runtime_matches_torch_over_a_stream(exported, runtime):
    _, model, onnx_path, xml_path = exported
    rt = load_runtime(onnx_path if runtime == "onnxruntime" else xml_path, precision="fp32", num_threads=1)
    result = check_parity(model, rt, num_frames=64)  # logits compared at every step, from a zero state
    assert result["num_frames"] == 64
    assert result["max_abs_diff"] < 1e-4, result
    assert result["top1_agreement"] == 1.0


def test_openvino_state_lives_in_the_plugin_one_per_stream(exported):
    _, model, _, xml_path = exported
    rt = OpenVINORuntime(xml_path, precision="fp32", num_threads=1)
    frames = torch.randn(2, 6, 1, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(3))
    torch_states = [model.init_state(1), model.init_state(1)]
    states = [rt.init_state(), rt.init_state()]
    with torch.inference_mode():
        for t in range(frames.shape[1]):  # two streams interleaved on one runtime must not mix
            for s in range(2):
                expected, torch_states[s] = model.forward_step(frames[s, t], torch_states[s])
                logits, new_state = rt.step(frames[s, t].numpy(), states[s])
                assert new_state is states[s]  # advanced in place
                np.testing.assert_allclose(logits, expected.numpy(), atol=1e-4)
    for s in range(2):
        arrays = states[s].arrays()
        assert list(arrays) == list(torch_states[s])  # the sidecar's state names
        for key, value in torch_states[s].items():
            np.testing.assert_allclose(arrays[key], value.numpy(), atol=1e-4)
    assert not np.any(next(iter(rt.init_state().arrays().values())))  # a new stream starts from zeros
    with pytest.raises(TypeError, match="init_state"):
        rt.step(frames[0, 0].numpy(), OpenVINORuntime(xml_path, precision="fp32").init_state())
    with pytest.raises(TypeError, match="init_state"):
        rt.step(frames[0, 0].numpy(), [np.zeros(1, np.float32)])


@pytest.mark.parametrize("name", MODELS)
def test_clip_graph_matches_forward(name, tmp_path):
    model = randomise_bn(create_model(name, num_classes=4, num_segments=T, causal=True, img_size=SIZE)).eval()
    onnx_path = export_onnx(model, tmp_path / "clip.onnx", streaming=False)
    assert load_sidecar(onnx_path)["inputs"][0] == {"name": "clip", "shape": [1, 3, T, SIZE, SIZE], "dtype": "float32"}
    result = check_clip_parity(model, onnx_path, num_clips=2)
    assert result["max_abs_diff"] < 1e-4 and result["top1_agreement"] == 1.0
    if name == MODELS[0]:
        xml_path = export_openvino(model, tmp_path / "clip.xml", streaming=False)
        assert check_clip_parity(model, xml_path, num_clips=2)["max_abs_diff"] < 1e-4
    with pytest.raises(ValueError, match="--streaming"):
        OnnxRuntime(onnx_path)  # a clip graph cannot be stepped


def test_streaming_engine_same_labels_on_every_runtime(exported):
    _, model, onnx_path, xml_path = exported
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, size=(24, 48, 56, 3), dtype=np.uint8)
    runs = {}
    for rt in (TorchRuntime(model), OnnxRuntime(onnx_path, num_threads=1),
               OpenVINORuntime(xml_path, precision="fp32", num_threads=1)):
        engine = StreamingEngine(rt, smoothing="none")
        runs[rt.name] = [engine.push(f) for f in frames]
    reference = runs.pop("torch")
    for name, preds in runs.items():
        assert [p.label for p in preds] == [p.label for p in reference], name
        np.testing.assert_allclose([p.probs for p in preds], [p.probs for p in reference], atol=1e-5)


def test_openvino_bf16_runs(exported):
    _, model, _, xml_path = exported
    rt = load_runtime(xml_path, num_threads=1)
    assert rt.precision == "bf16"  # OpenVINO's default
    assert check_parity(model, rt, num_frames=8)["max_abs_diff"] < 0.1


def _corrupt(tsm_onnx, tmp_path, edit):
    _, onnx_path = tsm_onnx
    copy = tmp_path / "model.onnx"
    shutil.copyfile(onnx_path, copy)
    sidecar = json.loads(sidecar_path(onnx_path).read_text())
    edit(sidecar)
    sidecar_path(copy).write_text(json.dumps(sidecar))
    return copy


def _grow_state(s):
    s["state"][3]["shape"][-1] += 1


def _drop_state(s):
    del s["state"][-1], s["inputs"][-1], s["outputs"][-1]


def _rename_output(s):
    s["outputs"][0]["name"] = "scores"


def _extra_label(s):
    s["pretrained_cfg"]["label_names"].append("wave")


def _input_size(s):
    s["pretrained_cfg"]["input_size"] = [3, 96, 96]


def _untrained_as_text(s):
    s["classifier_trained"] = "no"


@pytest.mark.parametrize("edit, message", [
    (_grow_state, r"state '.*cache0' \(input 'state_in.3'\) has shape \[.*\] in the sidecar but"),
    (_drop_state, r"graph input 'state_in.\d+' is not in the sidecar"),
    (_rename_output, r"first output must be 'logits'"),
    (_extra_label, r"5 label names for num_classes=4"),
    (_input_size, r"first input must be 'frame' of shape \[1, 3, 96, 96\]"),
    (_untrained_as_text, r"classifier_trained must be true or false, got 'no'"),
])
def test_mismatched_sidecar_is_refused(tsm_onnx, tmp_path, edit, message):
    path = _corrupt(tsm_onnx, tmp_path, edit)
    with pytest.raises(ExportMismatchError, match=re.escape(str(path)) + ".*" + message):
        load_sidecar(path)
    with pytest.raises(ExportMismatchError):
        load_runtime(path)


def test_mismatched_sidecar_of_openvino_ir(exported, tmp_path):
    _, _, _, xml_path = exported
    for f in (xml_path, xml_path.with_suffix(".bin")):
        shutil.copyfile(f, tmp_path / f.name)
    sidecar = json.loads(sidecar_path(xml_path).read_text())
    sidecar["state"][-1]["shape"][0] = 2
    sidecar_path(tmp_path / xml_path.name).write_text(json.dumps(sidecar))
    with pytest.raises(ExportMismatchError, match=r"state 'count'.*has shape \[2, 1\] in the sidecar but \[1, 1\]"):
        load_runtime(tmp_path / xml_path.name, precision="fp32")


def test_missing_sidecar_names_expected_path(tsm_onnx, tmp_path):
    _, onnx_path = tsm_onnx
    lonely = tmp_path / "lonely.onnx"
    shutil.copyfile(onnx_path, lonely)
    expected = re.escape(str(tmp_path / "lonely.json"))
    with pytest.raises(FileNotFoundError, match=f"sidecar not found, expected {expected}"):
        load_runtime(lonely)
    with pytest.raises(FileNotFoundError, match="exported model not found"):
        load_sidecar(tmp_path / "absent.xml")


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_load_runtime_exports_a_model_on_the_fly(tsm_onnx, runtime):
    model, _ = tsm_onnx
    rt = load_runtime(model, runtime=runtime, precision="fp32", num_threads=1)
    assert rt.name == runtime and not rt.path.exists()  # the engine holds the graph; the temporary files are gone
    assert check_parity(model, rt, num_frames=8)["max_abs_diff"] < 1e-4


def test_load_runtime_rejects_impossible_combinations(tsm_onnx):
    model, onnx_path = tsm_onnx
    assert isinstance(load_runtime(model), TorchRuntime)
    with pytest.raises(ValueError, match="fp32 only"):
        load_runtime(model, runtime="onnxruntime", precision="bf16")
    with pytest.raises(ValueError, match="fp32 only"):
        load_runtime(onnx_path, precision="bf16")
    with pytest.raises(ValueError, match="runtime must be one of"):
        load_runtime(onnx_path, runtime="tensorrt")


def _run_cli(argv):
    return cli_main(["export", *argv])


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A `streamact train`-style checkpoint of a bi-directionally trained TSM."""
    cfg = load_config(None, ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.clip_len=4",
                             f"--data.input_size={SIZE}"])
    model = randomise_bn(build_model_from_config(cfg, LABELS, pretrained=False))
    path = tmp_path_factory.mktemp("run") / "best.pt"
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "class_names": LABELS}, path)
    return path


def test_cli_streaming_openvino_export_warns_and_checks(checkpoint, capsys):
    assert _run_cli([str(checkpoint), "--format", "openvino", "--streaming", "--check", "--num-frames", "16"]) == 0
    captured = capsys.readouterr()
    assert "trained bi-directionally" in captured.err
    check = json.loads(captured.out)  # stdout holds only the check's JSON
    assert check["check"] == "pass" and check["runtime"] == "openvino" and check["num_frames"] == 16
    out = checkpoint.with_name("best_streaming.xml")
    rt = load_runtime(out)
    assert rt.pretrained_cfg.label_names == tuple(LABELS) and rt.pretrained_cfg.input_size == (3, SIZE, SIZE)
    assert load_sidecar(out)["model_name"] == "tsm_mobilenetv2_100"


def test_cli_onnx_exports_load(checkpoint, tmp_path, capsys):
    out = tmp_path / "exports" / "gestures.onnx"
    assert _run_cli([str(checkpoint), "--streaming", "--out", str(out)]) == 0
    runtime = load_runtime(out)
    logits, _ = runtime.step(np.zeros((1, 3, SIZE, SIZE), np.float32), runtime.init_state())
    assert logits.shape == (1, len(LABELS))
    assert _run_cli([str(checkpoint), "--out", str(tmp_path / "clip.onnx"), "--check"]) == 0
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["check"] == "pass"
    assert load_sidecar(tmp_path / "clip.onnx")["mode"] == "clip"
    assert "classifier_trained" not in load_sidecar(out)  # a trained checkpoint: nothing to warn about


@pytest.mark.parametrize("fmt, suffix", [("onnx", ".onnx"), ("openvino", ".xml")])
def test_cli_export_of_an_untrained_classifier_is_recorded_and_warned_about(tmp_path, capsys, fmt, suffix):
    out = tmp_path / f"untrained{suffix}"
    assert _run_cli(["tsm_mobilenetv2_100", "--allow-untrained", "--format", fmt, "--streaming",
                     "--out", str(out)]) == 0
    assert load_sidecar(out)["classifier_trained"] is False
    capsys.readouterr()
    jsonl = tmp_path / "p.jsonl"
    assert cli_main(["recognize", "synthetic:gestures?num=1&size=64", "--model", str(out), "--max-frames", "4",
                     "--out-jsonl", str(jsonl), "--no-progress"]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "never trained" in line]
    assert warned == [f"warning: {out} was exported with --allow-untrained: its classifier was never trained on "
                      "actions, so its predictions are meaningless; train or fine-tune the model and export the "
                      "checkpoint"]  # once per run, not per frame
    assert len(jsonl.read_text().splitlines()) == 4  # it still runs: the user opted in


def test_cli_bad_input(checkpoint, tmp_path, capsys):
    assert _run_cli([str(tmp_path / "missing.pt")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err
    assert _run_cli([str(checkpoint), "--format", "openvino", "--out", str(tmp_path / "m.onnx")]) == 2
    assert "writes a .xml file" in capsys.readouterr().err


def test_event_settings_travel_to_every_runtime(tmp_path):
    from streamact.inference.events import EventCfg

    own = EventCfg(smoothing="window", background="none", on_threshold=0.7, switch_frames=5)
    model = create_model(MODELS[0], num_classes=4, num_segments=T, causal=True, img_size=SIZE,
                         label_names=LABELS).eval()
    model.pretrained_cfg = model.pretrained_cfg.replace(events=own)
    onnx_path = export_onnx(model, tmp_path / "step.onnx", streaming=True)
    xml_path = export_openvino(model, tmp_path / "ov" / "step.xml", streaming=True)
    for runtime in (OnnxRuntime(onnx_path), OpenVINORuntime(xml_path, precision="fp32")):
        assert runtime.pretrained_cfg.events == own
        assert StreamingEngine(runtime).smoothing == "window"  # the model's own smoothing by default
    assert StreamingEngine(model, smoothing="ema").smoothing == "ema"  # unless asked otherwise
