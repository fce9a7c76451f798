"""Multi-head training over several datasets (LIGAR, `data.joint`): routing of mixed batches to their heads, an
end-to-end joint run (per-dataset validation, checkpoint, resume) and its configuration errors."""
import pytest
import torch
import torch.nn.functional as F

from streamact.data.synthetic import generate_gestures
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import ConfigError, load_config
from streamact.engine.build import build_model_from_config
from streamact.engine.trainer import Trainer, TrainStep
from streamact.engine.build import load_trained_model

LIGAR = ["--model.name=ligar_x3d_mobilenetv3", "--model.pretrained=false", "--model.dropout=0",
         "--data.sampling=dense", "--data.clip_len=4", "--data.input_size=48", "--data.batch_size=6",
         "--data.num_workers=0", "--data.val_split=val", "--optim.lr=0.01", "--epochs=1"]
# The second dataset relabels the same videos into three coarse classes (a different, smaller label space).
COARSE = {"swipe_left": "swipe", "swipe_right": "swipe", "swipe_up": "swipe", "swipe_down": "swipe",
          "no_gesture": "still", "thumb_up": "still", "open_palm": "still", "fist": "still"}


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    gestures = tmp_path_factory.mktemp("gestures")
    summary = generate_gestures(gestures, per_class=2, seed=0, size=56, progress=False)
    coarse = tmp_path_factory.mktemp("coarse")
    (coarse / "labels.csv").write_text("swipe\nstill\nother\n")
    for split in ("train", "val"):
        lines = [f"{r.meta['id']};{COARSE.get(r.meta['label_name'], 'other')}" for r in summary["records"][split]]
        (coarse / f"{split}.csv").write_text("\n".join(lines) + "\n")
    (coarse / "videos").symlink_to(gestures / "videos", target_is_directory=True)
    return gestures, coarse


def joint_config(datasets, out, *extra):
    gestures, coarse = datasets
    return load_config(None, LIGAR + [f"--data.root={gestures}", f"--out_dir={out}",
                                      f"--data.joint=[{{name: coarse, format: jester, root: '{coarse}'}}]", *extra])


def _flat(module):
    return torch.cat([p.detach().flatten().clone() for p in module.parameters()])


@pytest.mark.parametrize("extra", [[], ["--loss.name=metric", "--loss.rsc=true", "--data.views=2"]])
def test_mixed_batch_is_scored_by_each_samples_head(tmp_path, extra):
    cfg = load_config(None, LIGAR + ["--data.joint=[{name: b, format: jester, root: x}]", *extra])
    torch.manual_seed(0)
    model = build_model_from_config(cfg, list("abcde"), joint_class_names=[list("abcde"), list("xyz")])
    step = TrainStep(model, cfg, steps_per_epoch=4).train()
    views = cfg.data.views
    clips = torch.randn(5, *([views] if views > 1 else []), 3, 4, 48, 48)
    labels = torch.tensor([4, 2, 0, 1, 2])
    ids = torch.tensor([0, 1, 0, 1, 0])
    loss, logits, parts = step(clips, labels, 0, None, ids)
    assert torch.isfinite(loss) and logits.shape == (5, 5)
    # Rows of the 3-class dataset are padded with -inf: softmax and argmax stay within that dataset's classes.
    assert torch.isinf(logits[[1, 3], 3:]).all() and torch.isfinite(logits[[1, 3], :3]).all()
    assert torch.isfinite(logits[[0, 2, 4]]).all()
    if extra:
        assert {"am_softmax", "local_push", "consistency", "scale"} <= set(parts)
        return
    # Plain CE: the loss is the sample-weighted mean of each dataset's loss under its own head.
    features = model.forward_features(clips)
    expected = sum(F.cross_entropy(model.forward_head(features[idx], d), labels[idx], reduction="sum")
                   for d, idx in enumerate([torch.tensor([0, 2, 4]), torch.tensor([1, 3])])) / 5
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    # Gradients reach only the heads of the datasets in the batch; a lone sample of a dataset is scored too.
    model.zero_grad()
    step(clips, labels, 0, None, torch.tensor([0, 0, 0, 0, 1]))[0].backward()
    assert all(p.grad is not None for p in model.heads.parameters())
    model.zero_grad()
    step(clips, labels, 0, None, torch.zeros(5, dtype=torch.long))[0].backward()
    assert all(p.grad is None for p in model.heads[1].parameters())
    assert all(p.grad is not None for p in model.heads[0].parameters())


