"""Every registered model: forward/backward on a tiny clip; registry, configs, weights loading, CLI."""
import argparse
import json
import pickle

import pytest
import torch
from safetensors.torch import save_file

from streamact.cli.main import main as cli_main
from streamact.layers import MixTConv, TemporalShift
from streamact.models import PretrainedCfg, create_model, list_models, load_weights

T = 4
RECOGNIZERS = [n for n in list_models() if not n.startswith("amma_")]  # detectors: tests/models/test_amma.py


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_forward_backward(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, num_segments=T).train()
    x = torch.randn(2, 3, T, 64, 64)
    logits = model(x)
    assert logits.shape == (2, 5)
    logits.logsumexp(-1).mean().backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    model.eval()
    with torch.no_grad():
        feats = model.forward_features(x)  # (B, T, D) for per-frame models, (B, D) for 3D models (LIGAR)
        assert feats.shape[0] == 2 and feats.shape[-1] == model.num_features
        torch.testing.assert_close(model.forward_head(feats), model(x))
    cfg = model.pretrained_cfg
    with torch.device("meta"):
        dense = create_model(name).pretrained_cfg.num_segments is None  # trained on dense clips (VTN, LIGAR, ...)
    assert (cfg.clip_len, cfg.num_segments, cfg.num_classes) == (T, None if dense else T, 5)
    assert cfg.input_size == ((3, 112, 112) if name.endswith("_gestures") else (3, 224, 224))
    assert len(cfg.mean) == len(cfg.std) == 3


def test_registry():
    assert {"tsn_mobilenetv2_100", "tsn_mnasnet_100", "tsn_efficientnet_lite0", "tsm_mobilenetv2_100",
            "tsm_mnasnet_100", "tsm_efficientnet_lite0", "mixtconv_efficientnet_lite0", "tsn_resnet50",
            "tsm_resnet50", "mixtconv_resnet50", "tsm_se_mnasnet_100"} <= set(list_models())
    assert list_models("tsm_*") == sorted(n for n in list_models() if n.startswith("tsm_"))
    with pytest.raises(KeyError, match="tsm_mobilenetv2_100"):
        create_model("tsm_mobilenetv2")
    assert create_model("tsn_resnet18").num_classes == 400  # the documented default (Kinetics-400)


def test_temporal_options():
    shifts = [m for m in create_model("tsm_resnet18", causal=True).modules() if isinstance(m, TemporalShift)]
    assert shifts and not any(s.bidirectional for s in shifts)
    shifts = [m for m in create_model("tsm_resnet18", bidirectional=False).modules() if isinstance(m, TemporalShift)]
    assert shifts and not any(s.bidirectional for s in shifts)
    mix = [m for m in create_model("mixtconv_resnet18", causal=True).modules() if isinstance(m, MixTConv)]
    assert mix and all(m.causal for m in mix)
    with pytest.raises(ValueError, match="contradicts"):
        create_model("tsm_resnet18", causal=True, bidirectional=True)


@pytest.mark.parametrize("name", ["tsm_mobilenetv2_100", "mixtconv_resnet18"])
def test_causal_model_ignores_future_frames(name):
    """Causal models (the streaming form's offline twin): frame t's features never depend on later frames."""
    x = torch.randn(1, 3, T, 64, 64)
    y = x.clone()
    y[:, :, -1] += 1.0
    for causal in (True, False):
        model = create_model(name, causal=causal, num_segments=T).eval()
        with torch.no_grad():
            for bn in model.modules():  # timm zero-initialises ResNets' last BN, which would hide the branch
                if isinstance(bn, torch.nn.BatchNorm2d):
                    bn.weight.uniform_(0.5, 1.5)
            a, b = model.forward_features(x), model.forward_features(y)
        assert torch.allclose(a[:, :-1], b[:, :-1]) == causal


def test_clip_length_checks():
    with pytest.raises(ValueError, match="num_segments=4"):
        create_model("tsm_resnet18", num_segments=4)(torch.randn(1, 3, 3, 32, 32))
    # Plain TSN has no temporal layer, so any number of segments works (TSN tests on 25).
    assert create_model("tsn_resnet18", num_segments=4)(torch.randn(1, 3, 3, 32, 32)).shape == (1, 400)


def test_reset_classifier_and_labels():
    model = create_model("tsn_resnet18", label_names=["a", "b", "c"], num_segments=2)
    assert model.num_classes == 3 and model.pretrained_cfg.label_names == ("a", "b", "c")
    model.reset_classifier(2, label_names=["x", "y"])
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, 2)
    assert model.pretrained_cfg.num_classes == 2 and model.pretrained_cfg.label_names == ("x", "y")
    model.reset_classifier(0)
    assert model(torch.randn(1, 3, 2, 32, 32)).shape == (1, model.num_features)
    with torch.no_grad():
        fc = create_model("tsn_resnet18").head.fc
    assert fc.bias.abs().max() == 0 and fc.weight.std() < 0.002  # N(0, 0.001)


def test_pretrained_without_offline_weights_is_a_clear_error():
    with pytest.raises(ValueError, match="no ImageNet weights"):
        create_model("tsm_mobilenetv2_100", pretrained=True)


