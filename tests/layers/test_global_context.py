"""LGD global-path units: GC attention pooling over T·H·W, global transforms."""
import pytest
import torch
from torch import nn

from streamact.layers.global_context import GlobalContextPool, GlobalTransform, global_context_pool


def test_uniform_attention_is_the_mean_over_all_positions():
    x = torch.randn(2, 4, 3, 5, 6)
    pooled = global_context_pool(x, torch.zeros(2, 1, 3, 5, 6))
    assert pooled.shape == (2, 4, 1, 1, 1)
    torch.testing.assert_close(pooled, x.mean((2, 3, 4), keepdim=True))


def test_softmax_runs_over_time_and_space_jointly():
    """Two positions in different frames share the attention mass: a per-frame softmax would give each 1."""
    x = torch.randn(1, 2, 4, 3, 3)
    logits = torch.full((1, 1, 4, 3, 3), -1e4)
    logits[0, 0, 1, 2, 0] = logits[0, 0, 3, 0, 1] = 0.0
    expected = (x[0, :, 1, 2, 0] + x[0, :, 3, 0, 1]) / 2
    torch.testing.assert_close(global_context_pool(x, logits).flatten(), expected)


def test_pool_module_attends_where_its_logits_point():
    """Attention conv reads channel 0 (identity BN), so a large value there selects that position."""
    pool = GlobalContextPool(3).eval()
    with torch.no_grad():
        pool.attention[0].weight.copy_(torch.tensor([50.0, 0.0, 0.0]).view(1, 3, 1, 1, 1))
    x = torch.randn(2, 3, 2, 4, 4) * 0.01
    x[:, 0, 1, 2, 3] = 1.0
    with torch.no_grad():
        out = pool(x)
        expected = pool.transform(x[:, :, 1:2, 2:3, 3:4])  # the transform of the selected position's vector
    assert out.shape == (2, 3, 1, 1, 1)
    torch.testing.assert_close(out, expected, atol=1e-3, rtol=1e-3)
    assert [m.out_channels for m in pool.transform if isinstance(m, nn.Conv3d)] == [9, 3]  # factor 3 bottleneck


def test_pool_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(B, 1, T, H, W\)"):
        global_context_pool(torch.randn(1, 2, 3, 4, 4), torch.randn(1, 1, 3, 4, 5))


@pytest.mark.parametrize("in_ch, out_ch, residual, has_identity", [
    (8, 8, True, True), (8, 12, True, False), (8, 8, False, False)])
def test_global_transform_identity_only_when_channels_match(in_ch, out_ch, residual, has_identity):
    unit = GlobalTransform(in_ch, out_ch, residual=residual).eval()
    convs = [m for m in unit.layers if isinstance(m, nn.Conv3d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(in_ch, 3 * in_ch), (3 * in_ch, out_ch)]
    with torch.no_grad():
        nn.init.zeros_(unit.last_bn.weight)
        nn.init.zeros_(unit.last_bn.bias)  # the branch now outputs zeros: only the identity is left
        g = torch.randn(3, in_ch, 1, 1, 1)
        out = unit(g)
    assert out.shape == (3, out_ch, 1, 1, 1)
    torch.testing.assert_close(out, g if has_identity else torch.zeros_like(out))
