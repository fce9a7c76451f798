"""Modalities computed inside the model: RGB difference convention, streaming step, widened first conv."""
import pytest
import torch

from streamact.layers.modality import Modality, apply_modality, rgb_difference, widen_input_conv
from streamact.models import create_backbone

T = 4


def test_rgb_difference_hand_values():
    x = torch.tensor([1.0, 4.0, 2.0, 2.0]).reshape(1, 1, T, 1, 1).expand(1, 3, T, 2, 2)  # (B, C, T, H, W)
    diff = rgb_difference(x)
    assert diff.shape == x.shape
    torch.testing.assert_close(diff[0, 0, :, 0, 0], torch.tensor([0.0, 3.0, -2.0, 0.0]))


def test_apply_modality_channels():
    x = torch.randn(2, 3, T, 5, 5)
    assert apply_modality(x, "rgb") is x
    torch.testing.assert_close(apply_modality(x, "rgbdiff"), rgb_difference(x))
    stacked = apply_modality(x, "stacked")
    assert stacked.shape == (2, 6, T, 5, 5)
    torch.testing.assert_close(stacked, torch.cat([x, rgb_difference(x)], 1))
    with pytest.raises(ValueError, match="modality must be one of"):
        Modality("flow")


@pytest.mark.parametrize("modality", ["rgb", "rgbdiff", "stacked"])
def test_step_loop_equals_clip(modality):
    layer = Modality(modality)
    x = torch.randn(2, 3, T, 5, 5)
    previous, has_previous = torch.zeros(2, 3, 5, 5), torch.zeros(2, 1)  # zero state
    outputs = []
    for t in range(T):
        y, previous = layer.step(x[:, :, t], previous, has_previous)
        has_previous = torch.ones(2, 1)
        outputs.append(y)
    torch.testing.assert_close(torch.stack(outputs, 2), layer(x))
    assert layer.channel_factor == (2 if modality == "stacked" else 1)
    assert layer.needs_previous_frame == (modality != "rgb")


def test_step_is_per_stream():
    """has_previous is per stream: a stream that just started gets a zero difference, the others do not."""
    layer = Modality("rgbdiff")
    frame, previous = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    y, _ = layer.step(frame, previous, torch.tensor([[1.0], [0.0]]))
    torch.testing.assert_close(y[0], frame[0] - previous[0])
    assert y[1].abs().max() == 0


def test_widen_input_conv_keeps_rgb_response_on_static_frames():
    torch.manual_seed(0)
    rgb = create_backbone("mobilenetv2_100").eval()
    wide = create_backbone("mobilenetv2_100").eval()
    wide.load_state_dict(rgb.state_dict())
    widen_input_conv(wide, 6)
    w = wide.conv_stem.weight
    assert w.shape[1] == 6 and wide.conv_stem.in_channels == 6
    torch.testing.assert_close(w[:, :3], rgb.conv_stem.weight)
    torch.testing.assert_close(w[:, 3:], rgb.conv_stem.weight)  # the difference channels start as a copy
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        static = wide.forward_features(torch.cat([x, torch.zeros_like(x)], 1))  # zero difference
        torch.testing.assert_close(static, rgb.forward_features(x))
        assert not torch.allclose(wide.forward_features(torch.cat([x, x], 1)), static)  # motion changes features
    with pytest.raises(ValueError, match="multiple of 3"):
        widen_input_conv(rgb, 4)
    with pytest.raises(ValueError, match="takes 6 channels"):
        widen_input_conv(wide, 6)
