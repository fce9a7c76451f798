"""The bundled stream model: shipped small, loads offline, carries its event settings, and beats the trimmed-clip
model on continuous synthetic streams (a cheap check; docs/RESULTS.md has the full held-out measurement)."""
import numpy as np
import pytest
import torch

from streamact import create_model
from streamact.data.synthetic import GESTURE_CLASSES, iter_stream_frames
from streamact.evaluation.online import StreamScores, score_streams
from streamact.inference.events import EventCfg
from streamact.inference.streaming import StreamingEngine
from streamact.models._pretrained import WEIGHTS_DIR

NAME, OLD = "tsm_efficientnet_lite0_stream_gestures", "tsm_efficientnet_lite0_gestures"


def test_weights_are_shipped_small_and_carry_tuned_event_settings():
    weights = WEIGHTS_DIR / f"{NAME}.safetensors"
    assert weights.is_file() and weights.stat().st_size <= 20 * 2**20
    model = create_model(NAME, pretrained=True)
    cfg = model.pretrained_cfg
    assert cfg.label_names == tuple(GESTURE_CLASSES) and (cfg.clip_len, cfg.frame_interval) == (4, 2)
    assert not model.non_causal_layers()
    assert cfg.events != EventCfg()  # tuned on the validation streams, not the defaults
    old = create_model(OLD, pretrained=True)
    # Same network and per-frame cost: only the weights and the averaged window differ.
    assert [p.shape for p in model.parameters()] == [p.shape for p in old.parameters()]
    assert not torch.equal(model.head.fc.weight, old.head.fc.weight)


def _scores(name, seeds):
    engine = StreamingEngine(create_model(name, pretrained=True), smoothing="none")
    out = []
    for seed in seeds:
        engine.reset()
        probs, frames, labels = [], [], []
        for frame, label in iter_stream_frames(num_gestures=4, seed=seed, size=112):
            if (p := engine.push(frame)) is not None:
                probs.append(p.probs)
                frames.append(p.frame_index)
            labels.append(label)
        out.append(StreamScores(str(seed), np.asarray(probs), np.asarray(frames), np.asarray(labels), [], 12.0))
    return out


@pytest.mark.slow
def test_beats_the_trimmed_clip_model_on_streams():
    seeds = (424242, 424243)  # not among the training streams' seeds (1_000_000 .. 1_000_059)
    new = score_streams(_scores(NAME, seeds), GESTURE_CLASSES, EventCfg())
    old = score_streams(_scores(OLD, seeds), GESTURE_CLASSES, EventCfg())
    assert new["frame_accuracy"] > old["frame_accuracy"] + 0.1
    assert new["per_frame_map"] > old["per_frame_map"]
