"""One small interface over the engines that run a streaming step: PyTorch eager, ONNX Runtime and OpenVINO.

A runtime holds a model and exposes `pretrained_cfg`, `init_state()` and `step(frame, state) -> (logits, state)`
with numpy-or-tensor frames (1, C, H, W) float32 already preprocessed. State is opaque to the caller: pass the
state a step returns to the next step, and call `init_state()` for a new stream. It is a `StreamState` of tensors
for torch and a list of numpy arrays (sidecar order) for ONNX Runtime. OpenVINO keeps it inside the plugin (an
`OpenVINOState`): the step graph's state inputs and outputs become variables, so no state crosses into Python on
any frame. The exported runtimes read their preprocessing, labels and state layout from the export's JSON sidecar.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

from streamact.models._pretrained import PretrainedCfg

__all__ = ["Runtime", "TorchRuntime", "OnnxRuntime", "OpenVINORuntime", "OpenVINOState", "RUNTIMES", "as_runtime",
           "load_runtime"]

RUNTIMES = ("torch", "onnxruntime", "openvino")
# precision name -> OpenVINO INFERENCE_PRECISION_HINT
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}


@runtime_checkable
class Runtime(Protocol):
    pretrained_cfg: Any

    def init_state(self) -> Any: ...

    def step(self, frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...


class TorchRuntime:
    """PyTorch eager execution of `model.forward_step` (batch 1, inference mode, fp32 or bf16 autocast)."""

    name = "torch"

    def __init__(self, model: nn.Module, *, bf16: bool = False) -> None:
        if not hasattr(model, "forward_step"):
            raise TypeError(f"{type(model).__name__} has no streaming form (forward_step/init_state)")
        self.model = model.eval()
        self.pretrained_cfg = model.pretrained_cfg
        self.bf16 = bf16

    def init_state(self):
        return self.model.init_state(1)

    @torch.inference_mode()
    def step(self, frame, state):
        x = torch.as_tensor(frame)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            logits, state = self.model.forward_step(x, state)
        return logits.float().numpy(), state


def as_runtime(model_or_runtime) -> Runtime:
    """Wrap a torch model in `TorchRuntime`; pass runtimes through."""
    if isinstance(model_or_runtime, nn.Module):
        return TorchRuntime(model_or_runtime)
    if isinstance(model_or_runtime, Runtime):
        return model_or_runtime
    raise TypeError(f"expected a streamable model or a Runtime, got {type(model_or_runtime).__name__}")


class _ExportedRuntime:
    """Shared part of the runtimes of an exported step graph: the checked sidecar and the pretrained config."""

    def __init__(self, path: str | Path) -> None:
        from streamact.export.validate import load_sidecar

        self.path = Path(path)
        self.sidecar = load_sidecar(self.path)
        if self.sidecar["mode"] != "streaming":
            raise ValueError(f"{self.path} is a {self.sidecar['mode']} graph; export it with --streaming to run "
                             "it frame by frame")
        self.pretrained_cfg = PretrainedCfg.from_dict(self.sidecar["pretrained_cfg"])


class OnnxRuntime(_ExportedRuntime):
    """ONNX Runtime (CPU execution provider) running an exported streaming step graph.

    Args:
        path: ``.onnx`` file exported with ``streaming=True``; its sidecar must sit next to it.
        num_threads: intra-op threads (default: ONNX Runtime's choice, one per physical core).

    Raises:
        FileNotFoundError: if the model or its sidecar is missing.
        ExportMismatchError: if they disagree.
    """

    name = "onnxruntime"

    def __init__(self, path: str | Path, *, num_threads: int | None = None) -> None:
        import onnxruntime as ort

        super().__init__(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if num_threads:
            options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1  # the step graph is one chain; parallel branches would fight for cores
        # Frames arrive at camera rate: threads that spin between steps would burn the cores other work needs (they
        # slow a neighbouring OpenVINO step down almost 2x in `streamact bench`).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        states = self.sidecar["state"]
        # Fixed once: the graph's input / output names in the order step() feeds and returns them.
        self.input_names = ["frame"] + [s["input"] for s in states]
        self.output_names = ["logits"] + [s["output"] for s in states]
        self._state_specs = [(tuple(s["shape"]), np.dtype(s["dtype"])) for s in states]

    def init_state(self) -> list[np.ndarray]:
        """Zero state (fresh arrays), one array per state tensor of the sidecar."""
        return [np.zeros(shape, dtype) for shape, dtype in self._state_specs]

    def step(self, frame: np.ndarray | torch.Tensor, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """One frame (1, C, H, W) float32 and the state -> logits (1, K) and the new state."""
        feed = dict(zip(self.input_names, (np.ascontiguousarray(frame, dtype=np.float32), *state)))
        logits, *state = self.session.run(self.output_names, feed)
        return logits, state


class OpenVINOState:
    """The state of one stream on an `OpenVINORuntime`: an infer request whose variables hold the state tensors.

    Each `OpenVINORuntime.init_state` makes a new one (zero variables), so streams never share state; a step
    advances it in place and returns it.
    """

    def __init__(self, runtime: "OpenVINORuntime") -> None:
        self.runtime = runtime
        self.request = runtime.compiled.create_infer_request()  # variables start at zero, like init_state's arrays

    def arrays(self) -> dict[str, np.ndarray]:
        """Copies of the current state tensors, keyed by the sidecar's state names (for inspection and tests)."""
        values = {v.name: v.state.data for v in self.request.query_state()}  # MakeStateful names them input+output
        return {s["name"]: np.array(values[s["input"] + s["output"]], dtype=np.float32)
                for s in self.runtime.sidecar["state"]}


class OpenVINORuntime(_ExportedRuntime):
    """OpenVINO (CPU plugin) running an exported streaming step graph, with the state kept in the plugin.

    The sidecar pairs each state input with its output; OpenVINO's ``MakeStateful`` pass turns every pair into a
    variable (ReadValue / Assign), so a step feeds only the frame and reads only the logits: no per-tensor Python
    overhead, and no layout or precision conversion of the state on every frame (the bf16 step's Reorder time at
    224² fell from 0.27 to 0.03 ms; docs/RESULTS.md, "Streaming speed").

    Args:
        path: ``.xml`` IR (or ``.onnx``, which OpenVINO reads directly) exported with ``streaming=True``; its
            sidecar must sit next to it.
        precision: ``"bf16"`` (OpenVINO's default on CPUs with AMX / AVX-512 bf16; logits agree with fp32 on
            top-1, not to 1e-4) or ``"fp32"`` (parity with PyTorch to 1e-4). Inputs and outputs stay float32.
        num_threads: inference threads (default: OpenVINO's choice).
        config: further OpenVINO CPU properties, e.g. ``{"PERF_COUNT": True}`` to read per-node timings from
            ``state.request.profiling_info``.

    Raises:
        FileNotFoundError: if the model or its sidecar is missing.
        ExportMismatchError: if they disagree.
        ValueError: for an unknown precision.
    """

    name = "openvino"

    def __init__(self, path: str | Path, *, precision: str = "bf16", num_threads: int | None = None,
                 config: dict[str, Any] | None = None) -> None:
        import openvino as ov
        from openvino._pyopenvino.passes import MakeStateful, Manager

        if precision not in _OV_PRECISION:
            raise ValueError(f"precision must be one of {', '.join(_OV_PRECISION)}, got {precision!r}")
        super().__init__(path)
        self.precision = precision
        core = ov.Core()
        model = core.read_model(str(self.path))
        states = self.sidecar["state"]
        if states:
            _copy_input_passthrough_states(model, {s["output"] for s in states})
            passes = Manager()
            passes.register_pass(MakeStateful({s["input"]: s["output"] for s in states}))
            passes.run_passes(model)
        properties: dict[str, Any] = {"INFERENCE_PRECISION_HINT": _OV_PRECISION[precision],
                                      "PERFORMANCE_HINT": "LATENCY", **(config or {})}
        if num_threads:
            properties["INFERENCE_NUM_THREADS"] = num_threads
        self.compiled = core.compile_model(model, "CPU", properties)
        self._logits = self.compiled.output("logits")

    def init_state(self) -> OpenVINOState:
        """A new stream: a fresh infer request with zero state variables."""
        return OpenVINOState(self)

    def step(self, frame: np.ndarray | torch.Tensor, state: OpenVINOState) -> tuple[np.ndarray, OpenVINOState]:
        """One frame (1, C, H, W) float32 and the stream's state -> logits (1, K) and the same state, advanced.

        Raises:
            TypeError: if ``state`` is not an `OpenVINOState` of this runtime.
        """
        if not isinstance(state, OpenVINOState) or state.runtime is not self:
            raise TypeError("pass the state from this runtime's init_state() or its previous step")
        result = state.request.infer({0: np.ascontiguousarray(frame, dtype=np.float32)}, share_inputs=True)
        return result[self._logits], state


def _copy_input_passthrough_states(model, outputs: set[str]) -> None:
    """Give every state output that is a graph input passed through (e.g. VTN's previous frame) its own copy.

    OpenVINO's CPU plugin (2026.4) shares memory between a variable and a graph input assigned to it directly,
    and the variable then reads uninitialised memory; ``maximum(x, x)`` is an exact copy the plugin keeps.
    """
    import openvino.opset13 as ops

    for result in model.get_results():
        if not outputs & result.output(0).get_names():
            continue
        source = result.input_value(0)
        while source.get_node().get_type_name() == "Identity":
            source = source.get_node().input_value(0)
        if source.get_node().get_type_name() == "Parameter":
            result.input(0).replace_source_output(ops.maximum(source, source).output(0))


def load_runtime(path_or_model: str | Path | nn.Module, *, runtime: str | None = None, precision: str | None = None,
                 num_threads: int | None = None) -> Runtime:
    """A runtime for a torch model or an exported streaming graph.

    Args:
        path_or_model: a streamable torch model, or an exported ``.onnx`` / ``.xml`` file with its sidecar. A model
            asked to run on onnxruntime or openvino is exported (ONNX step graph, causal models only) to a temporary
            directory first; both engines hold the graph in memory once loaded, so the files are removed again.
        runtime: ``"torch"``, ``"onnxruntime"`` or ``"openvino"``; default: torch for a model, onnxruntime for
            ``.onnx``, openvino for ``.xml``. OpenVINO also runs ``.onnx`` files.
        precision: ``"fp32"`` or ``"bf16"``; default: bf16 for OpenVINO, fp32 otherwise (ONNX Runtime: fp32 only;
            torch: bf16 means CPU autocast).
        num_threads: threads of the exported runtimes (default: the runtime's choice).

    Returns:
        The runtime.

    Raises:
        ValueError: for an unknown runtime or precision, or a runtime that cannot run the given input.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if precision not in (None, "fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    if isinstance(path_or_model, nn.Module):
        if runtime in (None, "torch"):
            return TorchRuntime(path_or_model, bf16=precision == "bf16")
        if runtime == "onnxruntime" and precision == "bf16":
            raise ValueError("the onnxruntime runtime runs fp32 only; use openvino for bf16")
        from streamact.export.onnx import export_onnx

        with tempfile.TemporaryDirectory(prefix="streamact-runtime-") as tmp:
            path = export_onnx(path_or_model, Path(tmp) / "step.onnx", streaming=True)
            return load_runtime(path, runtime=runtime, precision=precision, num_threads=num_threads)
    path = Path(path_or_model)
    runtime = runtime or {".onnx": "onnxruntime", ".xml": "openvino"}.get(path.suffix)
    if runtime == "onnxruntime" and path.suffix == ".onnx":
        if precision == "bf16":
            raise ValueError("the onnxruntime runtime runs fp32 only; use openvino for bf16")
        return OnnxRuntime(path, num_threads=num_threads)
    if runtime == "openvino" and path.suffix in (".xml", ".onnx"):
        return OpenVINORuntime(path, precision=precision or "bf16", num_threads=num_threads)
    raise ValueError(f"cannot run {path} with runtime {runtime!r}: onnxruntime runs .onnx files, openvino runs .xml "
                     "or .onnx files, torch runs the model itself")
