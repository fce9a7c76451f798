"""The `streamact` command line end to end on a tiny synthetic set: data synth/check, train, eval, models."""
import json
import re

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
    # the same folder again: replaced with --overwrite, not appended to
    assert main(["train", *TINY, f"--data.root={dataset}", f"--out_dir={run}", "--no-progress", "--overwrite"]) == 0
    assert len((run / "metrics.csv").read_text().splitlines()) == 2  # header + the one epoch
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


def test_eval_takes_a_registered_model_with_action_weights(dataset, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["eval", "tsm_efficientnet_lite0_gestures", str(dataset), "--split", "val", "--num-workers", "0"]) == 0
    metrics = json.loads((tmp_path / "runs/eval/tsm_efficientnet_lite0_gestures_val/metrics.json").read_text())
    num_val = len((dataset / "val.csv").read_text().splitlines())
    assert metrics["num_samples"] == num_val and metrics["skipped_samples"] == 0 and 0 <= metrics["top1"] <= 1
    assert main(["eval", "tsm_efficientnet_lite0_gestures"]) == 2
    assert "give the dataset folder to evaluate it on" in capsys.readouterr().err
    assert main(["eval", "tsm_efficientnet_lite0", str(dataset)]) == 2  # no action weights: refused as elsewhere
    assert "has no action-trained classifier" in capsys.readouterr().err


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


def test_models_show_their_weights(capsys):
    assert main(["models", "--format", "json"]) == 0
    weights = {row["name"]: row["weights"] for row in json.loads(capsys.readouterr().out)}
    assert weights["tsm_efficientnet_lite0_gestures"] == "action"
    assert weights["vtn_efficientnet_lite0"] == "imagenet" and weights["ligar_x3d_mobilenetv3"] == "none"
    assert main(["models", "tsm_efficientnet_lite0*"]) == 0
    table = capsys.readouterr().out
    assert re.search(r"tsm_efficientnet_lite0\s+ImageNet backbone only, classifier untrained", table)
    assert re.search(r"tsm_efficientnet_lite0_gestures\s+action-trained, bundled", table)
    weights_column = {line.index("ImageNet") if "ImageNet" in line else line.index("action-trained")
                      for line in table.splitlines()[2:]}
    assert len(weights_column) == 1, table  # one column, however long the names


@pytest.mark.parametrize("argv", [
    ["recognize", "synthetic:gestures?num=1&size=64", "--model", "{model}", "--no-progress"],
    ["demo", "--out", "{tmp}/demo", "--num-gestures", "1", "--size", "64", "--model", "{model}", "--no-progress"],
    ["export", "{model}", "--out", "{tmp}/m.onnx"],
])
@pytest.mark.parametrize("model", ["tsm_efficientnet_lite0", "vtn_efficientnet_lite0"])
def test_untrained_classifiers_are_refused(tmp_path, capsys, argv, model):
    assert main([a.format(tmp=tmp_path, model=model) for a in argv]) == 2
    err = capsys.readouterr().err
    assert f"{model} has no action-trained classifier" in err and "--allow-untrained" in err
    assert len(err.strip().splitlines()) == 1, err  # refused at once: no progress lines before the error
    assert list(tmp_path.iterdir()) == []  # nothing written: no export, no demo stream


def test_allow_untrained_runs_it(tmp_path, capsys):
    out = tmp_path / "p.jsonl"
    assert main(["recognize", "synthetic:gestures?num=1&size=64", "--model", "tsm_mobilenetv2_100",
                 "--allow-untrained", "--max-frames", "2", "--out-jsonl", str(out), "--no-progress"]) == 0
    assert len(out.read_text().splitlines()) == 2
