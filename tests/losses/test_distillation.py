"""Knowledge distillation: kd_loss hand-checked, the frozen logit-averaging teacher, loading it from checkpoints."""
import math

import pytest
import torch
from _fixtures import randomise_bn

from streamact.engine.checkpoint import save_checkpoint
from streamact.engine.config import config_to_dict, load_config
from streamact.engine.build import build_model_from_config
from streamact.losses.distillation import TwoStreamTeacher, kd_loss, load_teacher

T, SIZE = 2, 32
LABELS = ["push", "pull", "none"]


def test_kd_loss_is_zero_for_equal_distributions():
    s = torch.randn(4, 7)
    assert kd_loss(s, s.clone()).item() == pytest.approx(0.0, abs=1e-6)
    assert kd_loss(s, s + 3.0).item() == pytest.approx(0.0, abs=1e-4)  # softmax ignores a constant shift


def test_kd_loss_hand_value():
    temp = 8.0
    student = torch.zeros(1, 2)
    teacher = torch.tensor([[temp * math.log(3.0), 0.0]])  # softmax(teacher / T) = [0.75, 0.25]
    expected = temp**2 * (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5))
    assert kd_loss(student, teacher, temperature=temp).item() == pytest.approx(expected, rel=1e-5)
    batch = torch.cat([student, student]), torch.cat([teacher, student])
    assert kd_loss(*batch, temperature=temp).item() == pytest.approx(expected / 2, rel=1e-5)  # batch mean


def test_kd_loss_gradient_pulls_student_to_teacher():
    temp = 4.0
    student = torch.randn(3, 5, requires_grad=True)
    teacher = torch.randn(3, 5, requires_grad=True)
    loss = kd_loss(student, teacher, temperature=temp)
    loss.backward()
    p_s, p_t = (student / temp).softmax(-1), (teacher / temp).softmax(-1)
    torch.testing.assert_close(student.grad, temp * (p_s - p_t).detach() / 3)
    assert teacher.grad is None  # the teacher is a fixed target
    with torch.no_grad():
        stepped = student - 1.0 * student.grad
        assert kd_loss(stepped, teacher, temperature=temp) < loss


def test_kd_loss_bad_input():
    with pytest.raises(ValueError, match="differ in shape"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature must be positive"):
        kd_loss(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0)


class _Fixed(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))
        self.drop = torch.nn.Dropout(0.5)

    def forward(self, x):
        return self.drop(self.logits.expand(x.shape[0], -1))


def test_teacher_averages_logits_and_is_frozen():
    teacher = TwoStreamTeacher([_Fixed([1.0, 0.0, 3.0]), _Fixed([3.0, 2.0, -1.0])])
    teacher.train()  # e.g. a trainer switching everything to training mode
    assert not teacher.training and not any(m.training for m in teacher.modules())
    assert not any(p.requires_grad for p in teacher.parameters())
    out = teacher(torch.zeros(2, 3, T, 4, 4))
    torch.testing.assert_close(out, torch.tensor([[2.0, 1.0, 1.0]] * 2))  # dropout off: eval mode
    assert out.grad_fn is None
    with pytest.raises(ValueError, match="at least one model"):
        TwoStreamTeacher([])


def _checkpoint(path, modality, labels):
    cfg = load_config(None, ["--model.name=vtn_mobilenetv2_100", "--model.pretrained=false", f"--data.clip_len={T}",
                             f"--data.input_size={SIZE}", f"--model.kwargs.modality={modality}"])
    model = randomise_bn(build_model_from_config(cfg, labels, pretrained=False))
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "class_names": labels}, path)
    return model.eval()


def test_load_teacher_from_checkpoints(tmp_path):
    rgb = _checkpoint(tmp_path / "rgb.pt", "rgb", LABELS)
    diff = _checkpoint(tmp_path / "rgbdiff.pt", "rgbdiff", LABELS)
    teacher = load_teacher([tmp_path / "rgb.pt", tmp_path / "rgbdiff.pt"], LABELS)
    assert [m.modality.modality for m in teacher.members] == ["rgb", "rgbdiff"]
    clips = torch.randn(2, 3, T, SIZE, SIZE)
    with torch.no_grad():
        torch.testing.assert_close(teacher(clips), (rgb(clips) + diff(clips)) / 2)
    assert not any(p.requires_grad for p in teacher.parameters())


def test_load_teacher_refuses_other_classes(tmp_path):
    _checkpoint(tmp_path / "rgb.pt", "rgb", LABELS)
    _checkpoint(tmp_path / "other.pt", "rgbdiff", ["push", "swipe", "none"])
    with pytest.raises(ValueError, match=r"checkpoint .*other\.pt .*class 1 is 'swipe', the student's is 'pull'"):
        load_teacher([tmp_path / "rgb.pt", tmp_path / "other.pt"], LABELS)
    with pytest.raises(ValueError, match=r"rgb\.pt .*3 classes, the student has 2"):
        load_teacher([tmp_path / "rgb.pt"], LABELS[:2])
    with pytest.raises(FileNotFoundError):
        load_teacher([tmp_path / "missing.pt"], LABELS)
    with pytest.raises(ValueError, match="at least one checkpoint"):
        load_teacher([], LABELS)
