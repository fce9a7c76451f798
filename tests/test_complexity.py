"""Complexity counts agree with the seeds (within 5%)."""
import pytest
import torch
from torch import nn

from streamact.complexity import backbone_complexity, count_macs, count_params, model_complexity
from streamact.models import is_model, list_backbones


def _within(value, target, tol=0.05):
    return abs(value - target) <= tol * target


def test_counters_on_a_known_layer():
    layer = nn.Linear(10, 5).train()
    assert count_params(layer) == 55
    assert count_macs(layer, (2, 10)) == 100
    assert layer.training  # mode restored
    layer.bias.requires_grad_(False)
    assert count_params(layer, trainable_only=True) == 50


def test_mobile_backbones_match_seed_000_table_2():
    mbv2, mnas = backbone_complexity("mobilenetv2_100"), backbone_complexity("mnasnet_100")
    assert 3.4e6 * 0.95 <= mbv2["params"] <= 3.5e6 * 1.05
    assert _within(mbv2["macs_per_frame"], 0.30e9)
    assert 4.2e6 * 0.95 <= mnas["params"] <= 4.4e6 * 1.05
    assert _within(mnas["macs_per_frame"], 0.32e9)
    assert _within(backbone_complexity("resnet50")["params"], 25.6e6)


@pytest.mark.parametrize("backbone", [b for b in list_backbones() if is_model(f"tsn_{b}")])
def test_tsn_clip_is_t_frames_and_tsm_is_free(backbone):
    tsn, tsm = model_complexity(f"tsn_{backbone}"), model_complexity(f"tsm_{backbone}")
    frame = backbone_complexity(backbone, num_classes=400)
    assert tsn["input_shape"] == [1, 3, 8, 224, 224]
    assert tsn["macs_per_clip"] == 8 * frame["macs_per_frame"] == 8 * tsn["macs_per_frame"]
    assert tsn["params"] == frame["params"]
    assert (tsm["macs_per_clip"], tsm["params"]) == (tsn["macs_per_clip"], tsn["params"])


def test_mixtconv_adds_under_one_percent_to_resnet50():
    tsn, mix = model_complexity("tsn_resnet50"), model_complexity("mixtconv_resnet50")
    extra = mix["macs_per_clip"] - tsn["macs_per_clip"]
    assert _within(tsn["macs_per_clip"], 33e9)  # MixTConv paper, Table 2: TSN ResNet-50 8 x 224^2 ~ 33 G
    assert 0.13e9 * 0.95 <= extra <= 0.18e9 * 1.05  # MixTConv paper: 33 G -> 33.13-33.18 G
    assert extra / tsn["macs_per_clip"] < 0.01


def test_se_adds_little():
    base, se = model_complexity("tsm_mnasnet_100"), model_complexity("tsm_se_mnasnet_100")
    assert 0 < se["macs_per_clip"] - base["macs_per_clip"] < 0.01 * base["macs_per_clip"]


def test_meta_counting_leaves_no_real_memory():
    row = model_complexity("tsn_resnet50")
    assert row["params"] > 0 and isinstance(row["macs_per_clip"], int)
    assert torch.zeros(1).device.type == "cpu"  # the meta device context does not leak


def test_per_frame_cost_is_one_streaming_step():
    # TSM: one backbone pass per frame; LIGAR's sliding window re-runs the whole clip; VTN encodes the new frame once
    # and runs the decoder over the window (more than a T-th of the clip, less than the clip).
    tsm, ligar, vtn = (model_complexity(n, num_segments=8) for n in
                       ("tsm_mobilenetv2_100", "ligar_x3d_mobilenetv3", "vtn_mobilenetv2_100"))
    assert tsm["macs_per_frame"] * 8 == tsm["macs_per_clip"]
    assert ligar["macs_per_frame"] == ligar["macs_per_clip"]
    assert vtn["macs_per_clip"] / 8 < vtn["macs_per_frame"] < vtn["macs_per_clip"]
