"""Ship a bundled model exported: regenerate its OpenVINO IR and sidecar from its safetensors weights.

    weights/<name>.safetensors ──► create_model(name, pretrained=True) ──► causal streaming form
        ──► OpenVINO IR, fp16 weights (weights/<name>.xml + .bin) + sidecar weights/<name>.json
            (records the sha256 of the safetensors it was made from)

`streamact recognize` and `streamact demo` run a bundled model from this IR when OpenVINO is installed, so they
never import PyTorch or rebuild a graph. After changing a bundled model's weights, run once:

    python -m streamact.export.bundle tsm_efficientnet_lite0_stream_gestures

tests/export/test_bundle.py fails while the shipped IR lags behind the safetensors (hash and outputs).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from streamact.export.sidecar import sidecar_path
from streamact.pretrained import WEIGHTS_DIR

__all__ = ["bundled_export", "export_bundled", "file_sha256"]


def bundled_export(name: str) -> Path | None:
    """The shipped OpenVINO IR of bundled model `name`, or None if it ships none."""
    path = WEIGHTS_DIR / f"{name}.xml"
    return path if "/" not in name and path.is_file() else None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def export_bundled(name: str, out_dir: str | Path = WEIGHTS_DIR) -> Path:
    """Export registered model `name` with its shipped weights to ``<out_dir>/<name>.xml`` (+ .bin, .json).

    Args:
        name: a registered model whose `pretrained_cfg.weights` file ships in the package.
        out_dir: where to write (default: the package's weights folder).

    Returns:
        The ``.xml`` written.

    Raises:
        UserError: the name is not a registered model, or the model ships no weights.
    """
    from streamact.errors import UserError
    from streamact.export.openvino import export_openvino
    from streamact.inference.predictor import to_streaming
    from streamact.models import create_model, is_model

    if not is_model(name):
        raise UserError(f"{name} is not a registered model (see `streamact models`)")
    weights = create_model(name).pretrained_cfg.weights
    if weights is None:
        raise UserError(f"{name} ships no weights of its own, so there is nothing to bundle")
    model = to_streaming(create_model(name, pretrained=True), source=name)
    path = export_openvino(model, Path(out_dir) / f"{name}.xml", streaming=True, model_name=name,
                           compress_to_fp16=True)
    side = sidecar_path(path)
    sidecar = json.loads(side.read_text())
    sidecar["source_weights"] = {"file": weights, "sha256": file_sha256(WEIGHTS_DIR / weights)}
    side.write_text(json.dumps(sidecar, indent=2) + "\n")
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m streamact.export.bundle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="+", help="bundled model(s) to export")
    parser.add_argument("--out-dir", type=Path, default=WEIGHTS_DIR,
                        help="where to write (default: the package's weights folder)")
    args = parser.parse_args(argv)
    from streamact.errors import UserError

    for name in args.names:
        try:
            path = export_bundled(name, args.out_dir)
        except UserError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"wrote {path}, {path.with_suffix('.bin')} and {sidecar_path(path)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
