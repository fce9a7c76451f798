"""LIGAR's metric-learning losses, checked on hand-computed cases."""
import math

import pytest
import torch
import torch.nn.functional as F

from streamact.layers.metric_head import MetricHead
from streamact.losses.classification import (
    ConstantScale,
    LocalPushLoss,
    MetricLearningLoss,
    PolyScale,
    am_softmax_logits,
    am_softmax_loss,
    class_centre_push_loss,
    positives_mean,
    softmax_entropy,
)


def test_am_softmax_by_hand():
    cos = torch.tensor([[0.5, 0.2, -0.1], [0.3, 0.4, 0.0]])
    labels = torch.tensor([0, 2])
    logits = am_softmax_logits(cos, labels, scale=10.0, margin=0.35)
    torch.testing.assert_close(logits, torch.tensor([[1.5, 2.0, -1.0], [3.0, 4.0, -3.5]]))
    loss = am_softmax_loss(cos, labels, scale=10.0, margin=0.35)
    expected = [math.log(math.exp(1.5) + math.exp(2.0) + math.exp(-1.0)) - 1.5,
                math.log(math.exp(3.0) + math.exp(4.0) + math.exp(-3.5)) + 3.5]
    torch.testing.assert_close(loss, torch.tensor(expected))
    with pytest.raises(ValueError, match="labels"):
        am_softmax_logits(cos, labels[:1], scale=1.0)


def test_poly_scale_schedule():
    sched = PolyScale(start=30.0, end=5.0, num_steps=100, power=1.2)
    # c = (5 - 30) / (1 - 1.2) = 125, a = c / 100^1.2, b = -c * 1.2 / 100 = -1.5
    assert sched(0) == pytest.approx(30.0)
    assert sched(50) == pytest.approx(125 * 0.5 ** 1.2 - 1.5 * 50 + 30)
    assert sched(99) == pytest.approx(5.0, abs=0.01)  # zero slope at the end: lands smoothly
    assert sched(100) == sched(10_000) == 5.0 == sched.final
    values = [sched(s) for s in range(101)]
    assert all(a > b for a, b in zip(values, values[1:]))
    with pytest.raises(ValueError, match="power"):
        PolyScale(num_steps=10, power=1.0)
    with pytest.raises(ValueError, match="num_steps"):
        PolyScale(num_steps=0)


def test_constant_scale():
    assert ConstantScale()(0) == ConstantScale()(10**6) == 15.0 == ConstantScale().final
    with pytest.raises(ValueError):
        ConstantScale(0.0)


def test_entropy_and_positives_filter():
    torch.testing.assert_close(softmax_entropy(torch.zeros(2, 4)), torch.full((2,), math.log(4)))
    assert softmax_entropy(torch.tensor([100.0, 0.0, 0.0])) < 1e-6
    losses = torch.tensor([-1.0, 2.0, 4.0, 0.0], requires_grad=True)
    assert positives_mean(losses).item() == 3.0
    none = positives_mean(-losses.abs())
    assert none.item() == 0.0 and none.requires_grad


def _push_case():
    s = math.sin(math.radians(30))
    c = math.cos(math.radians(30))
    emb = torch.tensor([[1.0, 0.0], [c, s], [0.0, 1.0]])  # sims: 01 = 0.866, 02 = 0, 12 = 0.5
    cos = torch.tensor([[0.9, 0.1], [0.2, 0.95], [0.5, 0.3]])
    return emb, cos, torch.tensor([0, 1, 0]), c


def test_local_push_smart_margin_by_hand():
    emb, cos, labels, c = _push_case()
    emb.requires_grad_(True)
    cos.requires_grad_(True)
    # thresholds max(own cos, 0.1) - 0.1: 0.8, 0.85, 0.4; worst other-class excess per sample:
    # 0: 0.866 - 0.8; 1: 0.866 - 0.85 (sample 2's 0.5 is below); 2: 0.5 - 0.4
    loss = LocalPushLoss(margin=0.1)(emb, cos, labels)
    assert loss.item() == pytest.approx(((c - 0.8) + (c - 0.85) + 0.1) / 3, abs=1e-6)
    grad_emb, grad_cos = torch.autograd.grad(loss, (emb, cos), allow_unused=True)
    assert grad_cos is None and grad_emb.abs().sum() > 0  # thresholds are constants; embeddings are pushed


