"""`streamact export MODEL --format onnx|openvino [--streaming] [--out PATH] [--check] [--int8 --calib DATA]`.

MODEL is a checkpoint from `streamact train` (a recognizer, or a tubelet detector whose step graph takes a clip of
t frames and carries the K-clip feature cache as state) or a registered model with bundled action weights. --int8 quantizes
the OpenVINO step graph with NNCF post-training quantization on calibration videos; it also takes an exported step
graph (.xml) instead of a checkpoint, so a shipped model can be quantized without PyTorch.
Exit codes: 0 written (and, with --check, parity within --atol); 1 parity check failed; 2 unusable input.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

_SUFFIX = {"onnx": ".onnx", "openvino": ".xml"}


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name, help="export a checkpoint or bundled model to ONNX or OpenVINO IR (with a JSON sidecar)",
        description="Export a training checkpoint or a registered model with bundled action weights. --streaming writes the per-frame step graph, with the streaming "
                    "state as explicit graph inputs (state_in.<i>) and outputs (state_out.<i>), after converting the "
                    "model to its causal form; otherwise the clip graph (1, C, T, H, W) -> logits. A JSON sidecar "
                    "<stem>.json next to the model holds the preprocessing, labels and state layout that "
                    "`streamact recognize` / `streamact detect --runtime onnxruntime|openvino` need.")
    p.add_argument("checkpoint", metavar="MODEL",
                   help="a .pt checkpoint written by `streamact train`, a registered model name (`streamact "
                        "models`), or with --int8 an exported OpenVINO step graph .xml")
    p.add_argument("--allow-untrained", action="store_true",
                   help="export a registered model even if its classifier was never trained on actions "
                        "(default: refuse)")
    p.add_argument("--format", choices=tuple(_SUFFIX), default="onnx", help="output format (default: onnx)")
    p.add_argument("--streaming", action="store_true",
                   help="export the frame-by-frame step graph with explicit state (default: the clip graph)")
    p.add_argument("--out", type=Path,
                   help="model file to write (.onnx, or .xml for openvino; default: next to the checkpoint, "
                        "<checkpoint stem>_<streaming|clip>.<onnx|xml>, or runs/export/<name>_... for a registered "
                        "model)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--check", action="store_true",
                   help="compare the export with PyTorch at fp32 on random input (streaming: a stream of "
                        "--num-frames frames from a zero state, every step compared) and print the result "
                        "(default: no check)")
    p.add_argument("--num-frames", type=int, default=64,
                   help="steps streamed by --check: frames, or clips for a detector (default: 64)")
    p.add_argument("--atol", type=float, default=1e-4,
                   help="largest |logit difference| (a detector: raw head output) --check accepts (default: 1e-4)")
    p.add_argument("--int8", action="store_true",
                   help="also write an int8 model <stem>_int8.xml, quantized with NNCF post-training quantization "
                        "(needs --format openvino --streaming and --calib)")
    p.add_argument("--calib", help="calibration data for --int8: a dataset folder (its train split; a plain folder: "
                                   "every video; a detection dataset: its train videos), a video, or a source such "
                                   "as synthetic:gestures?num=40 or synthetic:detection?frames=400")
    p.add_argument("--calib-samples", type=int, default=300,
                   help="model steps to calibrate on (default: 300, NNCF's default; at least 100)")
    p.add_argument("--eval-data", type=Path,
                   help="with --int8: a labelled dataset folder whose test split scores fp32, bf16 and int8 side by "
                        "side, printed as JSON: a recognizer's clip top-1 streamed frame by frame and per-step "
                        "agreement with fp32; a detector's frame-mAP and video-mAP")
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.engine.build import load_model
    from streamact.errors import UserError
    from streamact.export.onnx import export_onnx
    from streamact.export.openvino import export_openvino
    from streamact.export.sidecar import mark_untrained
    from streamact.export.validate import check_clip_parity, check_parity, sidecar_path
    from streamact.inference.predictor import to_streaming
    from streamact.inference.runtimes import load_runtime
    from streamact.models import model_weights

    if args.int8 and not args.calib:
        raise UserError("--int8 needs calibration data: --calib DATASET_DIR | VIDEO | synthetic:gestures")
    if Path(args.checkpoint).suffix == ".xml":  # an exported step graph: only quantization is left to do
        if not args.int8:
            raise UserError(f"{args.checkpoint} is exported already; give the .pt checkpoint, or --int8 to quantize it")
        return _int8(Path(args.checkpoint), args)
    if args.int8 and (args.format != "openvino" or not args.streaming):
        raise UserError("--int8 quantizes the OpenVINO step graph: add --format openvino --streaming")
    suffix = _SUFFIX[args.format]
    checkpoint = Path(args.checkpoint)
    stem = f"{checkpoint.stem}_{'streaming' if args.streaming else 'clip'}{suffix}"
    out = args.out or (checkpoint.with_name(stem) if checkpoint.is_file() else Path("runs/export") / stem)
    if out.suffix != suffix:
        raise UserError(f"--format {args.format} writes a {suffix} file, got --out {out}")
    model, model_name = load_model(args.checkpoint, allow_untrained=args.allow_untrained)
    if args.streaming:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # the bi-directional warning must reach the user every time
            to_streaming(model, source=str(checkpoint))
        for warning in caught:
            print(f"warning: {warning.message}", file=sys.stderr)

    export = export_onnx if args.format == "onnx" else export_openvino
    out.parent.mkdir(parents=True, exist_ok=True)
    export(model, out, streaming=args.streaming, opset=args.opset, model_name=model_name)
    if not checkpoint.is_file() and model_weights(model_name) != "action":  # a registered model let through
        mark_untrained(out)
    print(f"wrote {out} and {sidecar_path(out)} ({'streaming step' if args.streaming else 'clip'} graph, "
          f"{model_name}, {model.num_classes} classes)", file=sys.stderr)  # stdout: only the --check result (JSON)
    if args.int8:
        _int8(out, args)
    if not args.check:
        return 0
    if args.streaming:
        runtime = load_runtime(out, precision="fp32")
        result = {"runtime": runtime.name, "precision": "fp32",
                  **check_parity(model, runtime, num_frames=args.num_frames)}
    else:
        result = {"runtime": "onnxruntime" if args.format == "onnx" else "openvino", "precision": "fp32",
                  **check_clip_parity(model, out)}
    ok = result["max_abs_diff"] <= args.atol
    print(json.dumps({"check": "pass" if ok else "fail", "atol": args.atol, **result}))
    return 0 if ok else 1


def _int8(xml: Path, args: argparse.Namespace) -> int:
    """Quantize `xml` to ``<out or xml stem>_int8.xml``; with --eval-data, score fp32 / bf16 / int8 (JSON on stdout)."""
    from streamact.export.int8 import detection_accuracy, quantize_int8, streaming_accuracy
    from streamact.inference.runtimes import OpenVINORuntime

    base = args.out if args.out is not None and Path(args.checkpoint).suffix == ".xml" else xml
    out = base.with_name(f"{base.stem}_int8.xml") if base == xml else base
    quantize_int8(xml, out, args.calib, num_samples=args.calib_samples)
    print(f"wrote {out} (int8, {args.calib_samples} calibration steps from {args.calib})", file=sys.stderr)
    if args.eval_data is None:
        return 0
    runtimes = {"fp32": OpenVINORuntime(xml, precision="fp32"), "bf16": OpenVINORuntime(xml, precision="bf16"),
                "int8": OpenVINORuntime(out, precision="bf16")}
    scores = (detection_accuracy(runtimes, args.eval_data) if runtimes["fp32"].detection is not None
              else streaming_accuracy(runtimes, args.eval_data, reference="fp32"))
    print(json.dumps({"model": str(xml), "int8": str(out), "eval_data": str(args.eval_data), "accuracy": scores}))
    return 0
