"""Parity of the runtimes of an exported model with PyTorch (the sidecar itself: `streamact.export.sidecar`)."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from streamact.export.onnx import step_input
from streamact.export.sidecar import (  # noqa: F401  (re-exported: the sidecar API predates its own module)
    SIDECAR_FORMAT,
    SIDECAR_VERSION,
    ExportMismatchError,
    GraphPort,
    load_sidecar,
    model_outputs,
    read_signature,
    sidecar_path,
)

__all__ = ["check_parity", "check_clip_parity"]


def _frames(model: nn.Module, num_frames: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    # (N, 1, C, H, W): N steps of batch 1 (a detector: (N, 1, C, t, H, W), a clip per step)
    return torch.randn(num_frames, *step_input(model).shape, generator=g)


def _flat(out: Any) -> tuple[np.ndarray, np.ndarray]:
    """(every output value in one vector, the first output's values): logits, or a detector's heatmap first."""
    outs = [np.asarray(o, dtype=np.float32).reshape(-1) for o in (out if isinstance(out, tuple) else (out,))]
    return np.concatenate(outs), outs[0]


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
        frames: preprocessed frames (1, C, H, W) (a detector: clips (1, C, t, H, W)) to use instead of random ones.

    Returns:
        ``max_abs_diff``: largest |logit difference| over all steps and classes (a detector: over every value of
        its raw heatmap, movement and size outputs); ``top1_agreement``: fraction of steps with the same arg-max
        (a detector: the same strongest class and cell of the heatmap); ``num_frames``: steps compared.
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
                (expected, expected_first), (logits, first) = _flat(expected), _flat(logits)
                max_diff = max(max_diff, float(np.abs(expected - logits).max()))
                agree += int(expected_first.argmax() == first.argmax())
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
    run = _clip_runner(Path(model_path), model_outputs(sidecar))
    shape = sidecar["inputs"][0]["shape"]
    g = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    max_diff, agree = 0.0, 0
    try:
        with torch.inference_mode():
            for _ in range(num_clips):
                clip = torch.randn(*shape, generator=g)  # (1, C, T, H, W)
                (expected, expected_first), (logits, first) = _flat(model(clip)), _flat(run(clip.numpy()))
                max_diff = max(max_diff, float(np.abs(expected - logits).max()))
                agree += int(expected_first.argmax() == first.argmax())
    finally:
        model.train(was_training)
    return {"max_abs_diff": max_diff, "top1_agreement": agree / max(num_clips, 1), "num_clips": num_clips}


def _clip_runner(path: Path, names: list[str]):
    """A function clip (1, C, T, H, W) float32 -> the outputs `names` (a tuple) of an exported clip graph."""
    if path.suffix == ".onnx":
        import onnxruntime as ort

        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda clip: tuple(session.run(names, {"clip": clip}))
    from streamact.inference.runtimes import openvino_core

    compiled = openvino_core().compile_model(str(path), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    outputs = [compiled.output(name) for name in names]
    return lambda clip: tuple(compiled({"clip": clip})[o] for o in outputs)