def test_local_push_fixed_margin_and_no_violations():
    emb, cos, labels, c = _push_case()
    loss = LocalPushLoss(margin=0.1, smart_margin=False)(emb, cos, labels)
    assert loss.item() == pytest.approx(((c - 0.1) * 2 + 0.4) / 3, abs=1e-6)
    orthogonal = torch.eye(3)
    assert LocalPushLoss()(orthogonal, cos, labels).item() == 0.0


def test_class_centre_push_by_hand():
    w = torch.tensor([[1.0, 0.0], [2.0, 2.0], [0.0, 3.0], [-1.0, 0.0]], requires_grad=True)
    # pair cosines: (0,1) 0.707, (1,2) 0.707, others <= 0: only those two exceed 0.1
    loss = class_centre_push_loss(w, threshold=0.1)
    assert loss.item() == pytest.approx(1 / math.sqrt(2) - 0.1, abs=1e-6)
    loss.backward()
    assert w.grad.abs().sum() > 0
    spread = class_centre_push_loss(torch.tensor([[1.0, 0.0], [-1.0, 0.0]], requires_grad=True))
    assert spread.item() == 0.0 and spread.requires_grad


def test_metric_learning_loss_combines_the_parts():
    torch.manual_seed(0)
    head = MetricHead(16, 5, embed_dim=8)
    feats, labels = torch.randn(6, 16), torch.tensor([0, 1, 2, 3, 4, 0])
    cos, emb = head.forward_metric(feats)
    sched = PolyScale(num_steps=10)
    loss_fn = MetricLearningLoss(scale=sched)
    loss, parts = loss_fn(cos, emb, labels, head.weight, step=3)
    s = sched(3)
    per_sample = F.cross_entropy(s * (cos - 0.35 * F.one_hot(labels, 5)), labels, reduction="none")
    per_sample = per_sample + 0.085 * (F.softmax(s * cos, 1) * F.log_softmax(s * cos, 1)).sum(1)
    torch.testing.assert_close(parts["am_softmax"], per_sample[per_sample > 0].mean())
    torch.testing.assert_close(parts["local_push"], LocalPushLoss()(emb, cos, labels))
    torch.testing.assert_close(parts["centre_push"], class_centre_push_loss(head.weight))
    torch.testing.assert_close(loss, parts["am_softmax"] + parts["local_push"] + parts["centre_push"])
    assert parts["scale"].item() == pytest.approx(s)
    loss.backward()
    assert head.weight.grad.abs().sum() > 0 and torch.isfinite(head.embed.weight.grad).all()

    plain = MetricLearningLoss(scale=10.0, conf_penalty=0.0, filter_positives=False, local_push_weight=0.0,
                               centre_push_weight=0.0)
    loss, parts = plain(cos.detach(), emb.detach(), labels, head.weight.detach(), step=0)
    torch.testing.assert_close(loss, am_softmax_loss(cos.detach(), labels, scale=10.0).mean())
    assert parts["local_push"].item() == parts["centre_push"].item() == 0.0
    with pytest.raises(ValueError, match="class weights"):
        plain(cos, emb, labels, head.weight[:4], step=0)


def test_metric_learning_loss_trains_a_head():
    """A few steps on separable features make the cosine classifier right (the losses pull the right way)."""
    torch.manual_seed(0)
    centres = torch.randn(3, 12) * 3
    labels = torch.arange(3).repeat(8)
    feats = centres[labels] + 0.3 * torch.randn(24, 12)
    head = MetricHead(12, 3, embed_dim=8)
    opt = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    loss_fn = MetricLearningLoss(scale=PolyScale(num_steps=30))
    first = None
    for step in range(30):
        cos, emb = head.forward_metric(feats)
        loss, _ = loss_fn(cos, emb, labels, head.weight, step)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        assert (head(feats).argmax(1) == labels).float().mean() == 1.0
    assert loss.item() < first
