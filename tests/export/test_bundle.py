"""The bundled models ship an OpenVINO IR that stays in sync with their safetensors weights."""
import json

import pytest
import torch

from streamact import create_model
from streamact.export import bundle
from streamact.export.validate import check_parity
from streamact.inference.predictor import to_streaming
from streamact.inference.runtimes import OpenVINORuntime
from streamact.pretrained import WEIGHTS_DIR

pytestmark = pytest.mark.export

# Every model with weights in the package ships its IR (regenerate with `python -m streamact.export.bundle NAME`).
BUNDLED = sorted(p.stem for p in WEIGHTS_DIR.glob("*.safetensors"))


@pytest.mark.parametrize("name", BUNDLED)
def test_shipped_ir_was_made_from_the_shipped_weights(name):
    xml = bundle.bundled_export(name)
    assert xml is not None, f"{name} ships no IR: run python -m streamact.export.bundle {name}"
    source = json.loads(xml.with_suffix(".json").read_text())["source_weights"]
    assert source["file"] == f"{name}.safetensors"
    assert source["sha256"] == bundle.file_sha256(WEIGHTS_DIR / source["file"]), (
        f"the IR of {name} is stale: run python -m streamact.export.bundle {name}")


@pytest.mark.slow  # builds the model and compiles its IR (a few seconds)
@pytest.mark.parametrize("name", BUNDLED)
def test_shipped_ir_gives_the_outputs_of_the_weights(name, tmp_path):
    torch.manual_seed(0)
    model = to_streaming(create_model(name, pretrained=True), source=name)
    runtime = OpenVINORuntime(bundle.bundled_export(name), precision="fp32", cache_dir=tmp_path)
    assert runtime.pretrained_cfg == model.pretrained_cfg
    result = check_parity(model, runtime, num_frames=24)
    # fp16-stored (BN-folded) weights move logits by about 1e-3, a detector's box sizes and movements (in feature-map
    # pixels) by up to 5e-2; every step's top class must agree
    tolerance = 0.1 if runtime.detection else 2e-2
    assert result["max_abs_diff"] < tolerance and result["top1_agreement"] == 1.0, result


def test_bundle_refuses_unknown_and_weightless_models(capsys):
    assert bundle.main(["no_such_model"]) == 2
    assert capsys.readouterr().err.strip() == ("error: no_such_model is not a registered model "
                                               "(see `streamact models`)")
    assert bundle.main(["tsm_mobilenetv2_100", "--out-dir", "/nonexistent"]) == 2
    assert "ships no weights of its own" in capsys.readouterr().err
