"""AMMA detectors: head shapes, fusion, ablations, streaming == offline, complexity against the paper."""
import json

import pytest
import torch

from streamact.complexity import model_complexity
from streamact.models import create_model, list_models
from streamact.models.amma import with_more_clips

K, T, S = 3, 4, 64
DETECTORS = list_models("amma_*")


def _bn_noise(model):
    """Random BN statistics/affine: timm zero-initialises some last BNs, which would hide whole branches."""
    with torch.no_grad():
        for bn in model.modules():
            if isinstance(bn, torch.nn.BatchNorm2d):
                bn.weight.uniform_(0.5, 1.5)
                bn.running_mean.uniform_(-0.1, 0.1)


def test_registered():
    assert DETECTORS == ["amma_efficientnet_lite0", "amma_efficientnet_lite0_actions", "amma_mobilenetv2", "amma_resnet18",
                         "amma_shufflenetv2"]


@pytest.mark.parametrize("name", DETECTORS)
def test_forward_backward_and_heads(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=5, num_clips=K, clip_len=T, img_size=S).train()
    x = torch.randn(2, 3, K * T, S, S)
    out = model(x)
    assert out.heatmap.shape == (2, 5, S // 8, S // 8)
    assert out.movement.shape == out.size.shape == (2, 2 * K, S // 8, S // 8)
    assert 0 <= out.heatmap.min() and out.heatmap.max() <= 1  # sigmoid inside the network
    (out.heatmap.mean() + out.movement.mean() + out.size.mean()).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert model.fusion_weights.grad is not None and model.fusion_weights.grad.abs().sum() > 0
    cfg = model.pretrained_cfg
    assert (cfg.input_size, cfg.clip_len, cfg.num_classes) == ((3, S, S), K * T, 5)


def test_fusion_weights_and_ablations():
    model = create_model("amma_resnet18", num_clips=K, img_size=S)
    torch.testing.assert_close(model.fusion_weights.detach(), torch.full((3,), 0.6))
    assert len(model.motion_stages) == 3 and model.micro_motion.mode == "convdiff"
    assert len(create_model("amma_resnet18", fusion_stages=1).motion_stages) == 1
    rgb = create_model("amma_resnet18", motion="none")
    assert rgb.micro_motion is None and len(rgb.motion_stages) == 0 and rgb.fusion_weights.numel() == 0
    assert create_model("amma_resnet18", motion="diff").micro_motion.embed is None
    with pytest.raises(ValueError, match="fusion_stages"):
        create_model("amma_resnet18", fusion_stages=4)
    with pytest.raises(ValueError, match="divisible by 32"):
        create_model("amma_resnet18", img_size=100)


def test_motion_matters_and_rgb_only_ignores_earlier_frames():
    torch.manual_seed(0)
    clip = torch.randn(1, 3, T, S, S)
    moved = clip.clone()
    moved[:, :, 0] = torch.randn(1, 3, S, S)  # only an earlier frame changes
    for motion, sensitive in (("convdiff", True), ("none", False)):
        model = create_model("amma_mobilenetv2", motion=motion, img_size=S).eval()
        _bn_noise(model)
        with torch.no_grad():
            a, b = model.forward_clip_features(clip), model.forward_clip_features(moved)
        assert (not torch.allclose(a, b)) == sensitive


def test_maps_entering_at_the_input_start_as_rgb_only():
    torch.manual_seed(0)
    model = create_model("amma_mobilenetv2", motion="diff", motion_entry="input", clip_len=T, img_size=S).eval()
    _bn_noise(model)
    assert len(model.motion_stages) == 0 and model.fusion_weights.numel() == 0 and model.motion_mode == "diff"
    stem = model.rgb_stages[0][0]
    assert stem.in_channels == 3 + T - 1 and not stem.weight[:, 3:].any()
    clip = torch.randn(1, 3, T, S, S)
    moved = clip.clone()
    moved[:, :, 0] = torch.randn(1, 3, S, S)  # only an earlier frame changes
    with torch.no_grad():
        assert torch.equal(model.forward_clip_features(clip), model.forward_clip_features(moved))
        stem.weight[:, 3:].normal_()  # what training does to the maps' filters
        assert not torch.allclose(model.forward_clip_features(clip), model.forward_clip_features(moved))
    rgb = create_model("amma_mobilenetv2", motion="none", motion_entry="input", img_size=S)
    assert rgb.rgb_stages[0][0].in_channels == 3 and rgb.micro_motion is None
    with pytest.raises(ValueError, match="motion_entry"):
        create_model("amma_mobilenetv2", motion_entry="early")


def test_signed_colour_maps_take_the_rgb_filters():
    model = create_model("amma_resnet18", motion="signed", clip_len=T, img_size=S)
    rgb, motion = model.rgb_stages[0][0], model.motion_stages[0][0]
    assert motion.in_channels == 3 * (T - 1)
    # each earlier frame's RGB difference gets the RGB filters, shared out: the copy starts on the mean difference
    torch.testing.assert_close(motion.weight, rgb.weight.repeat(1, T - 1, 1, 1) / (T - 1))
    assert model(torch.randn(1, 3, 5 * T, S, S)).heatmap.shape == (1, 24, S // 8, S // 8)
    at_input = create_model("amma_resnet18", motion="signed", motion_entry="input", clip_len=T, img_size=S)
    stem = at_input.rgb_stages[0][0]
    assert stem.in_channels == 3 + 3 * (T - 1) and not stem.weight[:, 3:].any()


def test_other_clip_lengths_rebuild_the_motion_stem():
    model = create_model("amma_resnet18", clip_len=6, num_clips=2, img_size=S)
    assert model.motion_stages[0][0].in_channels == 5
    assert model(torch.randn(1, 3, 12, S, S)).heatmap.shape == (1, 24, S // 8, S // 8)


@pytest.mark.parametrize("name, entry", [("amma_resnet18", "lateral"), ("amma_shufflenetv2", "lateral"),
                                         ("amma_resnet18", "input")])
def test_streaming_equals_offline(name, entry):
    torch.manual_seed(0)
    model = create_model(name, num_classes=4, num_clips=K, clip_len=T, img_size=S, motion_entry=entry).eval()
    _bn_noise(model)
    frames = torch.randn(2, 3, (K + 2) * T, S, S)
    state = model.init_state(2)
    with torch.no_grad():
        outs = []
        for j in range(K + 2):
            out, state = model.forward_step(frames[:, :, j * T:(j + 1) * T], state)
            outs.append(out)
        first_clip = frames[:, :, :T]
        padded = model(first_clip.repeat(1, 1, K, 1, 1))  # the first step sees its clip K times
        for got, want in zip(outs[0], padded):
            torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
        for j in (K - 1, K + 1):  # after K clips: the offline tubelet of the last K clips
            offline = model(frames[:, :, (j - K + 1) * T:(j + 1) * T])
            for got, want in zip(outs[j], offline):
                torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-4)
    assert state["count"].flatten().tolist() == [K, K]


def test_more_clips_start_as_the_fewer_clips_did():
    torch.manual_seed(0)
    kw = dict(num_classes=4, clip_len=T, img_size=S)
    small = create_model("amma_efficientnet_lite0", num_clips=K, **kw).eval()
    _bn_noise(small)
    with torch.no_grad():  # non-zero movement outputs, so the copy into the new oldest clip shows
        small.head.movement[-1].bias.uniform_(-1, 1)
    large = create_model("amma_efficientnet_lite0", num_clips=K + 2, **kw).eval()
    large.load_state_dict(with_more_clips(small.state_dict(), K + 2))
    frames = torch.randn(1, 3, (K + 2) * T, S, S)
    with torch.no_grad():
        want, got = small(frames[:, :, 2 * T:]), large(frames)
    torch.testing.assert_close(got.heatmap, want.heatmap)
    torch.testing.assert_close(got.size[:, 4:], want.size)
    torch.testing.assert_close(got.movement[:, 4:], want.movement)
    for extra in (0, 2):  # each new oldest clip moves as the old oldest one did
        torch.testing.assert_close(got.movement[:, extra:extra + 2], want.movement[:, :2])
    with pytest.raises(ValueError, match="already reads 3 clips"):
        with_more_clips(small.state_dict(), K)


# The paper's Table 3 (288x288, K = 5): params (M) and GMACs per clip in the streaming setting.
PAPER = {"amma_resnet18": (15.8, 5.2), "amma_mobilenetv2": (6.8, 1.3), "amma_shufflenetv2": (6.0, 1.0)}


@pytest.mark.parametrize("name", sorted(PAPER))
def test_complexity_against_paper(name):
    c = model_complexity(name)
    params, gmacs = PAPER[name]
    assert c["input_shape"] == [1, 3, 20, 288, 288]
    assert abs(c["params"] / 1e6 / params - 1) < 0.10
    # Per clip = tubelet MACs / K. ShuffleNetV2 lands 11% above the paper: the released head (two 3x3 convs of
    # 320 -> 256 channels at 36x36, 2.27 GMACs per tubelet) alone is 0.45 GMACs per clip (docs/RESULTS.md).
    tolerance = 0.12 if name == "amma_shufflenetv2" else 0.10
    assert abs(c["macs_per_clip"] / 1e9 / gmacs - 1) < tolerance
    # One streaming step embeds one new clip and runs the head once.
    assert c["macs_per_step"] == pytest.approx(c["macs_per_clip"] * 5 - 4 * c["macs_clip_features"], rel=1e-6)


def test_zoo_lists_detectors_in_their_own_table(tmp_path, capsys):
    import argparse

    from streamact.cli import models as models_cli

    zoo = tmp_path / "ZOO.md"
    assert models_cli.main(argparse.Namespace(pattern="amma_shufflenetv2", complexity=True, format="json",
                                              write_zoo=zoo)) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["macs_per_frame"] == row["macs_per_step"] // 4 and row["macs_clip_features"] < row["macs_per_clip"]
    text = zoo.read_text()
    assert "## Detectors" in text and "| `amma_shufflenetv2` | 5.82 |" in text
    assert "| `amma_shufflenetv2` |" not in text.split("## Detectors")[0]  # not among the recognizers
