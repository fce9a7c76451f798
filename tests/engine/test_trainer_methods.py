"""LIGAR / VTN training methods through the Trainer: metric loss, head-only stage, staged schedule, AGC, RSC,
view consistency, ACS, CrossNorm, background MixUp, distillation; and their configuration errors."""
import pytest
import torch

from streamact.data.synthetic import generate_backgrounds, generate_gestures
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import ConfigError, load_config
from streamact.engine.trainer import Trainer
from streamact.transforms.regularizers import CrossNorm

LIGAR = ["--model.name=ligar_x3d_mobilenetv3", "--model.pretrained=false", "--model.dropout=0",
         "--data.sampling=dense", "--data.clip_len=4", "--data.input_size=48", "--data.batch_size=5",
         "--data.num_workers=0", "--data.val_split=val", "--optim.lr=0.01", "--epochs=2"]
TSM = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.sampling=dense",
       "--data.clip_len=4", "--data.input_size=48", "--data.batch_size=6", "--data.num_workers=0",
       "--data.val_split=val", "--optim.lr=0.01", "--epochs=1"]


@pytest.fixture(scope="module")
def gestures(tmp_path_factory):
    root = tmp_path_factory.mktemp("gestures")
    generate_gestures(root, per_class=2, seed=0, size=56, progress=False)
    return root


def config(recipe, root, out, *extra):
    return load_config(None, recipe + [f"--data.root={root}", f"--out_dir={out}", *extra])


def _flat(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


def test_ligar_recipe_trains_head_only_first_then_everything(gestures, tmp_path):
    backgrounds = tmp_path / "backgrounds"
    generate_backgrounds(backgrounds, num=3, seed=1, size=64)
    stats = tmp_path / "stats.txt"
    stats.write_text("120,110,100 30,30,30\n60,70,80 20,25,30\n")
    cfg = config(LIGAR, gestures, tmp_path / "run", "--loss.name=metric", "--loss.rsc=true", "--data.views=2",
                 "--data.view_span=6", "--optim.schedule=staged", "--optim.freeze_epochs=1",
                 "--optim.warmup_epochs=0.5", "--optim.clip_mode=agc", "--optim.clip_grad=0.2", "--data.acs=true",
                 "--data.acs_warmup_epochs=0", "--data.acs_min_fraction=0.1", f"--data.crossnorm_stats={stats}",
                 "--data.crossnorm_p=1", f"--data.mixup_backgrounds={backgrounds}", "--data.mixup_p=1")
    snapshots, lrs = {}, []

    def record(event, trainer, **info):
        if event == "step":
            lrs.append((trainer.epoch, trainer.optimizer.param_groups[0]["lr"]))
        if event == "epoch":
            snapshots[info["epoch"]] = (_flat(trainer.model.stem), _flat(trainer.model.heads),
                                        trainer.model.stem[1].running_mean.clone(), info["metrics"])

    trainer = Trainer(cfg, callbacks=[record], progress=False)
    assert any(isinstance(t, CrossNorm) for t in trainer.train_set.transform.transform.transforms)
    before = (_flat(trainer.model.stem), _flat(trainer.model.heads), trainer.model.stem[1].running_mean.clone())
    metrics = trainer.fit()
    (stem1, head1, bn1, m1), (stem2, head2, _, m2) = snapshots[1], snapshots[2]
    assert torch.equal(stem1, before[0]) and torch.equal(bn1, before[2])  # epoch 1: backbone and its BN frozen
    assert not torch.equal(head1, before[1])  # ... while the head learns
    assert not torch.equal(stem2, stem1) and not torch.equal(head2, head1)  # epoch 2: everything trains
    # staged schedule: 10x the base lr (0.01) in the head-only epoch, then a warm-up from 1% and the alpha-cosine
    # (a step event reports the lr of the next step: the last one of epoch 1 already belongs to the warm-up)
    assert [lr for epoch, lr in lrs if epoch == 0][:-1] == pytest.approx([0.1] * (trainer.steps_per_epoch - 1))
    assert all(lr <= 0.01 + 1e-12 for epoch, lr in lrs if epoch == 1)
    for key in ("train_am_softmax", "train_local_push", "train_centre_push", "train_consistency", "val_top1",
                "acs_ready_fraction"):
        assert key in metrics, key
    assert m1["train_scale"] > m2["train_scale"] > 0  # the AM-Softmax scale schedule decays
    assert metrics["acs_ready_fraction"] > 0 and trainer.train_set.sampler.snapshot  # ACS sampled epoch 2
    ckpt = load_checkpoint(tmp_path / "run" / "last.pt")
    resumed = Trainer(cfg, progress=False)
    resumed.resume()
    assert resumed.acs.state_dict()["scores"].equal(ckpt["acs"]["scores"])
    assert ckpt["acs"]["scores"].abs().sum() > 0


def test_distillation_from_a_teacher_checkpoint(gestures, tmp_path):
    Trainer(config(TSM, gestures, tmp_path / "teacher"), progress=False).fit()
    cfg = config(TSM, gestures, tmp_path / "student", "--model.name=vtn_mobilenetv2_100", "--model.dropout=0",
                 "--model.kwargs.modality=stacked")
    cfg.loss.teacher = [str(tmp_path / "teacher" / "last.pt")]
    trainer = Trainer(cfg, progress=False)
    assert not any(p.requires_grad for p in trainer.teacher.parameters())
    metrics = trainer.fit()
    assert metrics["train_distillation"] > 0


@pytest.mark.parametrize("extra, error, match", [
    (["--loss.name=metric"], ConfigError, "metric head"),
    (["--loss.name=focal"], ConfigError, "unknown loss"),
    (["--optim.clip_mode=value"], ConfigError, "clip_mode"),
    (["--data.views=2", "--data.view_span=3"], ConfigError, "view_span"),
    (["--data.acs=true", "--data.sampling=segment"], ValueError, "dense"),
    (["--optim.schedule=staged", "--optim.freeze_epochs=1"], ValueError, "leave some"),
])
def test_configuration_errors(gestures, tmp_path, extra, error, match):
    with pytest.raises(error, match=match):
        Trainer(config(TSM, gestures, tmp_path, *extra), progress=False)


def test_videos_shorter_than_a_clip_train_with_acs(tmp_path):
    # Every video (3-5 frames) is shorter than one ACS window (4 frames at stride 2): sampling falls back to
    # loop padding, predictions are still collected, nothing crashes.
    root = tmp_path / "short"
    generate_gestures(root, per_class=2, seed=4, size=56, num_frames=(3, 5), progress=False)
    cfg = config(TSM, root, tmp_path / "run", "--data.frame_interval=2", "--data.acs=true",
                 "--data.acs_warmup_epochs=0", "--epochs=2")
    trainer = Trainer(cfg, progress=False)
    metrics = trainer.fit()
    assert metrics["skipped_samples"] == 0 and "val_top1" in metrics
    assert trainer.acs.state_dict()["scores"].numel() > 0  # scores were collected for the short videos
