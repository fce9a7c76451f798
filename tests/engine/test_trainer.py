"""End-to-end training on a tiny synthetic gesture set: logging, checkpoints, resume, NaN stop, bad samples, DDP."""
import csv
import json
import os
import subprocess
import sys

import pytest
import torch

from streamact.data.synthetic import generate_gestures
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import load_config
from streamact.engine.trainer import NonFiniteLossError, Trainer
from streamact.errors import UserError

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



def linked_copy(gestures, root, **splits: str):
    """`root` as a copy of the gesture set made of symlinks, with the annotation files in `splits` (``val="..."``)
    replaced by the given text."""
    root.mkdir()
    for f in gestures.iterdir():
        (root / f.name).symlink_to(f)
    for split, text in splits.items():
        (root / f"{split}.csv").unlink()
        (root / f"{split}.csv").write_text(text)
    return root

def test_fit_writes_logs_and_checkpoints(gestures, tmp_path, caplog, monkeypatch):
    monkeypatch.setattr("streamact.engine.trainer.LOG_EVERY_S", 0.0)  # a line after every step
    trainer = Trainer(tiny_config(gestures, tmp_path), progress=False)
    with caplog.at_level("INFO", logger="streamact.engine.trainer"):
        metrics = trainer.fit()
    total = 2 * trainer.steps_per_epoch
    # without progress bars, the log tells how far the run is and how the epochs went
    assert f"epoch 1/2, step 1 of {total}: loss" in caplog.text and f"epoch 2/2, step {total} of {total}" in caplog.text
    assert f"epoch 2/2 done, step {total}: train_loss {metrics['train_loss']:.4g}" in caplog.text
    assert f"val_top1 {metrics['val_top1']:.4g}" in caplog.text
    assert {"train_loss", "val_top1", "train_clips_per_s"} <= set(metrics)
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    assert (tmp_path / "metrics.csv").read_text().count("\n") == 3  # header + 2 epochs
    ckpt = load_checkpoint(tmp_path / "last.pt")
    assert ckpt["epoch"] == 2 and ckpt["step"] == trainer.step > 0
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "best.pt").exists()


def test_device_auto_is_resolved_and_recorded_in_the_run(gestures, tmp_path):
    import yaml

    expected = "cuda" if torch.cuda.is_available() else "cpu"
    trainer = Trainer(tiny_config(gestures, tmp_path, "--device=auto", "--epochs=1", "--max_steps=1"), progress=False)
    trainer.fit()
    assert next(trainer.model.parameters()).device.type == expected
    assert yaml.safe_load((tmp_path / "config.yaml").read_text())["device"] == expected
    assert load_checkpoint(tmp_path / "last.pt")["config"]["device"] == expected


TIMING = ("train_clips_per_s", "epoch_time_s")


def run_logs(run):
    """metrics.jsonl without the timing fields, and metrics.csv without its timing columns."""
    rows = [{k: v for k, v in json.loads(line).items() if k not in TIMING}
            for line in (run / "metrics.jsonl").read_text().splitlines()]
    with open(run / "metrics.csv", newline="") as f:
        table = [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]
    return rows, table


