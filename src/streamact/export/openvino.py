"""OpenVINO IR export: through ONNX (`export_onnx`), then ``openvino.convert_model`` and ``openvino.save_model``.

Going through ONNX means one tracing path for both formats, so the IR has exactly the inputs, outputs and state
layout of the ONNX graph and shares its sidecar content. Weights are saved in fp32 unless asked for fp16 (the
bundled models, to keep the package small): the inference precision (bf16 on CPUs with AMX, or fp32) is chosen
when the model is compiled, by the runtime.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from torch import nn

from streamact.export.onnx import export_onnx
from streamact.export.sidecar import sidecar_path

__all__ = ["export_openvino"]


def export_openvino(model: nn.Module, path_xml: str | Path, *, streaming: bool, opset: int = 17,
                    model_name: str | None = None, compress_to_fp16: bool = False) -> Path:
    """Export ``model`` to OpenVINO IR (``.xml`` + ``.bin``) with the sidecar ``<stem>.json`` next to the ``.xml``.

    Args:
        model: recognizer; for ``streaming`` a causal one (see `TSN.make_causal`).
        path_xml: ``.xml`` file to write; the weights go to the ``.bin`` of the same stem.
        streaming: export the per-frame step graph with explicit state (see `export_onnx`), else the clip graph.
        opset: ONNX opset of the intermediate graph.
        model_name: registered model name recorded in the sidecar, if known.
        compress_to_fp16: store the weights in fp16 (half the file; the runtime widens them when compiling, and
            logits move by about 1e-3) instead of fp32.

    Returns:
        ``path_xml``.

    Raises:
        ValueError: if ``path_xml`` does not end in ``.xml`` (OpenVINO derives the ``.bin`` name from it).
    """
    import openvino as ov
    from openvino.tools.ovc import convert_model  # by name: `import_openvino` may have left it out of `ov`

    path_xml = Path(path_xml)
    if path_xml.suffix != ".xml":
        raise ValueError(f"OpenVINO IR path must end in .xml, got {path_xml}")
    path_xml.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="streamact-export-") as tmp:
        onnx_path = export_onnx(model, Path(tmp) / "model.onnx", streaming=streaming, opset=opset,
                                model_name=model_name)
        ov.save_model(convert_model(onnx_path), str(path_xml), compress_to_fp16=compress_to_fp16)
        shutil.copyfile(sidecar_path(onnx_path), sidecar_path(path_xml))
    return path_xml