def test_pretrained_cfg_round_trip():
    cfg = create_model("tsm_efficientnet_lite0", label_names=["a", "b"]).pretrained_cfg
    assert cfg.mean == (0.5, 0.5, 0.5)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert PretrainedCfg.from_dict(d) == cfg
    with pytest.raises(KeyError, match="colour"):
        PretrainedCfg.from_dict({**d, "colour": 1})


def test_load_weights_formats(tmp_path):
    src = create_model("tsm_resnet18", num_classes=3, num_segments=2).eval()
    state = src.state_dict()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        ref = src(x)
    save_file({k: v.contiguous() for k, v in state.items()}, tmp_path / "w.safetensors")
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 3}, tmp_path / "ckpt.pt")
    for path in (tmp_path / "w.safetensors", tmp_path / "ckpt.pt"):
        dst = load_weights(create_model("tsm_resnet18", num_classes=3, num_segments=2).eval(), path)
        with torch.no_grad():
            torch.testing.assert_close(dst(x), ref)
    with pytest.raises(RuntimeError, match="cannot load"):
        load_weights(create_model("tsm_resnet18", num_classes=4, num_segments=2), tmp_path / "w.safetensors")
    torch.save({"model": argparse.Namespace(a=1)}, tmp_path / "evil.pt")  # arbitrary objects are never unpickled
    with pytest.raises(pickle.UnpicklingError):
        load_weights(src, tmp_path / "evil.pt")
    with pytest.raises(FileNotFoundError):
        load_weights(src, tmp_path / "missing.pt")


@pytest.mark.parametrize("name", ["tsm_resnet18", "vtn_mobilenetv2_100", "ligar_x3d_mobilenetv3"])
def test_load_weights_without_head_fine_tunes_to_other_classes(tmp_path, name):
    """head=False loads everything but the classifier (LIGAR: its whole metric head), which stays the destination's
    own, here for other classes."""
    kwargs = {"pretrained": False, "num_segments": 4}
    src = create_model(name, num_classes=3, **kwargs)
    torch.save({"model": src.state_dict()}, tmp_path / "ckpt.pt")
    dst = create_model(name, num_classes=5, **kwargs)
    before = {k: v.clone() for k, v in dst.state_dict().items()}
    load_weights(dst, tmp_path / "ckpt.pt", head=False)
    loaded = src.state_dict()
    for k, v in dst.state_dict().items():
        assert torch.equal(v, before[k] if k.split(".")[0] in ("head", "heads") else loaded[k]), k
    assert dst.eval()(torch.randn(1, 3, 4, 64, 64)).shape == (1, 5)
    with pytest.raises(RuntimeError, match="cannot load"):  # the classes differ: the head cannot be loaded
        load_weights(dst, tmp_path / "ckpt.pt")
    torch.save({"model": dict(list(loaded.items())[1:])}, tmp_path / "partial.pt")
    with pytest.raises(RuntimeError, match="missing keys"):  # a backbone weight is absent
        load_weights(dst, tmp_path / "partial.pt", head=False)


def test_pretrained_loads_packaged_weights(tmp_path, monkeypatch):
    """A variant that ships weights (pretrained_cfg.weights) loads them on pretrained=True, offline."""
    from streamact.models import tsn

    src = create_model("tsm_resnet18", num_classes=3, num_segments=2)
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, tmp_path / "tsm_r18.safetensors")
    variant = tsn.default_cfgs["tsm_resnet18"]
    monkeypatch.setitem(tsn.default_cfgs, "tsm_resnet18",
                        tsn._Variant(variant.backbone, variant.temporal, variant.se,
                                     variant.cfg.replace(weights="tsm_r18.safetensors", num_classes=3,
                                                         label_names=("a", "b", "c"))))
    monkeypatch.setattr(tsn, "WEIGHTS_DIR", tmp_path)
    dst = create_model("tsm_resnet18", pretrained=True, num_segments=2)
    assert dst.pretrained_cfg.label_names == ("a", "b", "c")
    assert all(torch.equal(a, b) for a, b in zip(src.state_dict().values(), dst.state_dict().values()))
    tuned = create_model("tsm_resnet18", pretrained=True, num_segments=2, num_classes=5)  # fine-tune elsewhere
    assert tuned.num_classes == 5 and tuned.pretrained_cfg.label_names is None
    assert torch.equal(tuned.backbone.conv1.weight, src.backbone.conv1.weight)


def _run_cli(argv, capsys):
    code = cli_main(["models", *argv])
    return code, capsys.readouterr().out


def test_cli_complexity_json(capsys, tmp_path):
    code, out = _run_cli(["tsn_mobilenetv2_100", "--complexity", "--format", "json"], capsys)
    assert code == 0
    rows = json.loads(out)
    assert [set(r) for r in rows] == [{"name", "params", "macs_per_clip", "macs_per_frame", "input_shape", "weights"}]
    assert rows[0]["input_shape"] == [1, 3, 8, 224, 224]
    code, out = _run_cli(["tsm_*", "--write-zoo", str(tmp_path / "ZOO.md")], capsys)
    assert code == 0 and "tsm_resnet50" in out
    zoo = (tmp_path / "ZOO.md").read_text()
    assert "--write-zoo" in zoo and "| `tsm_mnasnet_100` |" in zoo and "| `resnet50` |" in zoo
    assert "| ImageNet backbone only, classifier untrained |" in zoo  # tsm_efficientnet_lite0's weights column
    assert _run_cli(["nothing_*"], capsys)[0] == 2
