"""The sidecar of an exported model and its check against the model file (no PyTorch: runtimes load it).

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
                  "shape": [...], "dtype": "float32"}, ...],  # StreamState order; empty in clip mode
     "classifier_trained": false}  # only in exports of a classifier never trained on actions (--allow-untrained)

A tubelet detector (AMMA) steps once per clip of t frames: its first input is the newest clip ``"clip"``
[1, 3, t, H, W], its outputs start with the head outputs ``"heatmap"`` [1, C, h, w], ``"movement"`` [1, 2K, h, w] and
``"size"`` [1, 2K, h, w] instead of ``"logits"``, and the sidecar has one more entry, ``"detection": {"num_clips": K,
"clip_len": t}``.

The sidecar describes the graph's interface, not its file format, so the ONNX and the OpenVINO export of one
model share the same sidecar content.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from streamact.pretrained import PretrainedCfg

__all__ = [
    "SIDECAR_FORMAT",
    "SIDECAR_VERSION",
    "ExportMismatchError",
    "GraphPort",
    "sidecar_path",
    "read_signature",
    "read_openvino_model",
    "openvino_signature",
    "load_sidecar",
    "mark_untrained",
    "classifier_trained",
    "model_outputs",
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
        ExportMismatchError: the file cannot be read as that format (corrupt or truncated).
    """
    path = Path(model_path)
    if path.suffix == ".onnx":
        import onnx

        try:
            graph = onnx.load(str(path), load_external_data=False).graph
        except Exception as exc:  # onnx raises protobuf's DecodeError and others for a damaged file
            raise ExportMismatchError(f"{path}: cannot read the ONNX graph ({exc}); export it again") from exc
        weights = {init.name for init in graph.initializer}  # old exporters list weights as inputs too

        def onnx_port(value_info) -> GraphPort:
            tensor_type = value_info.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim)
            dtype = np.dtype(onnx.helper.tensor_dtype_to_np_dtype(tensor_type.elem_type)).name
            return GraphPort(frozenset([value_info.name]), shape, dtype)

        return {"inputs": [onnx_port(v) for v in graph.input if v.name not in weights],
                "outputs": [onnx_port(v) for v in graph.output]}
    if path.suffix == ".xml":
        return openvino_signature(read_openvino_model(path))
    raise ValueError(f"{path}: unknown exported model format (expected .onnx or .xml)")


def read_openvino_model(path: str | Path):
    """``read_model`` of an IR (or ONNX) file, with a damaged file reported as such.

    Raises:
        ExportMismatchError: the file (or the ``.bin`` beside an ``.xml``) is corrupt, truncated or missing.
    """
    from streamact.inference.runtimes import openvino_core

    try:
        return openvino_core().read_model(str(path))
    except RuntimeError as exc:  # OpenVINO reports parse errors and short .bin files as RuntimeError
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ExportMismatchError(f"{path}: cannot read the model, the file or its .bin is corrupt ({reason}); "
                                  "export it again") from exc


def openvino_signature(model) -> dict[str, list[GraphPort]]:
    """Graph inputs and outputs of an ``openvino.Model`` already read (see `read_signature`)."""

    def port(p) -> GraphPort:
        shape = tuple(d.get_length() if d.is_static else None for d in p.get_partial_shape())
        return GraphPort(frozenset(p.get_names()), shape, np.dtype(p.get_element_type().to_dtype()).name)

    return {"inputs": [port(p) for p in model.inputs], "outputs": [port(p) for p in model.outputs]}


def model_outputs(sidecar: dict[str, Any]) -> list[str]:
    """Names of the graph outputs that are the model's own (``logits``, or a detector's head outputs), in order;
    the state outputs follow them."""
    return [p["name"] for p in sidecar["outputs"][:3 if sidecar.get("detection") is not None else 1]]


