"""The `streamact` command line end to end on a tiny synthetic set: data synth/check, train, eval, models."""
import json

import pytest

from streamact.cli.main import main

TINY = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.input_size=48",
        "--data.clip_len=4", "--data.batch_size=8", "--data.num_workers=0", "--epochs=1"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli") / "gestures"
    assert main(["data", "synth", "gestures", "--out", str(root), "--per-class", "2", "--size", "56"]) == 0
    return root


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("data", "train", "eval", "models", "demo"):
        assert cmd in out


def test_data_check_reports_unreadable(dataset, tmp_path, capsys):
    assert main(["data", "check", str(dataset / "train.csv")]) == 0
    first = (dataset / "train.csv").read_text().splitlines()[0].split(";")[0]
    video = dataset / "videos" / f"{first}.mp4"
    original = video.read_bytes()
    try:
        video.write_bytes(b"not a video at all")
        report = tmp_path / "report.json"
        assert main(["data", "check", str(dataset / "train.csv"), "--json", str(report)]) == 1
        data = json.loads(report.read_text())
        assert data["num_bad"] == 1 and data["bad"][0]["path"].endswith(f"{first}.mp4")
        assert "1 unreadable" in capsys.readouterr().out
    finally:
        video.write_bytes(original)


def test_train_then_eval(dataset, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", *TINY, f"--data.root={dataset}", f"--out_dir={run}", "--no-progress"]) == 0
    assert (run / "last.pt").exists() and (run / "metrics.csv").exists()
    out = tmp_path / "eval"
    assert main(["eval", str(run / "last.pt"), str(dataset), "--split", "val", "--out", str(out),
                 "--num-workers", "0"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"top1", "top5", "mean_class_accuracy", "per_class", "confusion_matrix"} <= set(metrics)
    assert metrics["num_samples"] == len((dataset / "val.csv").read_text().splitlines())
    assert (out / "confusion.png").stat().st_size > 1000
    printed = capsys.readouterr().out
    assert "swipe_left" in printed and "top-1" in printed
    # multi-view protocol
    assert main(["eval", str(run / "last.pt"), "--split", "val", "--num-clips", "2", "--out", str(out / "mv"),
                 "--num-workers", "0"]) == 0
    assert json.loads((out / "mv" / "metrics.json").read_text())["num_clips"] == 2
    # an empty split is a clear error, not a traceback
    assert main(["eval", str(run / "last.pt"), "--split", "test", "--out", str(out / "empty")]) == 2
    assert "no videos" in capsys.readouterr().err


def test_unknown_override_is_an_error(dataset, tmp_path, capsys):
    assert main(["train", f"--data.root={dataset}", "--optim.lrr=0.1", f"--out_dir={tmp_path}"]) == 2
    assert "optim.lrr" in capsys.readouterr().err


def test_unknown_flag_for_other_commands():
    with pytest.raises(SystemExit):
        main(["models", "--bogus=1"])


def test_models_complexity_json(capsys):
    assert main(["models", "tsm_mobilenetv2_100", "--complexity", "--format", "json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert set(row) >= {"name", "params", "macs_per_clip", "macs_per_frame", "input_shape"}
    assert row["macs_per_clip"] == pytest.approx(8 * row["macs_per_frame"], rel=1e-6)
