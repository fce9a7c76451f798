"""One small interface over the engines that run a streaming step: PyTorch eager, ONNX Runtime and OpenVINO.

A runtime holds a model and exposes `pretrained_cfg`, `detection`, `init_state()` and `step(frame, state) ->
(logits, state)` with numpy-or-tensor frames (1, C, H, W) float32 already preprocessed. A tubelet detector (AMMA)
steps once per clip: a clip (1, C, t, H, W) in, its head outputs (heatmap, movement, size) out, and `detection` is
``{"num_clips": K, "clip_len": t}`` (None for a recognizer). State is opaque to the caller: pass the
state a step returns to the next step, and call `init_state()` for a new stream. It is a `StreamState` of tensors
for torch and a list of numpy arrays (sidecar order) for ONNX Runtime. OpenVINO keeps it inside the plugin (an
`OpenVINOState`): the step graph's state inputs and outputs become variables, so no state crosses into Python on
any frame. The exported runtimes read their preprocessing, labels and state layout from the export's JSON sidecar.

Only `TorchRuntime` needs PyTorch, and it imports it when one is made: a deployment runs exported models with
numpy and OpenVINO or ONNX Runtime alone (`pip install streamact[runtime]`).
"""
from __future__ import annotations

import functools
import os
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from streamact.pretrained import PretrainedCfg

__all__ = ["Runtime", "TorchRuntime", "OnnxRuntime", "OpenVINORuntime", "OpenVINOState", "RUNTIMES", "as_runtime",
           "load_runtime", "default_cache_dir", "import_openvino"]

RUNTIMES = ("torch", "onnxruntime", "openvino")
# precision name -> OpenVINO INFERENCE_PRECISION_HINT
_OV_PRECISION = {"bf16": "bf16", "fp32": "f32"}
_DEFAULT: Any = object()  # "argument not given", where None is a meaningful value


@runtime_checkable
class Runtime(Protocol):
    pretrained_cfg: Any

    def init_state(self) -> Any: ...

    def step(self, frame: np.ndarray, state: Any) -> tuple[np.ndarray, Any]: ...


class TorchRuntime:
    """PyTorch eager execution of `model.forward_step` (batch 1, inference mode, fp32 or bf16 autocast)."""

    name = "torch"

    def __init__(self, model, *, bf16: bool = False, device: str = "cpu") -> None:
        import torch

        if not hasattr(model, "forward_step"):
            raise TypeError(f"{type(model).__name__} has no streaming form (forward_step/init_state)")
        self.device = torch.device(device)
        self.model = model.eval().to(self.device)
        self.pretrained_cfg = model.pretrained_cfg
        self.detection = {"num_clips": model.num_clips, "clip_len": model.clip_len} if hasattr(
            model, "num_clips") else None
        self.bf16 = bf16

    def init_state(self):
        return self.model.init_state(1)

    def step(self, frame, state):
        import torch

        x = torch.as_tensor(frame).to(self.device)
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            out, state = self.model.forward_step(x, state)
        if isinstance(out, tuple):  # a detector's head outputs (heatmap, movement, size)
            return tuple(o.float().cpu().numpy() for o in out), state
        return out.float().cpu().numpy(), state


