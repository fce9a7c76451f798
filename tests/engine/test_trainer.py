"""End-to-end training on a tiny synthetic gesture set: logging, checkpoints, resume, NaN stop, bad samples, DDP."""
import json
import os
import subprocess
import sys

import pytest
import torch

from streamact.data.datasets.synthetic import generate_gestures
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import load_config
from streamact.engine.trainer import NonFiniteLossError, Trainer

TINY = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.input_size=48",
        "--data.clip_len=4", "--data.batch_size=6", "--data.num_workers=0", "--data.val_split=val",
        "--optim.lr=0.01", "--epochs=2"]


@pytest.fixture(scope="module")
def gestures(tmp_path_factory):
    root = tmp_path_factory.mktemp("gestures")
    generate_gestures(root, per_class=2, seed=0, size=56, progress=False)
    return root


def tiny_config(root, out, *extra):
    return load_config(None, TINY + [f"--data.root={root}", f"--out_dir={out}", *extra])


class Recorder:
    def __init__(self, crash_at_step=None):
        self.losses, self.crash_at_step = {}, crash_at_step

    def __call__(self, event, trainer, **info):
        if event == "step":
            self.losses[info["step"]] = info["loss"]
            if info["step"] == self.crash_at_step:
                raise RuntimeError("simulated crash")


def test_fit_writes_logs_and_checkpoints(gestures, tmp_path):
    trainer = Trainer(tiny_config(gestures, tmp_path), progress=False)
    metrics = trainer.fit()
    assert {"train_loss", "val_top1", "train_clips_per_s"} <= set(metrics)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == trainer.step > 0
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "best.pt").exists()


def test_resume_after_crash_reaches_same_next_step_loss(gestures, tmp_path):
    reference = Recorder()
    full = Trainer(tiny_config(gestures, tmp_path / "a"), callbacks=[reference], progress=False)
    full.fit()
    steps_per_epoch = full.steps_per_epoch
    first_of_epoch2 = steps_per_epoch + 1

    crashing = Recorder(crash_at_step=first_of_epoch2)  # dies during epoch 2, after epoch 1's checkpoint
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_config(gestures, tmp_path / "b"), callbacks=[crashing], progress=False).fit()
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1

    resumed = Recorder()
    Trainer(tiny_config(gestures, tmp_path / "b"), callbacks=[resumed], progress=False).fit(resume=True)
    assert min(resumed.losses) == first_of_epoch2
    assert resumed.losses[first_of_epoch2] == pytest.approx(reference.losses[first_of_epoch2], rel=1e-5)
    assert crashing.losses[1] == pytest.approx(reference.losses[1], rel=1e-5)


def test_nan_loss_stops_clearly(gestures, tmp_path):
    trainer = Trainer(tiny_config(gestures, tmp_path, "--optim.lr=1e30", "--optim.clip_grad=0"), progress=False)
    with pytest.raises(NonFiniteLossError, match="loss is"):
        trainer.fit()


def test_corrupt_videos_are_skipped_and_counted(gestures, tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    for f in gestures.iterdir():
        (root / f.name).symlink_to(f)
    videos = root / "videos"
    videos.unlink()
    videos.mkdir()
    for f in sorted((gestures / "videos").iterdir()):
        (videos / f.name).symlink_to(f)
    train_ids = [line.split(";")[0] for line in (gestures / "train.csv").read_text().splitlines()]
    bad = train_ids[:2]
    (videos / f"{bad[0]}.mp4").unlink()
    (videos / f"{bad[0]}.mp4").write_bytes(b"")  # zero bytes
    (videos / f"{bad[1]}.mp4").unlink()
    (videos / f"{bad[1]}.mp4").write_bytes((gestures / "videos" / f"{bad[1]}.mp4").read_bytes()[:300])  # truncated
    metrics = Trainer(tiny_config(root, tmp_path / "run", "--epochs=1"), progress=False).fit()
    assert metrics["skipped_samples"] == 2


@pytest.mark.slow
def test_ddp_two_ranks_hold_identical_parameters(gestures, tmp_path):
    out = tmp_path / "ddp"
    script = tmp_path / "dump.py"
    script.write_text(
        "import sys, torch\n"
        "from streamact.engine.config import load_config\n"
        "from streamact.engine.trainer import Trainer\n"
        "from streamact.engine import distributed as dist\n"
        f"cfg = load_config(None, {TINY!r} + ['--data.root={gestures}', '--out_dir={out}', '--epochs=1', "
        "'--max_steps=2', '--data.val_split='])\n"
        "t = Trainer(cfg, progress=False); t.fit()\n"
        "flat = torch.cat([p.detach().flatten() for p in t.model.parameters()])\n"
        f"torch.save(flat, '{tmp_path}/params_' + str(dist.rank()) + '.pt')\n"
        "assert dist.world_size() == 2 and t.step == min(2, len(t.train_loader)) >= 1\n"
        "from torch.utils.data import DistributedSampler\n"
        "assert isinstance(t.train_loader.sampler, DistributedSampler)\n"
        "assert len(t.train_loader.sampler) == len(t.train_set) // 2\n")  # full batches: the rest is dropped
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    p0, p1 = (torch.load(tmp_path / f"params_{r}.pt") for r in (0, 1))
    assert torch.equal(p0, p1)
    assert (out / "last.pt").exists()


def test_init_weights_starts_from_a_checkpoint_in_causal_form(gestures, tmp_path):
    first = Trainer(tiny_config(gestures, tmp_path / "a", "--epochs=1"), progress=False)
    first.fit()
    second = Trainer(tiny_config(gestures, tmp_path / "b", f"--model.init_weights={tmp_path / 'a' / 'last.pt'}",
                                 "--model.kwargs.causal=true", "--data.sampling=dense"), progress=False)
    for (name, a), b in zip(first.model.state_dict().items(), second.model.state_dict().values()):
        assert torch.equal(a, b), name
    assert all(not layer.bidirectional for _, layer in second.model.temporal_layers())
    assert second.model.pretrained_cfg.num_segments is None  # dense clips: no segment sampling recorded
    fresh = Trainer(tiny_config(gestures, tmp_path / "c", f"--model.init_weights={tmp_path / 'a' / 'last.pt'}",
                                "--model.init_head=false"), progress=False)
    for (name, a), b in zip(first.model.state_dict().items(), fresh.model.state_dict().values()):
        assert torch.equal(a, b) != name.startswith("head."), name  # all but the classifier
