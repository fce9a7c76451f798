"""Temporal layers: shift semantics by hand, MixTConv as a generalised shift, insertion, SE, partial BN."""
import pytest
import timm
import torch
from torch import nn

from streamact.layers import (
    MixTConv,
    SqueezeExcite,
    TemporalShift,
    insert_mixtconv,
    insert_se,
    insert_temporal_shift,
    residual_blocks,
    temporal_shift,
)
from streamact.models import create_backbone, create_model


def _clip(n=1, t=3, c=8):
    """(N*T, C, 1, 1) with value 100*n + 10*t + c, so every entry tells where it came from."""
    x = torch.zeros(n, t, c)
    for i in range(n):
        for j in range(t):
            x[i, j] = 100 * i + 10 * j + torch.arange(c)
    return x.reshape(n * t, c, 1, 1)


def test_bidirectional_shift_by_hand():
    out = temporal_shift(_clip(), num_segments=3, fold_div=4)[:, :, 0, 0]  # fold = 2
    expected = torch.tensor([
        # ch 0-1 <- t+1 | ch 2-3 <- t-1 | ch 4-7 unchanged
        [10, 11, 0, 0, 4, 5, 6, 7],
        [20, 21, 2, 3, 14, 15, 16, 17],
        [0, 0, 12, 13, 24, 25, 26, 27],
    ], dtype=torch.float)
    assert torch.equal(out, expected)


def test_unidirectional_shift_by_hand():
    out = temporal_shift(_clip(), num_segments=3, fold_div=4, bidirectional=False)[:, :, 0, 0]
    expected = torch.tensor([
        # ch 0-1 unchanged | ch 2-3 <- t-1 (the same channels as the bi-directional past fold)
        [0, 1, 0, 0, 4, 5, 6, 7],
        [10, 11, 2, 3, 14, 15, 16, 17],
        [20, 21, 12, 13, 24, 25, 26, 27],
    ], dtype=torch.float)
    assert torch.equal(out, expected)


@pytest.mark.parametrize("bidirectional", [True, False])
def test_shift_never_mixes_clips(bidirectional):
    x = _clip(n=2, t=3)
    out = temporal_shift(x, num_segments=3, fold_div=4, bidirectional=bidirectional)
    second = temporal_shift(x[3:], num_segments=3, fold_div=4, bidirectional=bidirectional)
    assert torch.equal(out[3:], second)
    module = TemporalShift(3, fold_div=4, bidirectional=bidirectional)
    assert torch.equal(module(x), out)


def _future_changes_past(layer, t=5, c=64):
    """Whether perturbing the last frame changes the output of any earlier frame."""
    x = torch.randn(2 * t, c, 3, 3)
    y = x.clone().reshape(2, t, c, 3, 3)
    y[:, -1] += 1.0
    a, b = layer(x), layer(y.reshape(2 * t, c, 3, 3))
    return not torch.allclose(a.reshape(2, t, -1)[:, :-1], b.reshape(2, t, -1)[:, :-1])


def test_causal_forms_never_see_the_future():
    assert not _future_changes_past(TemporalShift(5, bidirectional=False))
    assert _future_changes_past(TemporalShift(5))
    with torch.no_grad():
        causal = MixTConv(64, 5, causal=True)
        for conv in causal.convs:
            conv.weight.normal_()  # any learned weights, not just the init
        assert not _future_changes_past(causal)
        assert _future_changes_past(MixTConv(64, 5))


@pytest.mark.parametrize("causal", [False, True])
def test_mixtconv_k3_shift_init_is_tsm(causal):
    x = torch.randn(2 * 4, 32, 5, 5)
    layer = MixTConv(32, 4, kernel_sizes=(3,), causal=causal)
    expected = temporal_shift(x, 4, fold_div=8, bidirectional=not causal)
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("causal", [False, True])
def test_mixtconv_k3_group_of_the_mix_is_tsm(causal):
    c, t = 64, 6
    x = torch.randn(2 * t, c, 3, 3)
    out = MixTConv(c, t, causal=causal)(x)  # groups of 16 channels: k = 1, 3, 5, 7
    torch.testing.assert_close(out[:, :16], x[:, :16])  # k=1: identity
    g3 = slice(16, 32)
    torch.testing.assert_close(out[:, g3], temporal_shift(x[:, g3], t, fold_div=8, bidirectional=not causal))
    # k=5, past fold (2 channels): un-normalised sum of frames t-2 and t-1, zero before the clip starts.
    xs = x.reshape(2, t, c, 3, 3)[:, :, 34:36]
    past = torch.zeros_like(xs)
    past[:, 1:] += xs[:, :-1]
    past[:, 2:] += xs[:, :-2]
    torch.testing.assert_close(out.reshape(2, t, c, 3, 3)[:, :, 34:36], past)