def test_joint_run_trains_both_heads_validates_each_dataset_and_resumes(datasets, tmp_path):
    gestures, _ = datasets
    cfg = joint_config(datasets, tmp_path / "run")
    trainer = Trainer(cfg, progress=False)
    assert trainer.joint.names == [gestures.name, "coarse"] and trainer.joint.class_sizes == (15, 3)
    before = [_flat(head) for head in trainer.model.heads]
    metrics = trainer.fit()
    assert all(not torch.equal(_flat(head), b) for head, b in zip(trainer.model.heads, before))
    for name in (gestures.name, "coarse"):
        assert 0 <= metrics[f"val_top1_{name}"] <= 1 and 0 <= metrics[f"val_rank_map_{name}"] <= 1
    assert metrics["val_top1"] == metrics[f"val_top1_{gestures.name}"]
    assert 0 <= metrics["train_top1"] <= 1 and metrics["val_skipped_samples"] == 0
    ckpt = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ckpt["class_names"] == trainer.joint.class_names[0]  # head 0 is what export and streaming see
    assert ckpt["joint_class_names"] == [trainer.joint.class_names[0], ["swipe", "still", "other"]]
    assert trainer.model.pretrained_cfg.label_names == tuple(ckpt["class_names"])
    # The checkpoint rebuilds with every head, and a second epoch resumes from it.
    rebuilt, _ = load_trained_model(tmp_path / "run" / "best.pt")  # what recognize / export / a teacher load
    assert rebuilt.head_sizes == (len(ckpt["class_names"]), 3)
    cfg.epochs = 2
    resumed = Trainer(cfg, progress=False)
    resumed.resume()
    assert resumed.epoch == 1 and torch.equal(_flat(resumed.model.heads[1]), _flat(trainer.model.heads[1]))
    assert resumed.fit(resume=True)["epoch"] == 2


def test_single_dataset_checkpoint_has_one_class_list(datasets, tmp_path):
    gestures, _ = datasets
    cfg = load_config(None, LIGAR + [f"--data.root={gestures}", f"--out_dir={tmp_path}", "--max_steps=1",
                                     "--data.val_split="])
    trainer = Trainer(cfg, progress=False)
    metrics = trainer.fit()
    assert len(trainer.model.heads) == 1 and not any(k.startswith("val_") for k in metrics)
    assert load_checkpoint(tmp_path / "last.pt")["joint_class_names"] == [trainer.class_names]


@pytest.mark.parametrize("joint, match", [
    ("[{name: b, fromat: jester, root: x}]", "unknown key 'fromat'"),
    ("[{name: b, format: jester}]", "missing 'root'"),
    ("[jester:x]", "expected a mapping"),
    ("[{name: b, format: jester, root: x}, {name: b, format: jester, root: y}]", "named 'b'"),
])
def test_bad_joint_entries_are_config_errors(joint, match):
    with pytest.raises(ConfigError, match=match):
        load_config(None, [f"--data.joint={joint}"])


@pytest.mark.parametrize("extra, match", [
    (["--model.name=tsm_mobilenetv2_100"], "one head per dataset"),
    (["--loss.teacher=[teacher.pt]"], "distillation"),
])
def test_joint_needs_a_multi_head_model_and_no_teacher(datasets, tmp_path, extra, match):
    with pytest.raises(ConfigError, match=match):
        Trainer(joint_config(datasets, tmp_path, *extra), progress=False)