def load_sidecar(model_path: str | Path, *, signature: dict[str, list[GraphPort]] | None = None) -> dict[str, Any]:
    """Read the sidecar of an exported model and check it against the model file.

    Checked: format and version; the pretrained config parses; the frame / clip input agrees with the config's
    input size and the logits with its number of classes and labels; every input, output and state entry exists
    in the graph with the same shape and dtype; the graph has no input or output the sidecar does not describe.

    Args:
        model_path: the exported ``.onnx`` or ``.xml`` file.
        signature: the graph's ports when the caller has read the model already (`openvino_signature`), so it is
            not read twice; default: `read_signature(model_path)`.

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
    _check_signature(sidecar, signature or read_signature(path), fail)
    return sidecar


def mark_untrained(model_path: str | Path) -> None:
    """Record in the sidecar of an exported model that its classifier was never trained on actions.

    `streamact export --allow-untrained` calls it, so every runtime that loads the export can say its predictions
    are meaningless (`classifier_trained`), however far the file travels from the command that made it.
    """
    side = sidecar_path(model_path)
    sidecar = json.loads(side.read_text())
    sidecar["classifier_trained"] = False
    side.write_text(json.dumps(sidecar, indent=2) + "\n")


def classifier_trained(sidecar: dict[str, Any]) -> bool:
    """Whether the exported classifier was trained on actions (exports without the key were: see `mark_untrained`)."""
    return sidecar.get("classifier_trained", True)


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
    if not isinstance(sidecar.get("classifier_trained", True), bool):
        raise fail(f"classifier_trained must be true or false, got {sidecar['classifier_trained']!r}")
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
    detection = sidecar.get("detection")
    if detection is not None and not (isinstance(detection, dict) and all(
            isinstance(detection.get(k), int) and detection[k] >= 1 for k in ("num_clips", "clip_len"))):
        raise fail(f"'detection' must be {{num_clips, clip_len}} (positive integers), got {detection!r}")
    first_in = sidecar["inputs"][0]
    c, h, w = cfg.input_size
    if sidecar["mode"] == "streaming" and detection is None:
        if first_in["name"] != "frame" or first_in["shape"] != [1, c, h, w]:
            raise fail(f"first input must be 'frame' of shape [1, {c}, {h}, {w}] (pretrained_cfg.input_size), got "
                       f"{first_in['name']!r} {first_in['shape']}")
    else:
        t = detection["clip_len"] if sidecar["mode"] == "streaming" else "T"
        if first_in["name"] != "clip" or len(first_in["shape"]) != 5 or first_in["shape"][:2] != [1, c] \
                or first_in["shape"][3:] != [h, w] or (t != "T" and first_in["shape"][2] != t):
            raise fail(f"first input must be 'clip' of shape [1, {c}, {t}, {h}, {w}], got {first_in['name']!r} "
                       f"{first_in['shape']}")
    _check_model_outputs(sidecar, cfg.num_classes, fail)
    if sidecar["mode"] == "clip" and sidecar["state"]:
        raise fail("a clip graph has no state")
    # Runtimes feed and read the state through the "state" entries, so they must cover the other inputs/outputs.
    num_outputs = len(model_outputs(sidecar))
    for kind, key, skip in (("inputs", "input", 1), ("outputs", "output", num_outputs)):
        listed, carried = [e["name"] for e in sidecar[kind][skip:]], [e[key] for e in sidecar["state"]]
        if listed != carried:
            raise fail(f"{kind} after the model's own {listed} differ from the state {key}s {carried}")


def _check_model_outputs(sidecar: dict[str, Any], num_classes: int, fail: _Fail) -> None:
    """A recognizer's first output is 'logits' [1, num_classes]; a detector's are 'heatmap' [1, num_classes, h, w],
    'movement' and 'size' [1, 2K, h, w]."""
    outputs = sidecar["outputs"]
    detection = sidecar.get("detection")
    if detection is None:
        if outputs[0]["name"] != "logits" or outputs[0]["shape"] != [1, num_classes]:
            raise fail(f"first output must be 'logits' of shape [1, {num_classes}] (pretrained_cfg.num_classes), "
                       f"got {outputs[0]['name']!r} {outputs[0]['shape']}")
        return
    got = [(o["name"], o["shape"]) for o in outputs[:3]]
    grid = outputs[0]["shape"][2:]
    k2 = 2 * detection["num_clips"]
    expected = [("heatmap", [1, num_classes, *grid]), ("movement", [1, k2, *grid]), ("size", [1, k2, *grid])]
    if len(grid) != 2 or got != expected:
        raise fail(f"a detector's first outputs must be 'heatmap' [1, {num_classes}, h, w], 'movement' and 'size' "
                   f"[1, {k2}, h, w] (num_classes, 2 x num_clips), got {got}")


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