def test_resume_after_crash_reaches_same_state_as_an_uninterrupted_run(gestures, tmp_path):
    reference = Recorder()
    full = Trainer(tiny_config(gestures, tmp_path / "a"), callbacks=[reference], progress=False)
    full.fit()
    steps_per_epoch = full.steps_per_epoch
    first_of_epoch2 = steps_per_epoch + 1

    crashing = Recorder(crash_at_step=first_of_epoch2)  # dies during epoch 2, after epoch 1's checkpoint
    with pytest.raises(RuntimeError, match="simulated crash"):
        Trainer(tiny_config(gestures, tmp_path / "b"), callbacks=[crashing], progress=False).fit()
    after_epoch1 = load_checkpoint(tmp_path / "b" / "last.pt")
    assert after_epoch1["epoch"] == 1
    # last.pt holds the best score including the epoch it was written after (not the one before it).
    epoch1 = json.loads((tmp_path / "b" / "metrics.jsonl").read_text().splitlines()[0])
    assert after_epoch1["best_top1"] == epoch1["val_top1"]

    # An epoch logged but not checkpointed (a crash between the two) must not be logged twice after the resume.
    with open(tmp_path / "b" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({**epoch1, "epoch": 2}) + "\n")
    with open(tmp_path / "b" / "metrics.csv", newline="") as f:
        row = next(csv.DictReader(f))
    with open(tmp_path / "b" / "metrics.csv", "a", newline="") as f:
        csv.DictWriter(f, fieldnames=list(row)).writerow({**row, "epoch": "2"})

    resumed = Recorder()
    Trainer(tiny_config(gestures, tmp_path / "b"), callbacks=[resumed], progress=False).fit(resume=True)
    assert min(resumed.losses) == first_of_epoch2
    assert resumed.losses[first_of_epoch2] == pytest.approx(reference.losses[first_of_epoch2], rel=1e-5)
    assert crashing.losses[1] == pytest.approx(reference.losses[1], rel=1e-5)
    assert run_logs(tmp_path / "b") == run_logs(tmp_path / "a")
    for name in ("last.pt", "best.pt"):
        a, b = load_checkpoint(tmp_path / "a" / name), load_checkpoint(tmp_path / "b" / name)
        assert (a["epoch"], a["step"], a["best_top1"]) == (b["epoch"], b["step"], b["best_top1"]), name
        for key, value in a["model"].items():
            assert torch.allclose(value.float(), b["model"][key].float(), atol=1e-6), (name, key)


def test_run_folder_is_not_reused_by_accident(gestures, tmp_path):
    with pytest.raises(UserError, match="cannot resume: .*last.pt does not exist"):
        Trainer(tiny_config(gestures, tmp_path / "new", "--epochs=1"), progress=False).fit(resume=True)
    assert not (tmp_path / "new").exists()  # a resume that cannot start leaves no folder behind
    Trainer(tiny_config(gestures, tmp_path, "--epochs=1"), progress=False).fit()
    before = (tmp_path / "metrics.jsonl").read_text(), (tmp_path / "last.pt").read_bytes()
    with pytest.raises(UserError, match="already holds a training run: .*--resume.*--out_dir.*--overwrite"):
        Trainer(tiny_config(gestures, tmp_path, "--epochs=1"), progress=False).fit()
    assert ((tmp_path / "metrics.jsonl").read_text(), (tmp_path / "last.pt").read_bytes()) == before  # untouched
    Trainer(tiny_config(gestures, tmp_path, "--epochs=1"), progress=False).fit(overwrite=True)
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 1  # replaced, not appended


def test_a_run_that_trains_nothing_is_refused(gestures, tmp_path):
    # Every training video unreadable: no batch has two readable clips, so no optimizer step is ever made.
    root = tmp_path / "data"
    root.mkdir()
    for name in ("labels.csv", "train.csv", "val.csv"):
        (root / name).symlink_to(gestures / name)
    (root / "videos").mkdir()
    with pytest.raises(UserError, match="epoch 1 made no training step .*nothing was saved"):
        Trainer(tiny_config(root, tmp_path / "run"), progress=False).fit()
    assert not (tmp_path / "run" / "last.pt").exists()


def test_a_split_smaller_than_a_batch_trains_on_it_and_says_so(gestures, tmp_path, caplog):
    trainer = Trainer(tiny_config(gestures, tmp_path, "--data.batch_size=64", "--epochs=2", "--data.val_split="),
                      progress=False)
    assert "less than one batch (data.batch_size=64)" in caplog.text
    lrs = []
    trainer.optimizer.register_step_pre_hook(lambda optimizer, *_: lrs.append(optimizer.param_groups[0]["lr"]))
    metrics = trainer.fit()
    assert trainer.step == 2 and len(lrs) == 2  # one (smaller) batch per epoch
    assert metrics["lr"] == lrs[-1] > 0  # what is shown is what the last step used, not the next step's


def test_empty_validation_split_trains_without_validation_and_says_so(gestures, tmp_path, caplog):
    root = linked_copy(gestures, tmp_path / "data", val="")
    metrics = Trainer(tiny_config(root, tmp_path / "run", "--epochs=1"), progress=False).fit()
    assert "validation split 'val' is empty: training without validation" in caplog.text
    assert "val_top1" not in metrics and (tmp_path / "run" / "last.pt").exists()


