"""ONNX export of a streamable model: the streaming step graph (state as explicit graph inputs/outputs) or the clip
graph.

Streaming graph of a recognizer (S state tensors, in `StreamState` order)::

    frame (1, C, H, W) ─┐
    state_in.0 … ───────┴─► forward_step ─► logits (1, K), state_out.0 … state_out.{S-1}

Streaming graph of a tubelet detector (AMMA: one step per new clip of t frames, the K-clip feature cache as state)::

    clip (1, C, t, H, W) ─┐
    state_in.0 … ─────────┴─► forward_step ─► heatmap (1, K, h, w), movement (1, 2N, h, w), size (1, 2N, h, w),
                                              state_out.0 … state_out.{S-1}

Clip graph::

    clip (1, C, T, H, W) ─► forward ─► logits (1, K)  (a detector: heatmap, movement, size)

Both are written with the TorchScript-based exporter (``dynamo=False``), which needs no extra dependency, at batch
size 1 and static shapes (what a live stream runs; static shapes also let OpenVINO and ONNX Runtime plan memory
once). A JSON sidecar (see `streamact.export.validate`) is written next to the graph.
"""
from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

from streamact import __version__
from streamact.export.sidecar import SIDECAR_FORMAT, SIDECAR_VERSION, sidecar_path
from streamact.models._state import StreamState

__all__ = ["export_onnx", "build_sidecar", "step_input"]


def step_input(model: nn.Module) -> torch.Tensor:
    """Zero input of one streaming step: a frame (1, C, H, W), or a tubelet detector's newest clip (1, C, t, H, W)."""
    c, h, w = model.pretrained_cfg.input_size
    return torch.zeros(1, c, model.clip_len, h, w) if _is_detector(model) else torch.zeros(1, c, h, w)


def _is_detector(model: nn.Module) -> bool:
    return hasattr(model, "num_clips")


def _outputs(out: torch.Tensor | tuple[torch.Tensor, ...]) -> dict[str, torch.Tensor]:
    """A model's outputs by graph name: ``logits``, or the fields of a named tuple (a detector's head outputs)."""
    return dict(zip(out._fields, out)) if isinstance(out, tuple) else {"logits": out}


class _StepGraph(nn.Module):
    """``forward(frame, *states)`` form of ``model.forward_step``: the exporter only sees flat tensor inputs, so
    the StreamState is rebuilt from the positional state tensors under the model's own state names."""

    def __init__(self, model: nn.Module, state_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.state_names = state_names

    def forward(self, frame: torch.Tensor, *states: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out, state = self.model.forward_step(frame, StreamState(zip(self.state_names, states)))
        return (*_outputs(out).values(), *state.values())


def _port(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    return {"name": name, "shape": list(tensor.shape), "dtype": str(tensor.dtype).removeprefix("torch.")}


def build_sidecar(model: nn.Module, *, streaming: bool, opset: int, model_name: str | None = None,
                  ) -> tuple[dict[str, Any], tuple[torch.Tensor, ...]]:
    """The sidecar of an export of ``model`` and the example inputs the graph is traced with.

    Args:
        model: recognizer or tubelet detector in eval mode with ``pretrained_cfg`` (and ``init_state`` /
            ``forward_step`` if ``streaming``).
        streaming: describe the step graph (else the clip graph).
        opset: ONNX opset recorded in the sidecar.
        model_name: registered model name, if known.

    Returns:
        The sidecar dict and the example inputs (frame or newest clip and zero state, or a zero clip).
    """
    cfg = model.pretrained_cfg
    c, h, w = cfg.input_size
    with torch.no_grad():
        if streaming:
            state = model.init_state(1)
            x = step_input(model)
            out, new_state = model.forward_step(x, state)
            inputs = (x, *state.values())
            states = [{**_port(name, tensor), "input": f"state_in.{i}", "output": f"state_out.{i}"}
                      for i, (name, tensor) in enumerate(state.items())]
            input_ports = [_port("clip" if _is_detector(model) else "frame", x),
                           *(_port(s["input"], t) for s, t in zip(states, state.values()))]
            output_ports = [*(_port(name, t) for name, t in _outputs(out).items()),
                            *(_port(s["output"], t) for s, t in zip(states, new_state.values()))]
        else:
            # Models with temporal layers only accept num_segments frames per clip (TSN.forward_features).
            clip = torch.zeros(1, c, getattr(model, "num_segments", cfg.clip_len), h, w)
            inputs, states = (clip,), []
            input_ports = [_port("clip", clip)]
            output_ports = [_port(name, t) for name, t in _outputs(model(clip)).items()]
    sidecar = {
        "format": SIDECAR_FORMAT,
        "format_version": SIDECAR_VERSION,
        "streamact_version": __version__,
        "opset": opset,
        "model_name": model_name,
        "mode": "streaming" if streaming else "clip",
        "pretrained_cfg": cfg.to_dict(),
        "inputs": input_ports,
        "outputs": output_ports,
        "state": states,
    }
    if _is_detector(model):  # what the detection engine needs to cut frames into clips and decode tubelets
        sidecar["detection"] = {"num_clips": model.num_clips, "clip_len": model.clip_len}
    return sidecar, inputs


def export_onnx(model: nn.Module, path: str | Path, *, streaming: bool, opset: int = 17,
                model_name: str | None = None) -> Path:
    """Export ``model`` to ONNX and write its sidecar ``<path stem>.json`` next to it.

    Args:
        model: recognizer (for ``streaming`` a causal one, see `TSN.make_causal`) or tubelet detector (AMMA).
            Traced in eval mode; its training mode is restored afterwards.
        path: ``.onnx`` file to write (parent directories are created).
        streaming: export the per-frame (detector: per-clip) step graph with the state as inputs
            ``state_in.<i>`` and outputs ``state_out.<i>``; otherwise the clip graph ``clip -> logits``.
        opset: ONNX opset version.
        model_name: registered model name recorded in the sidecar, if known.

    Returns:
        ``path``.

    Raises:
        TypeError: if ``streaming`` and the model has no streaming form.
    """
    if streaming and not hasattr(model, "forward_step"):
        raise TypeError(f"{type(model).__name__} has no streaming form (init_state/forward_step)")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    model.eval()
    try:
        sidecar, inputs = build_sidecar(model, streaming=streaming, opset=opset, model_name=model_name)
        graph = _StepGraph(model, [s["name"] for s in sidecar["state"]]) if streaming else model
        with torch.no_grad(), warnings.catch_warnings():
            # The legacy exporter is chosen on purpose (no onnxscript dependency). Its deprecation notice, tracer
            # warnings about Python-level shape arithmetic (static at batch 1) and notes that strided slices are
            # not constant-folded (they act on activations, not weights) are not actionable here.
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
            warnings.filterwarnings("ignore", message="Constant folding - Only steps=1")
            torch.onnx.export(
                graph, inputs, str(path),
                input_names=[p["name"] for p in sidecar["inputs"]],
                output_names=[p["name"] for p in sidecar["outputs"]],
                opset_version=opset,
                do_constant_folding=True,
                dynamo=False,
            )
    finally:
        model.train(was_training)
    sidecar_path(path).write_text(json.dumps(sidecar, indent=2) + "\n")
    return path