def _is_torch_model(obj: Any) -> bool:
    """Whether `obj` is a torch module, without importing torch (an object can only be one if torch is loaded)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def as_runtime(model_or_runtime) -> Runtime:
    """Wrap a torch model in `TorchRuntime`; pass runtimes through."""
    if _is_torch_model(model_or_runtime):
        return TorchRuntime(model_or_runtime)
    if isinstance(model_or_runtime, Runtime):
        return model_or_runtime
    raise TypeError(f"expected a streamable model or a Runtime, got {type(model_or_runtime).__name__}")


class ExportedRuntime:
    """Shared part of the runtimes of an exported step graph: the checked sidecar and the pretrained config."""

    def __init__(self, path: str | Path, signature: dict | None = None) -> None:
        from streamact.export.sidecar import classifier_trained, load_sidecar, model_outputs

        self.path = Path(path)
        self.sidecar = load_sidecar(self.path, signature=signature)
        if self.sidecar["mode"] != "streaming":
            raise ValueError(f"{self.path} is a {self.sidecar['mode']} graph; export it with --streaming to run "
                             "it frame by frame")
        self.pretrained_cfg = PretrainedCfg.from_dict(self.sidecar["pretrained_cfg"])
        if not classifier_trained(self.sidecar):  # the user opted in when exporting; say it where it runs
            warnings.warn(f"{self.path} was exported with --allow-untrained: its classifier was never trained on "
                          "actions, so its predictions are meaningless; train or fine-tune the model and export "
                          "the checkpoint", UserWarning, stacklevel=3)
        self.detection = self.sidecar.get("detection")
        self.output_names = model_outputs(self.sidecar)  # the model's own outputs; the state outputs follow


def model_output(outputs: list[np.ndarray]) -> np.ndarray | tuple[np.ndarray, ...]:
    """A recognizer's logits, or a detector's head outputs as a tuple (as `TorchRuntime.step` returns them)."""
    return outputs[0] if len(outputs) == 1 else tuple(outputs)


class OnnxRuntime(ExportedRuntime):
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
        # Fixed once: the graph's input / output names in the order step() feeds and reads them.
        self.input_names = [self.sidecar["inputs"][0]["name"]] + [s["input"] for s in states]
        self._run_names = self.output_names + [s["output"] for s in states]
        self._state_specs = [(tuple(s["shape"]), np.dtype(s["dtype"])) for s in states]

    def init_state(self) -> list[np.ndarray]:
        """Zero state (fresh arrays), one array per state tensor of the sidecar."""
        return [np.zeros(shape, dtype) for shape, dtype in self._state_specs]

    def step(self, frame: np.ndarray, state: list[np.ndarray]) -> tuple[Any, list[np.ndarray]]:
        """One frame (1, C, H, W) (a detector: clip (1, C, t, H, W)) float32 and the state -> logits (1, K) (a
        detector: heatmap, movement, size) and the new state."""
        feed = dict(zip(self.input_names, (np.ascontiguousarray(frame, dtype=np.float32), *state)))
        outputs = self.session.run(self._run_names, feed)
        n = len(self.output_names)
        return model_output(outputs[:n]), outputs[n:]


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


class OpenVINORuntime(ExportedRuntime):
    """OpenVINO (CPU plugin) running an exported streaming step graph, with the state kept in the plugin.

    The sidecar pairs each state input with its output; OpenVINO's ``MakeStateful`` pass turns every pair into a
    variable (ReadValue / Assign), so a step feeds only the frame and reads only the logits (a detector: the clip
    and its head outputs; its K-clip feature cache stays in the plugin): no per-tensor Python overhead, and no
    layout or precision conversion of the state on every frame (the bf16 step's Reorder time at 224² fell from
    0.27 to 0.03 ms; docs/RESULTS.md, "Streaming speed").

    Args:
        path: ``.xml`` IR (or ``.onnx``, which OpenVINO reads directly) exported with ``streaming=True``; its
            sidecar must sit next to it.
        precision: ``"bf16"`` (OpenVINO's default on CPUs with AMX / AVX-512 bf16; logits agree with fp32 on
            top-1, not to 1e-4) or ``"fp32"`` (parity with PyTorch to 1e-4). Inputs and outputs stay float32.
        num_threads: inference threads (default: OpenVINO's choice).
        config: further OpenVINO CPU properties, e.g. ``{"PERF_COUNT": True}`` to read per-node timings from
            ``state.request.profiling_info``.
        cache_dir: OpenVINO's model cache: the compiled model is stored here, so the next run with the same
            model and settings imports it instead of compiling (default: `default_cache_dir()`; None: no cache). A
            cache that cannot be written or read is skipped with a warning.

    Raises:
        FileNotFoundError: if the model or its sidecar is missing.
        ExportMismatchError: if they disagree, or the model file is corrupt.
        ValueError: for an unknown precision.
    """

    name = "openvino"

    def __init__(self, path: str | Path, *, precision: str = "bf16", num_threads: int | None = None,
                 config: dict[str, Any] | None = None, cache_dir: str | Path | None = _DEFAULT) -> None:
        from streamact.export.sidecar import openvino_signature, read_openvino_model

        import_openvino()  # before openvino's own submodules: see import_openvino
        from openvino._pyopenvino.passes import MakeStateful, Manager

        if precision not in _OV_PRECISION:
            raise ValueError(f"precision must be one of {', '.join(_OV_PRECISION)}, got {precision!r}")
        if not Path(path).is_file():
            raise FileNotFoundError(f"exported model not found: {path}")
        model = read_openvino_model(path)  # read once: the sidecar check and the compiler share it
        super().__init__(path, signature=openvino_signature(model))
        self.precision = precision
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
        self.compiled = _compile_cached(openvino_core(), model, properties,
                                        default_cache_dir() if cache_dir is _DEFAULT else cache_dir)
        self._outputs = [self.compiled.output(name) for name in self.output_names]

    def init_state(self) -> OpenVINOState:
        """A new stream: a fresh infer request with zero state variables."""
        return OpenVINOState(self)

    def step(self, frame: np.ndarray, state: OpenVINOState) -> tuple[Any, OpenVINOState]:
        """One frame (1, C, H, W) (a detector: clip (1, C, t, H, W)) float32 and the stream's state -> logits (1, K)
        (a detector: heatmap, movement, size) and the same state, advanced.

        Raises:
            TypeError: if ``state`` is not an `OpenVINOState` of this runtime.
        """
        if not isinstance(state, OpenVINOState) or state.runtime is not self:
            raise TypeError("pass the state from this runtime's init_state() or its previous step")
        result = state.request.infer({0: np.ascontiguousarray(frame, dtype=np.float32)}, share_inputs=True)
        return model_output([result[o] for o in self._outputs]), state


def import_openvino():
    """``import openvino``, without loading its model conversion tools when OpenVINO is not loaded yet.

    OpenVINO's package init also imports its converter (``openvino.tools.ovc``: a third of a second of a cold
    start, and its telemetry), in a ``try`` that skips it on ImportError. Running an IR never converts anything,
    so the converter is held back for this import only: `export_openvino` imports it by name when it is needed.
    """
    if "openvino" not in sys.modules:
        converter = "openvino.tools.ovc"
        held = converter not in sys.modules
        if held:
            sys.modules[converter] = None  # makes `from openvino.tools.ovc import ...` raise ImportError
        try:
            import openvino
        finally:
            if held:
                del sys.modules[converter]
    import openvino

    return openvino


@functools.cache
def openvino_core():
    """The process's one ``openvino.Core``: every compile, read and runtime goes through it.

    One Core is cheaper (the CPU plugin loads once) and it is also a fix: compiling an int8 graph makes
    OpenVINO's CPU plugin (2026.4) install its own signal stack on the calling thread and put the previous one back
    when its Core is destroyed. Two Cores destroyed in the order they were made leave the thread's signal stack
    pointing at freed memory, and the next signal with a Python handler (SIGINT, or the SIGCHLD of a child
    process once PyTorch's DataLoader has set its handler) kills the process with SIGSEGV.
    """
    return import_openvino().Core()


def default_cache_dir() -> Path:
    """Where OpenVINO caches compiled models: ``$STREAMACT_CACHE_DIR``, else ``$XDG_CACHE_HOME/streamact/openvino``,
    else ``~/.cache/streamact/openvino``."""
    if os.environ.get("STREAMACT_CACHE_DIR"):
        return Path(os.environ["STREAMACT_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "streamact" / "openvino"


def _compile_cached(core, model, properties: dict[str, Any], cache_dir: str | Path | None):
    """``core.compile_model`` on the CPU through OpenVINO's model cache in `cache_dir` (None: no cache).

    The cache turns the compile of later runs into an import of the stored blob (docs/RESULTS.md, "Running
    without PyTorch"). A cache folder that cannot be created or written, or whose blob OpenVINO cannot use,
    never stops a run: the model is compiled without the cache, with a warning.
    """
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(cache_dir, os.W_OK | os.X_OK):
                raise PermissionError(f"no write permission on {cache_dir}")
            return core.compile_model(model, "CPU", {**properties, "CACHE_DIR": str(cache_dir)})
        except (OSError, RuntimeError) as exc:
            warnings.warn(f"the OpenVINO model cache {cache_dir} cannot be used ({str(exc).strip().splitlines()[0]}); "
                          "compiling without it (set STREAMACT_CACHE_DIR to a writable folder)", RuntimeWarning,
                          stacklevel=3)
    return core.compile_model(model, "CPU", properties)


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


def load_runtime(path_or_model, *, runtime: str | None = None, precision: str | None = None,
                 num_threads: int | None = None, device: str = "cpu") -> Runtime:
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
        device: where the torch runtime runs the model ("cpu" or "cuda"); the exported runtimes run on the CPU.

    Returns:
        The runtime.

    Raises:
        ValueError: for an unknown runtime or precision, or a runtime that cannot run the given input.
    """
    if runtime is not None and runtime not in RUNTIMES:
        raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, got {runtime!r}")
    if device != "cpu" and not (_is_torch_model(path_or_model) and runtime in (None, "torch")):
        raise ValueError(f"device {device!r} needs the torch runtime; onnxruntime and openvino run on the CPU")
    if precision not in (None, "fp32", "bf16"):
        raise ValueError(f"precision must be fp32 or bf16, got {precision!r}")
    if _is_torch_model(path_or_model):
        if runtime in (None, "torch"):
            return TorchRuntime(path_or_model, bf16=precision == "bf16", device=device)
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
