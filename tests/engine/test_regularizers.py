import math

import pytest
import torch
from torch import nn

from streamact.engine.regularizers import adaptive_clip_grad_, bn_eval, js_consistency_loss, rsc_features


def _linear_head(rows):
    head = nn.Linear(len(rows[0]), len(rows), bias=False)
    head.weight.data = torch.tensor(rows, dtype=torch.float32)
    return head


def test_rsc_masks_the_entries_with_the_largest_gt_gradient():
    # For a linear head the gradient of logit y w.r.t. the features is row y of the weight.
    head = _linear_head([[4.0, 1.0, 3.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
    feats = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]], requires_grad=True)
    labels = torch.tensor([0, 1])
    out = rsc_features(feats, head, labels, drop_p=0.5, apply_p=1.0)
    # retain 0.5: the 0.5-quantile of (4, 1, 3, 2) is 2.5 -> zero entries 0 and 2, scale the rest by 2.
    # Sample 1: gradients (1, 2, 3, 4) -> zero entries 2 and 3.
    assert out.tolist() == [[0, 4, 0, 8], [10, 12, 0, 0]]
    out.sum().backward()  # gradients reach the features through the kept entries only
    assert feats.grad.tolist() == [[0, 2, 0, 2], [2, 2, 0, 0]]
    assert torch.equal(rsc_features(feats, head, labels, apply_p=0.0), feats)
    # The default drop 0.33 on 3 entries: quantile 0.67 of (1, 2, 3) is 2.34 -> only the largest is dropped.
    head3 = _linear_head([[1.0, 3.0, 2.0]])
    torch.testing.assert_close(rsc_features(torch.ones(1, 3), head3, torch.tensor([0]), apply_p=1.0),
                               torch.tensor([[1 / 0.67, 0, 1 / 0.67]]))


def test_rsc_challenges_a_random_share_and_keeps_shapes():
    head = nn.Sequential(nn.Flatten(), _linear_head([[1.0, 2.0, 3.0, 4.0]] * 3))
    feats = torch.rand(64, 4, 1, 1, 1)  # pooled 3D features (B, C, 1, 1, 1)
    labels = torch.randint(0, 3, (64,))
    out = rsc_features(feats, head, labels, drop_p=0.5, apply_p=0.5, generator=torch.Generator().manual_seed(3))
    assert out.shape == feats.shape
    chosen = torch.rand(64, generator=torch.Generator().manual_seed(3)) < 0.5
    changed = (out != feats).flatten(1).any(1)
    assert torch.equal(changed, chosen)
    assert 16 < int(chosen.sum()) < 48
    with pytest.raises(ValueError, match="labels"):
        rsc_features(feats, head, labels[:3])


def test_bn_eval_freezes_running_stats_and_restores_mode():
    head = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4)).train()
    before = head[1].running_mean.clone()
    with bn_eval(head):
        assert not head[1].training and head[0].training
        head(torch.randn(8, 4))
    assert torch.equal(head[1].running_mean, before) and head[1].training
    head.eval()
    with bn_eval(head):
        pass
    assert not head[1].training  # a layer that was in eval mode stays there


def test_js_consistency_hand_computed():
    # Views with probabilities (0.8, 0.2) and (0.2, 0.8): M = (0.5, 0.5), each KL = 0.8 ln 1.6 + 0.2 ln 0.4.
    a = torch.log(torch.tensor([[0.8, 0.2]]))
    b = torch.log(torch.tensor([[0.2, 0.8]]))
    expected = 0.8 * math.log(1.6) + 0.2 * math.log(0.4)
    assert js_consistency_loss([a, b]).item() == pytest.approx(expected, rel=1e-5)
    assert js_consistency_loss(torch.stack([a, b, a])).item() > 0
    assert js_consistency_loss([a, a + 3.0]).item() == pytest.approx(0.0, abs=1e-7)  # same softmax
    # Gradients pull the views together.
    x = torch.tensor([[2.0, 0.0]], requires_grad=True)
    js_consistency_loss([x, torch.zeros(1, 2)]).backward()
    assert x.grad[0, 0] > 0 > x.grad[0, 1]
    with pytest.raises(ValueError, match="2 views"):
        js_consistency_loss([a])


def test_adaptive_clip_grad_hand_computed():
    w = nn.Parameter(torch.tensor([[3.0, 4.0], [0.0, 0.0]]))
    b = nn.Parameter(torch.tensor([0.5, -2.0]))
    w.grad = torch.tensor([[30.0, 40.0], [1.0, 0.0]])
    b.grad = torch.tensor([0.05, 1.0])
    frozen = nn.Parameter(torch.ones(2))  # no grad: skipped
    adaptive_clip_grad_([w, b, frozen], clip=0.2)
    # Row 0: |W| = 5, max 1, |g| = 50 -> scaled by 1/50. Row 1: |W| floored at 1e-3, max 2e-4, |g| = 1 -> 2e-4.
    torch.testing.assert_close(w.grad, torch.tensor([[0.6, 0.8], [2e-4, 0.0]]))
    # Vector: unit-wise = element-wise: max 0.1 and 0.4; 0.05 stays, 1.0 -> 0.4.
    assert b.grad.tolist() == pytest.approx([0.05, 0.4])
    assert frozen.grad is None
    conv = nn.Conv3d(2, 3, 3)
    conv.weight.grad = torch.full_like(conv.weight, 1e-6)  # tiny: untouched
    before = conv.weight.grad.clone()
    adaptive_clip_grad_(conv.parameters())
    assert torch.equal(conv.weight.grad, before)
    with pytest.raises(ValueError, match="positive"):
        adaptive_clip_grad_([w], clip=0)