def test_mixtconv_shift_like_init_weights():
    layer = MixTConv(64, 8)
    w7 = layer.convs[3].weight[:, 0, :, 0]  # (16, 7); fold = 16 // 8 = 2
    assert w7[0].tolist() == [0, 0, 0, 0, 1, 1, 1]  # future fold: t+1 .. t+3
    assert w7[2].tolist() == [1, 1, 1, 0, 0, 0, 0]  # past fold: t-3 .. t-1
    assert w7[4].tolist() == [0, 0, 0, 1, 0, 0, 0]  # identity
    causal7 = MixTConv(64, 8, causal=True).convs[3].weight[:, 0, :, 0]
    assert causal7[0].tolist() == [0, 0, 0, 0, 0, 0, 1]
    assert causal7[2].tolist() == [0, 0, 0, 1, 1, 1, 0]
    with pytest.raises(ValueError, match="odd"):
        MixTConv(64, 8, kernel_sizes=(1, 2))


@pytest.mark.parametrize("name, blocks", [
    ("mobilenetv2_100", 10), ("mnasnet_100", 10), ("efficientnet_lite0", 9), ("resnet18", 8), ("resnet50", 16),
])
def test_insertion_finds_residual_blocks(name, blocks):
    net = create_backbone(name)
    names = insert_temporal_shift(net, 4)
    assert len(names) == blocks == sum(isinstance(m, TemporalShift) for m in net.modules())
    with pytest.raises(ValueError, match="already has a temporal layer"):
        insert_mixtconv(net, 4)


def test_insertion_rejects_backbones_without_residual_blocks():
    with pytest.raises(ValueError, match="no residual block"):
        insert_temporal_shift(nn.Sequential(nn.Conv2d(3, 8, 3)), 4)
    with pytest.raises(ValueError, match="inverted-residual"):
        insert_se(create_backbone("resnet18"))


@pytest.mark.parametrize("name", ["mobilenetv2_100", "resnet50", "resnet18"])
@pytest.mark.parametrize("insert", [insert_temporal_shift, insert_mixtconv])
def test_temporal_layer_sits_on_the_residual_branch_only(name, insert):
    """With the residual branch silenced, a block must return its input: the shortcut is never shifted."""
    net = create_backbone(name).eval()
    insert(net, 4)
    _, block, _ = [b for b in residual_blocks(net) if getattr(b[1], "downsample", None) is None][0]
    last_bn = block.bn3 if hasattr(block, "bn3") else block.bn2
    with torch.no_grad():
        last_bn.weight.zero_()
        last_bn.bias.zero_()
        channels = getattr(block, "conv_pw", None) or block.conv1
        x = torch.randn(2 * 4, channels.conv.in_channels, 7, 7).abs()  # >= 0: survives a final ReLU
        torch.testing.assert_close(block(x), x)


def test_squeeze_excite_shapes_and_gate():
    se = SqueezeExcite(16, rd_channels=4)
    x = torch.randn(3, 16, 5, 5).abs()
    y = se(x)
    assert y.shape == x.shape
    assert torch.all(y <= x) and torch.all(y >= 0)  # a sigmoid gate only attenuates
    net = create_backbone("mnasnet_100")
    names = insert_se(net)
    assert len(names) == 10  # real-time mobile paper, section 5.4: "10 TSM and SE modules in total"
    block = dict(net.named_modules())[names[0]]
    assert block.se.conv_expand.out_channels == block.conv_pwl.in_channels
    assert block.se.conv_reduce.out_channels == block.conv_pwl.out_channels // 4
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, net.num_features)


def test_partial_bn_freezes_all_but_the_first_batchnorm():
    model = create_model("tsn_mobilenetv2_100", partial_bn=True, num_segments=2, num_classes=3)
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    first, rest = bns[0], bns[1:]
    model.train()
    assert first.training and first.weight.requires_grad
    assert all(not bn.training and not bn.weight.requires_grad and not bn.bias.requires_grad for bn in rest)
    before = [bn.running_mean.clone() for bn in bns]
    model(torch.randn(2, 3, 2, 32, 32)).sum().backward()
    assert not torch.equal(first.running_mean, before[0])  # the first BN still adapts
    assert all(torch.equal(bn.running_mean, b) for bn, b in zip(rest, before[1:]))
    assert all(bn.weight.grad is None for bn in rest)
    assert model.head.fc.weight.grad is not None
    model.eval()
    assert not first.training
    plain = create_model("tsn_mobilenetv2_100", num_segments=2).train()
    assert all(bn.training for bn in plain.modules() if isinstance(bn, nn.BatchNorm2d))


def test_temporal_layers_keep_timm_features_intact():
    """Inserting a shift-initialised MixTConv into a k=1-only layout is the identity: timm outputs unchanged."""
    ref = timm.create_model("resnet18", num_classes=0).eval()
    net = create_backbone("resnet18").eval()
    net.load_state_dict(ref.state_dict())
    insert_mixtconv(net, 2, kernel_sizes=(1,))
    x = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(x), ref(x))
