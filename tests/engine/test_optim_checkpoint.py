import pytest
import torch

from streamact.engine.checkpoint import load_checkpoint, save_checkpoint
from streamact.models import load_state_dict
from streamact.engine.config import OptimConfig
from streamact.engine.optim import build_optimizer, lr_factor


def test_cosine_with_warmup_and_step():
    cfg = OptimConfig(schedule="cosine", warmup_epochs=1)
    f = lambda s: lr_factor(s, steps_per_epoch=10, epochs=5, cfg=cfg)  # noqa: E731
    assert f(0) == pytest.approx(0.01)
    assert f(5) == pytest.approx(0.01 + 0.99 * 0.5)
    assert f(10) == pytest.approx(1.0)  # warm-up done, cosine starts at the peak
    assert f(30) == pytest.approx(0.5)  # half way through the cosine
    assert f(50) == pytest.approx(0.0, abs=1e-9)
    step = OptimConfig(schedule="step", lr_steps=[2, 4])
    assert [lr_factor(s, steps_per_epoch=1, epochs=5, cfg=step) for s in (1, 2, 4)] == pytest.approx([1, 0.1, 0.01])
    with pytest.raises(ValueError, match="schedule"):
        lr_factor(0, steps_per_epoch=1, epochs=1, cfg=OptimConfig(schedule="poly"))


def test_no_weight_decay_on_norms_and_biases():
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    opt = build_optimizer(model, OptimConfig(optimizer="adamw", weight_decay=0.1))
    decay, no_decay = opt.param_groups
    assert [p.shape for p in decay["params"]] == [torch.Size([4, 4])]
    assert no_decay["weight_decay"] == 0 and len(no_decay["params"]) == 3


def test_checkpoint_atomic_and_safe(tmp_path):
    path = save_checkpoint({"model": {"w": torch.ones(2)}, "epoch": 1}, tmp_path / "c.pt")
    assert load_checkpoint(path)["epoch"] == 1
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind
    assert torch.equal(load_state_dict(path)["w"], torch.ones(2))  # user-facing loader reads checkpoints too

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"model": {}, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(ValueError, match="not a loadable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "trunc.pt").write_bytes(path.read_bytes()[:50])
    with pytest.raises(ValueError, match="trunc.pt"):
        load_checkpoint(tmp_path / "trunc.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
