"""Training on stream windows through the real trainer, then `streamact eval` of the checkpoint on the stream set."""
import json

import numpy as np
import pytest
import torch

from streamact.cli.main import main as cli_main
from streamact.data.datasets import load_split
from streamact.data.synthetic import generate_stream_set
from streamact.engine.config import ConfigError, load_config
from streamact.engine.trainer import Trainer, build_dataset
from streamact.evaluation.online import StreamScores, score_streams, tune_event_cfg
from streamact.inference.events import EventCfg

TINY = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--model.kwargs.causal=true",
        "--data.format=ipn", "--data.sampling=stream", "--data.input_size=48", "--data.clip_len=2",
        "--data.frame_interval=2", "--data.stream_windows=4", "--data.batch_size=4", "--data.num_workers=0",
        "--data.val_split=val", "--optim.lr=0.01", "--epochs=1"]


@pytest.fixture(scope="module")
def streams(tmp_path_factory):
    root = tmp_path_factory.mktemp("streams")
    generate_stream_set(root, num_streams=(2, 1, 1), num_gestures=3, seed=5, size=48, progress=False)
    return root


def test_train_on_stream_windows_then_eval_live(streams, tmp_path, capsys):
    cfg = load_config(None, TINY + [f"--data.root={streams}", f"--out_dir={tmp_path}"])
    trainer = Trainer(cfg, progress=False)
    # Each sample is the window the streaming engine sees: clip_len + the past the shifted blocks reach.
    clip, label, *_ = trainer.train_set[0]
    assert clip.shape[1] == 2 + trainer.model.stream_context
    assert len(trainer.train_set) == 2 * 4
    metrics = trainer.fit()
    assert np.isfinite(metrics["train_loss"]) and "val_top1" in metrics and trainer.step == 2

    assert cli_main(["eval", str(tmp_path / "last.pt"), str(streams), "--split", "test",
                     "--out", str(tmp_path / "eval")]) == 0
    m = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    (record,), _ = load_split(streams, "test")
    assert m["streams"] == 1 and m["frames"] == record.num_frames  # every frame scored: frame 0 has a step
    assert m["gestures"] == 3
    for key in ("frame_accuracy", "per_frame_map", "levenshtein_accuracy", "f1"):
        assert key in m
    assert "frame accuracy" in capsys.readouterr().out


def test_stream_sampling_needs_stream_annotations(tmp_path):
    cfg = load_config(None, TINY + ["--data.format=jester"])
    with pytest.raises(ConfigError, match="stream annotations"):
        build_dataset(cfg.data, [type("R", (), {"meta": {}})()], train=True, mean=(0.5,) * 3, std=(0.5,) * 3)


def _scores(probs_per_frame, labels):
    """A stream whose model steps are every frame; segments from the labels."""
    labels = np.asarray(labels)
    segments, start = [], None
    for t, c in enumerate([*labels, 0]):
        if start is not None and (c != labels[start]):
            segments.append({"label": ["bg", "a", "b"][labels[start]], "start": start, "end": t})
            start = None
        if start is None and c != 0 and t < len(labels):
            start = t
    return StreamScores("s", np.asarray(probs_per_frame, float), np.arange(len(labels)), labels, segments, 12.0)


def test_score_streams_on_perfect_and_lagging_predictions():
    labels = [0] * 6 + [1] * 8 + [0] * 6 + [2] * 8 + [0] * 6
    perfect = _scores(np.eye(3)[labels] * 0.9 + 0.1 / 3, labels)
    m = score_streams([perfect], ["bg", "a", "b"], EventCfg())
    assert m["frame_accuracy"] == 1.0 and m["per_frame_map"] == 1.0
    assert m["levenshtein_accuracy"] == 1.0 and m["f1"] == 1.0
    lagging = _scores(np.eye(3)[[0] * 4 + labels[:-4]] * 0.9 + 0.1 / 3, labels)
    assert score_streams([lagging], ["bg", "a", "b"], EventCfg())["frame_accuracy"] == pytest.approx(1 - 16 / 34)


def test_tuning_finds_settings_that_beat_bad_ones():
    labels = [0] * 6 + [1] * 8 + [0] * 6 + [2] * 8 + [0] * 6
    weak = np.eye(3)[labels] * 0.45 + 0.55 / 3  # gestures reach only p(background) ~ 0.18 -> g ~ 0.8; best 0.63
    stream = _scores(weak, labels)
    bad = EventCfg(on_threshold=0.95, off_threshold=0.9, late_threshold=0.9, early_margin=0.9)
    assert score_streams([stream], ["bg", "a", "b"], bad)["events"] == 0
    best, m = tune_event_cfg([stream], ["bg", "a", "b"], bad)
    assert m["levenshtein_accuracy"] == 1.0 and m["f1"] == 1.0
    assert best.on_threshold <= 0.7


def test_train_on_windows_labelled_at_several_frames(streams, tmp_path):
    cfg = load_config(None, TINY + [f"--data.root={streams}", f"--out_dir={tmp_path}", "--data.stream_outputs=3",
                                    "--data.val_split=", f"--data.frame_cache={tmp_path / 'cache'}"])
    trainer = Trainer(cfg, progress=False)
    clip, label, *_ = trainer.train_set[0]
    assert clip.shape[1] == 2 + trainer.model.stream_context + 2 and len(label) == 3
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2  # both training streams decoded once, up front
    batch = next(iter(trainer.train_loader))
    assert batch.labels.shape == (4, 3)
    trainer.model.eval()  # no dropout: the loss is the mean cross-entropy over every labelled frame
    loss, logits, _ = trainer.train_step(batch.clips, batch.labels, 0)
    assert logits.shape == (4, 15)
    steps = trainer.model.forward_head_steps(trainer.model.forward_features(batch.clips), 3)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(steps.flatten(0, 1), batch.labels.flatten()))
    trainer.model.train()
    metrics = trainer.fit()
    assert np.isfinite(metrics["train_loss"]) and trainer.step == 2


def test_several_outputs_only_with_the_plain_loss(streams, tmp_path):
    cfg = load_config(None, TINY + [f"--data.root={streams}", f"--out_dir={tmp_path}", "--data.stream_outputs=3",
                                    "--loss.name=metric"])
    with pytest.raises(ConfigError, match="stream_outputs"):
        Trainer(cfg, progress=False)
