"""A causal model trains exactly as it streams: `forward` on clip_len + stream_context frames equals the
streaming engine's output at the clip's last frame, however long the stream before it."""
import pytest
import torch

from streamact.models import create_model
from _fixtures import randomise_bn


@pytest.mark.parametrize("name", ["tsm_mobilenetv2_100", "mixtconv_mobilenetv2_100"])
def test_offline_window_equals_streamed_output(name):
    model = randomise_bn(create_model(name, num_classes=5, num_segments=3, causal=True, img_size=32)).eval()
    context = model.stream_context
    assert context == len(model.temporal_layers()) * (1 if name.startswith("tsm") else 6)
    x = torch.randn(2, 3, 3 + context + 7, 32, 32)  # 7 frames of stream before the window
    state = model.init_state(2)
    with torch.no_grad():
        for t in range(x.shape[2]):
            streamed, state = model.forward_step(x[:, :, t], state)
        window = model(x[:, :, -(3 + context):])
        too_short = model(x[:, :, -3:])  # the plain T-frame clip misses the past the caches carry
    torch.testing.assert_close(window, streamed, atol=1e-5, rtol=1e-4)
    assert (too_short - streamed).abs().max() > 1e-3


def test_only_causal_models_take_longer_clips():
    model = create_model("tsm_mobilenetv2_100", num_classes=5, num_segments=3, causal=False, img_size=32).eval()
    with pytest.raises(ValueError, match="causal"):
        model(torch.randn(1, 3, 5, 32, 32))
    assert model.temporal_layers()[0][1].num_segments == 3  # restored after the failed pass


def test_outputs_at_several_frames_of_a_window_are_the_streamed_ones():
    model = randomise_bn(create_model("tsm_mobilenetv2_100", num_classes=5, num_segments=3, causal=True,
                                      img_size=32)).eval()
    context, outputs = model.stream_context, 4
    x = torch.randn(2, 3, 3 + context + outputs - 1, 32, 32)
    state = model.init_state(2)
    streamed = []
    with torch.no_grad():
        for t in range(x.shape[2]):
            logits, state = model.forward_step(x[:, :, t], state)
            streamed.append(logits)
        steps = model.forward_head_steps(model.forward_features(x), outputs)
    assert steps.shape == (2, outputs, 5)
    torch.testing.assert_close(steps, torch.stack(streamed[-outputs:], 1), atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match="need"):
        model.forward_head_steps(model.forward_features(x[:, :, :5]), outputs)
