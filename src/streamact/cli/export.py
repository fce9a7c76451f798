"""`streamact export CHECKPOINT --format onnx|openvino [--streaming] [--out PATH] [--check]`.

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
        name, help="export a checkpoint to ONNX or OpenVINO IR (with a JSON sidecar)",
        description="Export a training checkpoint. --streaming writes the per-frame step graph, with the streaming "
                    "state as explicit graph inputs (state_in.<i>) and outputs (state_out.<i>), after converting the "
                    "model to its causal form; otherwise the clip graph (1, C, T, H, W) -> logits. A JSON sidecar "
                    "<stem>.json next to the model holds the preprocessing, labels and state layout that "
                    "`streamact recognize --runtime onnxruntime|openvino` needs.")
    p.add_argument("checkpoint", help="a .pt checkpoint written by `streamact train`")
    p.add_argument("--format", choices=tuple(_SUFFIX), default="onnx", help="output format (default: onnx)")
    p.add_argument("--streaming", action="store_true", help="export the frame-by-frame step graph with explicit state")
    p.add_argument("--out", type=Path,
                   help="model file to write (.onnx, or .xml for openvino; default: next to the checkpoint, "
                        "<checkpoint stem>_<streaming|clip>.<onnx|xml>)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (default: 17)")
    p.add_argument("--check", action="store_true",
                   help="compare the export with PyTorch at fp32 on random input (streaming: a stream of "
                        "--num-frames frames from a zero state, every step compared) and print the result")
    p.add_argument("--num-frames", type=int, default=64, help="frames streamed by --check (default: 64)")
    p.add_argument("--atol", type=float, default=1e-4,
                   help="largest |logit difference| --check accepts (default: 1e-4)")
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.inference.predictor import load_trained_model, to_streaming
    from streamact.export.onnx import export_onnx
    from streamact.export.openvino import export_openvino
    from streamact.export.validate import check_clip_parity, check_parity, sidecar_path
    from streamact.inference.runtimes import load_runtime

    suffix = _SUFFIX[args.format]
    checkpoint = Path(args.checkpoint)
    out = args.out or checkpoint.with_name(f"{checkpoint.stem}_{'streaming' if args.streaming else 'clip'}{suffix}")
    if out.suffix != suffix:
        print(f"error: --format {args.format} writes a {suffix} file, got --out {out}", file=sys.stderr)
        return 2
    try:
        model, cfg = load_trained_model(checkpoint)
        if args.streaming:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")  # the bi-directional warning must reach the user every time
                to_streaming(model, source=str(checkpoint))
            for warning in caught:
                print(f"warning: {warning.message}", file=sys.stderr)
    except (FileNotFoundError, ValueError, TypeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    export = export_onnx if args.format == "onnx" else export_openvino
    export(model, out, streaming=args.streaming, opset=args.opset, model_name=cfg.model.name)
    print(f"wrote {out} and {sidecar_path(out)} ({'streaming step' if args.streaming else 'clip'} graph, "
          f"{cfg.model.name}, {model.num_classes} classes)")
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
