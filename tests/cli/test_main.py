"""The command line's shared behaviour: one error style and exit codes for every subcommand, `--key value` and
`--flag=true|false` spellings, help texts with defaults and in the product's own words."""
import argparse
import json
import re
from pathlib import Path

import pytest

from streamact.cli import main as cli
from streamact.cli.main import EXIT_CODES, build_parser, main
from streamact.engine.config import apply_overrides, load_config


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield name, child
                for sub_name, grandchild in _subparsers(child):
                    yield f"{name} {sub_name}", grandchild


def _one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("argv, needle", [
    (["eval", "{tmp}/missing.pt"], "checkpoint not found: {tmp}/missing.pt; `streamact train` writes "
                                   "<out_dir>/last.pt and best.pt"),
    (["data", "check", "{tmp}/missing.csv"], "{tmp}/missing.csv: no such file or directory; give a dataset folder"),
    (["data", "stats", "{tmp}/no_dataset", "--out", "{tmp}/s.txt"], "{tmp}/no_dataset"),
    (["recognize", "{tmp}/missing.mp4"], "{tmp}/missing.mp4"),
    (["export", "{tmp}/missing.pt"], "checkpoint not found"),
    (["export", "nosuch_model"], "no registered model has that name"),
    (["train", "{tmp}/missing.yaml"], "config file not found"),
    (["models", "nosuch*"], "no registered model matches"),
])
def test_user_errors_are_one_line_exit_2(tmp_path, capsys, argv, needle):
    argv = [a.format(tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    assert needle.format(tmp=tmp_path) in _one_line_error(capsys.readouterr().err)


def test_debug_adds_the_traceback_anywhere_on_the_line(tmp_path, capsys):
    assert main(["data", "check", str(tmp_path / "missing.csv"), "--debug"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and err.rstrip().splitlines()[-1].startswith("error: ")


def _replace_command(monkeypatch, name, fn):
    """Make `streamact <name>` run `fn` instead."""
    real = cli.build_parser

    def parser():
        p = real()
        dict(_subparsers(p))[name].set_defaults(_main=fn)
        return p

    monkeypatch.setattr(cli, "build_parser", parser)


def test_internal_failure_is_exit_1_and_points_to_debug(monkeypatch, capsys):
    def broken(args):
        raise RuntimeError("something inside broke")

    _replace_command(monkeypatch, "models", broken)
    assert main(["models"]) == 1
    line = _one_line_error(capsys.readouterr().err)
    assert "RuntimeError: something inside broke" in line and "--debug" in line


def test_interrupt_is_exit_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    _replace_command(monkeypatch, "models", interrupted)
    assert main(["models"]) == 130
    assert "interrupted" in capsys.readouterr().err


def test_help_documents_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for code in EXIT_CODES:
        assert re.search(rf"^\s+{code}\s+\S", out, re.M), code
    assert "--debug" in out


def test_every_option_shows_its_default():
    for name, parser in _subparsers(build_parser()):
        formatter = parser._get_formatter()
        for action in parser._actions:
            if action.option_strings and action.default not in (None, False, argparse.SUPPRESS) \
                    and action.dest != "help":
                text = formatter._expand_help(action) if action.help else ""
                assert "default" in text, f"streamact {name} {action.option_strings[0]}: {text!r}"


def test_help_speaks_the_products_words():
    jargon = re.compile(r"seed 00\d|issue \d|the main job|part \d|recognis", re.I)
    for name, parser in [("streamact", build_parser()), *_subparsers(build_parser())]:
        text = parser.format_help()
        assert not jargon.search(text), f"streamact {name}: {jargon.search(text).group(0)!r}"


def test_overrides_take_both_spellings_and_bare_booleans():
    cfg = apply_overrides(load_config(), ["--epochs", "3", "--amp", "--optim.lr=0.02", "--data.root", "d",
                                          "--data.flip=false", "--seed", "-1"])
    assert (cfg.epochs, cfg.amp, cfg.optim.lr, cfg.data.root, cfg.data.flip) == (3, True, 0.02, "d", False)
    assert cfg.seed == -1  # a negative number is a value, not an option


def test_train_accepts_key_space_value_and_boolean_equals(tmp_path, monkeypatch, capsys):
    import streamact.engine.trainer as trainer_module

    seen = {}

    class Recorder:
        is_main = True

        def __init__(self, cfg, progress):
            seen["cfg"] = cfg

        def fit(self, resume, overwrite=False):
            seen["resume"] = resume
            return {}

    monkeypatch.setattr(trainer_module, "Trainer", Recorder)
    assert main(["train", "--epochs", "1", "--amp=true", f"--out_dir={tmp_path}", "--resume=false"]) == 0
    assert seen["cfg"].epochs == 1 and seen["cfg"].amp is True and seen["resume"] is False
    assert main(["train", "--amp=false", "--resume=true", "--data.input_size", "64"]) == 0
    assert seen["cfg"].amp is False and seen["resume"] is True and seen["cfg"].data.input_size == 64


def test_flags_take_true_or_false(capsys):
    assert main(["models", "tsm_mobilenetv2_100", "--format", "json", "--complexity=false"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert "params" not in row
    assert main(["models", "--complexity=maybe"]) == 2
    assert "--complexity is on or off" in _one_line_error(capsys.readouterr().err)


def test_data_synth_prints_a_short_summary(tmp_path, capsys):
    assert main(["data", "synth", "gestures", "--out", str(tmp_path / "g"), "--per-class", "2", "--size", "32"]) == 0
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1
    summary = json.loads(out)
    assert summary["num_videos"] == 2 * summary["num_classes"] and "records" not in summary


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the message on machines without CUDA")
@pytest.mark.parametrize("argv", [
    ["recognize", "synthetic:gestures?num=1&size=64", "--device", "cuda"],
    ["eval", "{tmp}/any.pt", "--device", "cuda"],
    ["demo", "--out", "{tmp}/demo", "--device", "cuda"],
    ["train", "--device", "cuda", "--out_dir={tmp}/run"],
    ["train", "{recipe}", "--device=cuda", "--out_dir={tmp}/run"],
])
def test_device_cuda_without_a_gpu_is_a_user_error(tmp_path, capsys, argv):
    recipe = Path(__file__).resolve().parents[2] / "configs" / "gestures_tsm_effl0_8f.yaml"
    assert main([a.format(tmp=tmp_path, recipe=recipe) for a in argv]) == 2
    assert "--device cuda: torch sees no CUDA GPU" in _one_line_error(capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_train_refuses_an_unknown_device(tmp_path, capsys):
    assert main(["train", "--device=gpu", f"--out_dir={tmp_path}/run"]) == 2
    assert _one_line_error(capsys.readouterr().err) == "error: --device gpu: unknown device; choose cpu, cuda, auto"


def test_device_is_for_the_torch_runtime(tmp_path):
    from streamact.inference.runtimes import load_runtime

    with pytest.raises(ValueError, match="needs the torch runtime"):
        load_runtime(tmp_path / "m.onnx", device="cuda")


def test_eval_warns_when_bf16_would_be_emulated(tmp_path, capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: False)
    assert main(["eval", str(tmp_path / "missing.pt"), "--amp"]) == 2
    warning, error = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert warning.startswith("warning: --amp: this CPU has no bf16 instructions") and error.startswith("error: ")