def test_bad_annotation_lines_stop_training_with_one_user_error(gestures, tmp_path):
    lines = (gestures / "train.csv").read_text().splitlines()
    root = linked_copy(gestures, tmp_path / "data",
                       train="\n".join(lines[:2] + ["000001;wave_hello", "000002"] + lines[2:]) + "\n")
    with pytest.raises(UserError, match=r"train\.csv:3: unknown class name 'wave_hello'") as info:
        Trainer(tiny_config(root, tmp_path / "run"), progress=False)
    assert "\n" not in str(info.value)


def test_nan_loss_stops_clearly(gestures, tmp_path):
    trainer = Trainer(tiny_config(gestures, tmp_path, "--optim.lr=1e30", "--optim.clip_grad=0"), progress=False)
    with pytest.raises(NonFiniteLossError, match="loss is"):
        trainer.fit()


def test_corrupt_videos_are_skipped_and_counted(gestures, tmp_path):
    root = linked_copy(gestures, tmp_path / "data")
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
        # 15 training clips over 2 ranks is less than a batch of 8 per rank: each rank still trains on its share.
        f"cfg = load_config(None, {TINY!r} + ['--data.root={gestures}', '--out_dir={out}', '--epochs=1', "
        "'--max_steps=2', '--data.val_split=', '--data.batch_size=8'])\n"
        "t = Trainer(cfg, progress=False); t.fit()\n"
        "flat = torch.cat([p.detach().flatten() for p in t.model.parameters()])\n"
        f"torch.save(flat, '{tmp_path}/params_' + str(dist.rank()) + '.pt')\n"
        "assert dist.world_size() == 2 and t.step == min(2, len(t.train_loader)) >= 1\n"
        "from torch.utils.data import DistributedSampler\n"
        "assert isinstance(t.train_loader.sampler, DistributedSampler)\n"
        # Less than a batch per rank: nothing is dropped, the sampler pads the shares to equal size instead.
        "assert len(t.train_loader.sampler) == (len(t.train_set) + 1) // 2\n")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--standalone",
                           str(script)], stdin=subprocess.DEVNULL, env=env, capture_output=True, text=True, timeout=300)
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


def test_empty_training_split_is_a_user_error(gestures, tmp_path):
    root = linked_copy(gestures, tmp_path / "data", train="")
    with pytest.raises(UserError, match="the training split 'train' has no clips"):
        Trainer(tiny_config(root, tmp_path / "run"), progress=False)


def test_an_unlabelled_split_is_not_trained_or_validated_on(gestures, tmp_path, caplog):
    # The val split written the way Jester ships its test split: ids only.
    ids = [line.split(";")[0] for line in (gestures / "val.csv").read_text().splitlines()]
    root = linked_copy(gestures, tmp_path / "data", val="".join(f"{i}\n" for i in ids))
    with pytest.raises(UserError, match="the training split 'val' is unlabelled; train on a labelled split"):
        Trainer(tiny_config(root, tmp_path / "run", "--data.train_split=val"), progress=False)
    metrics = Trainer(tiny_config(root, tmp_path / "run", "--epochs=1"), progress=False).fit()
    assert "validation split 'val' is unlabelled: training without validation" in caplog.text
    assert "val_top1" not in metrics  # not a silent 0.0 against labels of -1


@pytest.mark.parametrize("key", ["flip_pairs", "reverse_pairs"])
def test_class_pairs_are_refused_for_recognition(gestures, tmp_path, key):
    cfg = tiny_config(gestures, tmp_path / "run", "--data.flip=true", f"--data.{key}=[[swipe_left, swipe_right]]")
    with pytest.raises(UserError, match=f"data.{key} .* is for detection datasets"):
        Trainer(cfg, progress=False)


@pytest.mark.parametrize("native", [True, False])
def test_bf16_on_a_cpu_without_bf16_instructions_is_flagged(gestures, tmp_path, caplog, monkeypatch, native):
    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: native)
    Trainer(tiny_config(gestures, tmp_path / "amp", "--amp=true"), progress=False)
    Trainer(tiny_config(gestures, tmp_path / "fp32"), progress=False)  # amp off: never flagged
    flagged = [r.message for r in caplog.records if "bf16 autocast is emulated" in r.message]
    assert len(flagged) == (0 if native else 1)
    if not native:
        assert flagged[0].startswith("amp=true: this CPU has no bf16 instructions") and "(--amp=false)" in flagged[0]
