"""Streaming forms: a loop of `forward_step` reproduces the offline `forward` of a causal model."""
import pytest
import torch
from _fixtures import randomise_bn

from streamact import create_model, list_models
from streamact.layers import MixTConv, TemporalShift

T, SIZE = 4, 64
RECOGNIZERS = [n for n in list_models() if not n.startswith("amma_")]  # detectors: tests/models/test_amma.py


def stream(model, clip):
    state = model.init_state(clip.shape[0])
    outputs = []
    for t in range(clip.shape[2]):
        logits, state = model.forward_step(clip[:, :, t], state)
        outputs.append(logits)
    return outputs, state


@pytest.mark.parametrize("name", RECOGNIZERS)
def test_streaming_equals_offline_random_weights(name):
    model = create_model(name, num_classes=5, num_segments=T, causal=True, img_size=SIZE).eval()
    randomise_bn(model)
    clip = torch.randn(2, 3, T, SIZE, SIZE)
    with torch.no_grad():
        offline = model(clip)
        outputs, state = stream(model, clip)
        assert (model(clip.flip(2)) - offline).abs().max() > 1e-4 or not model.temporal_layers()  # order matters
    torch.testing.assert_close(outputs[-1], offline, atol=1e-4, rtol=1e-4)
    assert all(v.shape[0] == 2 for v in state.values())


@pytest.mark.parametrize("name", ["tsm_mobilenetv2_100", "mixtconv_efficientnet_lite0"])
def test_streaming_equals_offline_trained_weights(name):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, num_segments=T, causal=True, img_size=SIZE, dropout=0.0)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    data, labels = torch.randn(6, 3, T, SIZE, SIZE), torch.tensor([0, 1, 2, 0, 1, 2])
    for _ in range(3):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(data), labels).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        outputs, _ = stream(model, data[:2])
        torch.testing.assert_close(outputs[-1], model(data[:2]), atol=1e-4, rtol=1e-4)


def test_window_average_after_t_frames():
    """After T frames the output is the mean of the last T per-frame logits (TSN ring buffer)."""
    model = create_model("tsn_mobilenetv2_100", num_classes=4, num_segments=T, img_size=SIZE).eval()
    frames = torch.randn(1, 3, 2 * T, SIZE, SIZE)
    with torch.no_grad():
        outputs, _ = stream(model, frames)
        expected = model(frames[:, :, T:])  # the last T frames, offline
        first = model.forward_head(model.forward_features(frames[:, :, :1]))
    torch.testing.assert_close(outputs[-1], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(outputs[0], first, atol=1e-5, rtol=1e-5)  # 1 frame seen: its own logits


def test_bidirectional_model_must_be_made_causal():
    model = create_model("tsm_mobilenetv2_100", num_classes=3, num_segments=T, img_size=SIZE).eval()
    with pytest.raises(RuntimeError, match="causal"):
        model.init_state(1)
    model.make_causal()
    assert all(not layer.bidirectional for _, layer in model.temporal_layers())
    with torch.no_grad():
        outputs, _ = stream(model, torch.randn(1, 3, T, SIZE, SIZE))
    assert outputs[-1].shape == (1, 3)


def test_make_causal_mixtconv_keeps_past_and_drops_future():
    import copy

    torch.manual_seed(0)
    centred = MixTConv(32, T)
    for conv in centred.convs:
        conv.weight.data.normal_()
    # Reference: the centred layer with its future taps zeroed computes exactly what the causal form should.
    no_future = copy.deepcopy(centred)
    for conv, k in zip(no_future.convs, no_future.kernel_sizes):
        conv.weight.data[:, :, (k - 1) // 2 + 1:] = 0
    x = torch.randn(2 * T, 32, 3, 3)  # (N*T, C, H, W), two clips
    with torch.no_grad():
        expected, bidirectional = no_future(x), centred(x)
        centred.make_causal()
        causal_out = centred(x)
        perturbed = x.clone()
        perturbed[T - 1] += 1.0  # last frame of clip 0
        changed = centred(perturbed)
    assert centred.causal and centred.pads == [(k - 1, 0) for k in centred.kernel_sizes]
    torch.testing.assert_close(causal_out, expected)
    assert not torch.allclose(causal_out, bidirectional)
    assert torch.equal(changed[: T - 1], causal_out[: T - 1])  # earlier frames never see a later one


def test_shift_step_matches_uni_directional_shift():
    layer = TemporalShift(T, bidirectional=False)
    x = torch.randn(T, 16, 2, 2)
    offline = layer(x)
    cache, outs = [], []
    for t in range(T):
        y, cache = layer.step(x[t:t + 1], cache)
        outs.append(y)
    torch.testing.assert_close(torch.cat(outs), offline)
