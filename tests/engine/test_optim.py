import pytest
import torch

from streamact.engine.config import OptimConfig
from streamact.engine.optim import build_optimizer, build_scheduler, freeze_backbone, staged_lr_factor


def test_staged_schedule_phase_boundaries():
    # LIGAR's fine-tuning template: base lr 1e-3, 5 head-only epochs at 1e-2, 5 warm-up epochs from 1e-5, then the
    # alpha-cosine (alpha 1.5) over the remaining 55 epochs down to 1e-5; 10 steps per epoch.
    f = lambda s: 1e-3 * staged_lr_factor(s, steps_per_epoch=10, epochs=65, freeze_epochs=5,  # noqa: E731
                                          warmup_epochs=5)
    assert f(0) == pytest.approx(1e-2) and f(49) == pytest.approx(1e-2)
    assert f(50) == pytest.approx(1e-5)  # warm-up starts at 1e-5
    assert f(75) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5)  # half way: cos(pi/2) = 0
    assert f(100) == pytest.approx(1e-3)  # alpha-cosine starts at the peak
    # Half way through the cosine stage: progress 0.5 -> 0.5 ** 1.5 = 0.35355, cos(pi * 0.35355) = 0.44403.
    assert f(375) == pytest.approx(1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + 0.444027), rel=1e-5)
    assert f(375) > 1e-5 + (1e-3 - 1e-5) * 0.5  # higher than a plain cosine at the same point
    assert f(650) == pytest.approx(1e-5) and f(700) == pytest.approx(1e-5)
    plain = staged_lr_factor(5, steps_per_epoch=1, epochs=10, alpha=1.0)  # no stages, alpha 1: plain cosine
    assert plain == pytest.approx(0.01 + 0.99 * 0.5)
    with pytest.raises(ValueError, match="cosine stage"):
        staged_lr_factor(0, steps_per_epoch=1, epochs=10, freeze_epochs=5, warmup_epochs=5)


def test_staged_scheduler_resumes():
    model = torch.nn.Linear(2, 2)
    cfg = OptimConfig(schedule="staged", lr=1e-3, freeze_epochs=1, warmup_epochs=1)
    stages = dict(freeze_epochs=1, warmup_epochs=1)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    sched = build_scheduler(opt, steps_per_epoch=4, epochs=6, cfg=cfg)
    for _ in range(7):
        opt.step()
        sched.step()
    opt2 = torch.optim.SGD(model.parameters(), lr=1e-3)
    sched2 = build_scheduler(opt2, steps_per_epoch=4, epochs=6, cfg=cfg)
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert sched2.get_last_lr() == sched.get_last_lr() == pytest.approx(
        [1e-3 * staged_lr_factor(7, steps_per_epoch=4, epochs=6, **stages)])
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()
    with pytest.raises(ValueError, match="leave some"):  # stages longer than training
        build_scheduler(opt, steps_per_epoch=4, epochs=2, cfg=cfg)


class _PartialBNNet(torch.nn.Module):
    """A backbone with two BatchNorms whose train() freezes the second one (like TSN's partial BN), and a head."""

    def __init__(self) -> None:
        super().__init__()
        self.backbone = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.BatchNorm1d(4))
        self.head = torch.nn.Sequential(torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            self.backbone[2].eval()
            self.backbone[2].weight.requires_grad_(False)
        return self

    def forward(self, x):
        return self.head(self.backbone(x))


def test_freeze_backbone_survives_train_and_restores_partial_bn():
    net = _PartialBNNet().train()
    opt = build_optimizer(net, OptimConfig())  # before freezing: every trainable parameter is in the optimizer
    assert freeze_backbone(net, True) == 6
    assert not any(p.requires_grad for p in net.backbone.parameters())
    assert all(p.requires_grad for p in net.head.parameters())
    assert not net.backbone[1].training and net.head[0].training
    net.train()  # an epoch start: freezing is re-applied right after
    assert net.backbone[1].training
    freeze_backbone(net, True)
    stats = net.backbone[1].running_mean.clone()
    weights = net.backbone[0].weight.clone()
    loss = net(torch.randn(8, 3)).sum()
    loss.backward()
    opt.step()
    assert torch.equal(net.backbone[1].running_mean, stats)  # frozen BN keeps its statistics
    assert torch.equal(net.backbone[0].weight, weights) and net.backbone[0].weight.grad is None
    assert not torch.equal(net.head[0].running_mean, torch.zeros(4))  # the head's BN still trains
    freeze_backbone(net, False)
    assert net.backbone[1].training and net.backbone[0].weight.requires_grad
    assert not net.backbone[2].training and not net.backbone[2].weight.requires_grad  # the model's own freezing
    with pytest.raises(ValueError, match="classifier"):
        freeze_backbone(net, True, trainable=("classifier",))
