"""Detection through the one trainer: a tiny AMMA run, checkpoint, frame-mAP validation, `streamact eval`, resume."""
import json
import math

import pytest
import torch
from detection_fixture import write_tiny_detection_set

from streamact.cli.main import main as cli_main
from streamact.engine.build import load_trained_model
from streamact.engine.config import ConfigError, load_config
from streamact.engine.tasks import find_annotation_file
from streamact.engine.trainer import Trainer


def _cfg(root, out, **extra):
    overrides = [f"--data.root={root}", f"--out_dir={out}", "--data.num_clips=2", "--data.clip_len=2",
                 "--data.input_size=32", "--data.batch_size=2", "--data.num_workers=0", "--epochs=1",
                 "--max_steps=2", "--model.name=amma_resnet18", "--model.pretrained=false",
                 *(f"--{k}={v}" for k, v in extra.items())]
    return load_config("configs/detection_amma_effl0.yaml", overrides)


@pytest.mark.slow  # ~50 s: two short training runs, validation and `streamact eval` end to end
def test_detection_training_eval_and_resume(tmp_path, capsys):
    torch.manual_seed(0)
    root, out = tmp_path / "data", tmp_path / "run"
    write_tiny_detection_set(root)
    trainer = Trainer(_cfg(root, out), progress=False)
    metrics = trainer.fit()
    assert math.isfinite(metrics["train_loss"]) and metrics["train_center"] > 0
    assert 0 <= metrics["val_frame_map"] <= 1 and metrics["val_videos"] == 2 and "train_top1" not in metrics
    assert (out / "last.pt").is_file() and (out / "best.pt").is_file()  # best.pt chosen by val_frame_map
    model, cfg = load_trained_model(out / "last.pt")
    assert model.num_clips == 2 and model.clip_len == 2 and model.pretrained_cfg.label_names == ("move_right",
                                                                                                 "move_left")
    # One more epoch from last.pt: the trainer resumes detection runs like any other.
    resumed = Trainer(_cfg(root, out, epochs=2, max_steps=4), progress=False)
    resumed.fit(resume=True)
    assert resumed.epoch == 2 and resumed.step == 4

    assert cli_main(["eval", str(out / "last.pt"), str(root), "--out", str(tmp_path / "eval")]) == 0
    printed = capsys.readouterr().out
    assert "frame-mAP@0.5" in printed and "move_left" in printed
    assert "direction move_right/move_left: " in printed and "balanced accuracy (95% over videos" in printed
    summary = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= summary["frame_map@0.5"] <= 1 and set(summary["per_class"]) == {"move_right", "move_left"}
    # frames 3..16 of one video
    assert summary["direction"]["move_right/move_left"]["classes"]["move_left"]["boxes"] == 14
    assert (tmp_path / "eval" / "pr_frame.png").is_file() and list((tmp_path / "eval" / "frames").glob("*.png"))


def test_detection_dataset_folder_errors(tmp_path):
    with pytest.raises(ConfigError, match="no \\*-GT.pkl"):
        find_annotation_file(tmp_path)
    (tmp_path / "a-GT.pkl").write_bytes(b"")
    (tmp_path / "b-GT.pkl").write_bytes(b"")
    with pytest.raises(ConfigError, match="several"):
        find_annotation_file(tmp_path)


@pytest.mark.parametrize("key", ["flip_pairs", "reverse_pairs"])
def test_class_pairs_must_name_classes_of_the_dataset(tmp_path, key):
    root = tmp_path / "data"
    write_tiny_detection_set(root)
    cfg = _cfg(root, tmp_path / "run", **{"data.flip": "true", f"data.{key}": "[[move_right, jump]]"})
    with pytest.raises(ConfigError, match=f"data.{key}: .*'jump'.*not a pair of class names.*move_right, move_left"):
        Trainer(cfg, progress=False).fit()
