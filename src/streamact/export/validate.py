"""The sidecar of an exported model, its check against the model file, and parity of runtimes with PyTorch.

Every exported graph (ONNX or OpenVINO IR) has a JSON sidecar ``<stem>.json`` beside it that says what the graph's
inputs, outputs and streaming state are, and carries the model's pretrained config (preprocessing, labels), so a
runtime preprocesses frames exactly as the model was trained and builds a zero state without torch. Sidecar
layout (format version 1)::

    {"format": "streamact-export", "format_version": 1, "streamact_version": "0.1.0", "opset": 17,
     "model_name": "tsm_mobilenetv2_100" or null, "mode": "streaming" or "clip",
     "pretrained_cfg": {...},                                  # PretrainedCfg.to_dict()
     "inputs":  [{"name": "frame", "shape": [1, 3, H, W], "dtype": "float32"},
                 {"name": "state_in.0", ...}, ...],            # clip mode: one input "clip" (1, 3, T, H, W)
     "outputs": [{"name": "logits", "shape": [1, K], "dtype": "float32"}, {"name": "state_out.0", ...}, ...],
     "state":   [{"name": "<StreamState key>", "input": "state_in.0", "output": "state_out.0",
                  "shape": [...], "dtype": "float32"}, ...]}  # StreamState order; empty in clip mode

The sidecar describes the graph's interface, not its file format, so the ONNX and the OpenVINO export of one
model share the same sidecar content.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn

from streamact.models._pretrained import PretrainedCfg

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "ExportMismatchError",
    "GraphPort",
    "sidecar_path",
    "read_signature",
    "load_sidecar",
    "check_parity",
    "check_clip_parity",
]

SIDECAR_FORMAT = "streamact-export"
SIDECAR_VERSION = 1


class GraphPort(NamedTuple):
    """One input or output of an exported graph."""

    names: frozenset[str]  # ONNX: one name; OpenVINO: every tensor name of the port
    shape: tuple[int | None, ...]  # None for a dynamic dimension
    dtype: str  # numpy dtype name


class ExportMismatchError(ValueError):
    """An exported model and its sidecar disagree (or the sidecar is malformed); running it would give wrong
    results or fail deep inside a runtime, so it is refused up front."""


# Builds the error for one mismatch, prefixed with the model and sidecar paths.
_Fail = Callable[[str], ExportMismatchError]


def sidecar_path(model_path: str | Path) -> Path:
    """The sidecar of an exported model: same directory and stem, suffix ``.json``."""
    return Path(model_path).with_suffix(".json")


def read_signature(model_path: str | Path) -> dict[str, list[GraphPort]]:
    """Graph inputs and outputs of an exported model file.

    Args:
        model_path: ``.onnx`` (read with onnx, weights not loaded) or ``.xml`` (OpenVINO IR).

    Returns:
        ``{"inputs": [GraphPort, ...], "outputs": [...]}`` in graph order.

    Raises:
        ValueError: for another suffix.
    """
    path = Path(model_path)
    if path.suffix == ".onnx":
        import onnx

        graph = onnx.load(str(path), load_external_data=False).graph
        weights = {init.name for init in graph.initializer}  # old exporters list weights as inputs too

        def onnx_port(value_info) -> GraphPort:
            tensor_type = value_info.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
            return GraphPort(frozenset([value_info.name]), shape, dtype)

        return {"inputs": [onnx_port(v) for v in graph.input if v.name not in weights],
                "outputs": [onnx_port(v) for v in graph.output]}
    if path.suffix == ".xml":
        import openvino as ov

        model = ov.Core().read_model(str(path))

        def ov_port(port) -> GraphPort:
            shape = tuple(d.get_length() if d.is_static else None for d in port.get_partial_shape())
            return GraphPort(frozenset(port.get_names()), shape, np.dtype(port.get_element_type().to_dtype()).name)

        return {"inputs": [ov_port(p) for p in model.inputs], "outputs": [ov_port(p) for p in model.outputs]}
    raise ValueError(f"{path}: unknown exported model format (expected .onnx or .xml)")


def load_sidecar(model_path: str | Path) -> dict[str, Any]:
    """Read the sidecar of an exported model and check it against the model file.

    Checked: format and version; the pretrained config parses; the frame / clip input agrees with the config's
    input size and the logits with its number of classes and labels; every input, output and state entry exists
    in the graph with the same shape and dtype; the graph has no input or output the sidecar does not describe.

    Args:
        model_path: the exported ``.onnx`` or ``.xml`` file.

    Returns:
        The sidecar as a dict (layout in the module docstring).

    Raises:
        FileNotFoundError: if the model file or its sidecar is missing; the message names the expected path.
        ExportMismatchError: naming the files and the first mismatch found.
    """
    path = Path(model_path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model not found: {path}")
    side = sidecar_path(path)
    if not side.is_file():
        raise FileNotFoundError(
            f"{path}: sidecar not found, expected {side} (`streamact export` writes it next to the model; it holds "
            "the preprocessing, labels and state layout the runtimes need)")
    try:
        sidecar = json.loads(side.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ExportMismatchError(f"{side}: not a valid JSON sidecar ({exc})") from exc

    def fail(detail: str) -> ExportMismatchError:
        return ExportMismatchError(f"{path} does not match its sidecar {side}: {detail}")

    _check_sidecar(sidecar, fail)
    _check_signature(sidecar, read_signature(path), fail)
    return sidecar


def _check_sidecar(sidecar: Any, fail: _Fail) -> None:
    """Internal consistency of a sidecar: fields present, config parses, frame and logits agree with the config."""
    if not isinstance(sidecar, dict) or sidecar.get("format") != SIDECAR_FORMAT:
        raise fail(f"not a {SIDECAR_FORMAT} sidecar")
    version = sidecar.get("format_version")
    if not isinstance(version, int) or version > SIDECAR_VERSION:
        raise fail(f"sidecar format_version {version!r} is not supported (this streamact reads up to "
                   f"{SIDECAR_VERSION}; upgrade streamact or re-export)")
    missing = [k for k in ("mode", "pretrained_cfg", "inputs", "outputs", "state") if k not in sidecar]
    if missing:
        raise fail(f"sidecar lacks {', '.join(missing)}")
    if sidecar["mode"] not in ("streaming", "clip"):
        raise fail(f"mode must be 'streaming' or 'clip', got {sidecar['mode']!r}")
    try:
        cfg = PretrainedCfg.from_dict(sidecar["pretrained_cfg"])
    except (KeyError, TypeError, ValueError) as exc:
        raise fail(f"pretrained_cfg does not parse ({exc})") from exc
    for key in ("inputs", "outputs", "state"):
        entries = sidecar[key]
        if not isinstance(entries, list) or not all(_is_port(e, state=key == "state") for e in entries):
            raise fail(f"'{key}' must be a list of {{name, shape, dtype{', input, output' if key == 'state' else ''}}}")
    if not sidecar["inputs"] or not sidecar["outputs"]:
        raise fail("no inputs or no outputs described")
    if cfg.label_names is not None and len(cfg.label_names) != cfg.num_classes:
        raise fail(f"{len(cfg.label_names)} label names for num_classes={cfg.num_classes}")
    first_in, first_out = sidecar["inputs"][0], sidecar["outputs"][0]
    c, h, w = cfg.input_size
    if sidecar["mode"] == "streaming":
        if first_in["name"] != "frame" or first_in["shape"] != [1, c, h, w]:
            raise fail(f"first input must be 'frame' of shape [1, {c}, {h}, {w}] (pretrained_cfg.input_size), got "
                       f"{first_in['name']!r} {first_in['shape']}")
    elif first_in["name"] != "clip" or len(first_in["shape"]) != 5 or first_in["shape"][:2] != [1, c] \
            or first_in["shape"][3:] != [h, w]:
        raise fail(f"first input must be 'clip' of shape [1, {c}, T, {h}, {w}], got {first_in['name']!r} "
                   f"{first_in['shape']}")
    if first_out["name"] != "logits" or first_out["shape"] != [1, cfg.num_classes]:
        raise fail(f"first output must be 'logits' of shape [1, {cfg.num_classes}] (pretrained_cfg.num_classes), "
                   f"got {first_out['name']!r} {first_out['shape']}")
    if sidecar["mode"] == "clip" and sidecar["state"]:
        raise fail("a clip graph has no state")
    # Runtimes feed and read the state through the "state" entries, so they must cover the other inputs/outputs.
    for kind, key in (("inputs", "input"), ("outputs", "output")):
        listed, carried = [e["name"] for e in sidecar[kind][1:]], [e[key] for e in sidecar["state"]]
        if listed != carried:
            raise fail(f"{kind} after the first {listed} differ from the state {key}s {carried}")


def _is_port(entry: Any, *, state: bool) -> bool:
    keys = ("name", "shape", "dtype", "input", "output") if state else ("name", "shape", "dtype")
    return (isinstance(entry, dict) and all(k in entry for k in keys) and isinstance(entry["shape"], list)
            and all(isinstance(d, int) for d in entry["shape"]))


def _check_signature(sidecar: dict[str, Any], signature: dict[str, list[GraphPort]], fail: _Fail) -> None:
    """Every port the sidecar describes matches the graph, and the graph has no port the sidecar does not describe."""
    for kind in ("inputs", "outputs"):
        described = {e["name"] for e in sidecar[kind]}
        for port in signature[kind]:
            if not port.names & described:
                raise fail(f"graph {kind[:-1]} '{'/'.join(sorted(port.names))}' is not in the sidecar")
        for entry in sidecar[kind]:
            _check_port(entry["name"], entry, signature[kind], f"{kind[:-1]} '{entry['name']}'", fail)
    for entry in sidecar["state"]:
        what = f"state '{entry['name']}'"
        _check_port(entry["input"], entry, signature["inputs"], f"{what} (input '{entry['input']}')", fail)
        _check_port(entry["output"], entry, signature["outputs"], f"{what} (output '{entry['output']}')", fail)


def _check_port(name: str, entry: dict[str, Any], ports: list[GraphPort], what: str, fail: _Fail) -> None:
    port = next((p for p in ports if name in p.names), None)
    if port is None:
        raise fail(f"{what} is not in the graph")
    shape = entry["shape"]
    if len(port.shape) != len(shape) or any(g is not None and g != s for g, s in zip(port.shape, shape)):
        raise fail(f"{what} has shape {shape} in the sidecar but "
                   f"{[d if d is not None else '?' for d in port.shape]} in the model")
    if port.dtype != entry["dtype"]:
        raise fail(f"{what} has dtype {entry['dtype']} in the sidecar but {port.dtype} in the model")


def _frames(model: nn.Module, num_frames: int, seed: int) -> torch.Tensor:
    c, h, w = model.pretrained_cfg.input_size
    g = torch.Generator().manual_seed(seed)
    return torch.randn(num_frames, 1, c, h, w, generator=g)  # (N, 1, C, H, W): N steps of batch 1


def check_parity(model: nn.Module, runtime: Any, num_frames: int = 64, seed: int = 0, *,
                 frames: Iterable[np.ndarray | torch.Tensor] | None = None) -> dict[str, float]:
    """Stream the same frames through the torch model and a runtime, both from a fresh state, and compare.

    Every step is compared, so a state that is carried wrongly shows up even when single frames agree.

    Args:
        model: the streamable (causal) torch model the runtime was exported from; evaluated in eval mode and
            left in the mode it had.
        runtime: a `Runtime` (``init_state()``, ``step(frame, state)``).
        num_frames: steps of random normal frames, when ``frames`` is not given.
        seed: seed of the random frames.
        frames: preprocessed frames (1, C, H, W) to use instead of random ones.

    Returns:
        ``max_abs_diff``: largest |logit difference| over all steps and classes; ``top1_agreement``: fraction of
        steps with the same arg-max; ``num_frames``: steps compared.
    """
    frames = _frames(model, num_frames, seed) if frames is None else frames
    was_training = model.training
    model.eval()
    max_diff, agree, count = 0.0, 0, 0
    try:
        with torch.inference_mode():
            torch_state, runtime_state = model.init_state(1), runtime.init_state()
            for frame in frames:
                x = torch.as_tensor(np.asarray(frame, dtype=np.float32))
                expected, torch_state = model.forward_step(x, torch_state)
                logits, runtime_state = runtime.step(x.numpy(), runtime_state)
                expected, logits = expected.numpy().reshape(-1), np.asarray(logits, dtype=np.float32).reshape(-1)
                max_diff = max(max_diff, float(np.abs(expected - logits).max()))
                agree += int(expected.argmax() == logits.argmax())
                count += 1
    finally:
        model.train(was_training)
    return {"max_abs_diff": max_diff, "top1_agreement": agree / max(count, 1), "num_frames": count}


def check_clip_parity(model: nn.Module, model_path: str | Path, *, num_clips: int = 4,
                      seed: int = 0) -> dict[str, float]:
    """Compare an exported clip graph with ``model(clip)`` on random clips (one at a time: the graph has batch 1).

    The graph runs on ONNX Runtime (``.onnx``) or OpenVINO at fp32 (``.xml``).

    Args:
        model: the torch model the graph was exported from (eval mode is used; its mode is restored).
        model_path: exported ``.onnx`` or ``.xml`` clip graph (with its sidecar).
        num_clips: random clips compared.
        seed: seed of the clips.

    Returns:
        ``max_abs_diff``, ``top1_agreement`` and ``num_clips``.

    Raises:
        ValueError: if the export is a streaming graph.
    """
    sidecar = load_sidecar(model_path)
    if sidecar["mode"] != "clip":
        raise ValueError(f"{model_path} is a {sidecar['mode']} graph; use check_parity with a runtime")
    run = _clip_runner(Path(model_path))
    shape = sidecar["inputs"][0]["shape"]
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    max_diff, agree = 0.0, 0
    try:
        with torch.inference_mode():
            for _ in range(num_clips):
                clip = torch.randn(*shape, generator=g)  # (1, C, T, H, W)
                expected, logits = model(clip).numpy().reshape(-1), run(clip.numpy()).reshape(-1)
                max_diff = max(max_diff, float(np.abs(expected - logits).max()))
                agree += int(expected.argmax() == logits.argmax())
    finally:
        model.train(was_training)
    return {"max_abs_diff": max_diff, "top1_agreement": agree / max(num_clips, 1), "num_clips": num_clips}


def _clip_runner(path: Path):
    """A function clip (1, C, T, H, W) float32 -> logits for an exported clip graph."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda clip: session.run(["logits"], {"clip": clip})[0]
    import openvino as ov

    compiled = ov.Core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    logits = compiled.output("logits")
    return lambda clip: compiled({"clip": clip})[logits]
