"""The micro-motion probe (bench/micro_motion_probe.py): clips cut around true boxes keep the motion, every input
has the channels it declares, and pair accuracy counts the right clips."""
import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from streamact.data.datasets.detection import load_detection_annotations
from tests.detection_fixture import write_tiny_detection_set

sys.path.insert(0, str(Path(__file__).parents[2] / "bench"))
from _runs import ResultCache  # noqa: E402
from micro_motion_probe import (  # noqa: E402
    AMMA_KWARGS,
    CLIP_LEN,
    DETECTOR_LR,
    INPUTS,
    Probe,
    as_batch,
    crop_clips,
    pair_accuracy,
    report,
    train_probe,
)


def _centroid_x(frame):
    bright = frame.mean(-1) > 150
    return np.nonzero(bright)[1].mean()


def test_crops_follow_the_last_box_and_keep_the_motion(tmp_path):
    ann = load_detection_annotations(write_tiny_detection_set(tmp_path, num_videos=2, num_frames=12))
    crops, labels = crop_clips(ann, ["cls/v_00", "cls/v_01"], size=32, stride=3)
    # tubes cover frames 3..12 (10 frames): clip ends at tube rows 3, 6, 9 -> 3 clips per video
    assert crops.shape == (6, CLIP_LEN, 32, 32, 3) and crops.dtype == np.uint8
    assert labels.tolist() == [0, 0, 0, 1, 1, 1]
    for clip, label in zip(crops, labels):
        xs = [_centroid_x(f) for f in clip]
        assert abs(xs[-1] - 15.5) < 2  # the last frame's box is centred
        moved = xs[-1] - xs[0]  # 3 frames x 2 px, scaled by 32 / (1.15 * 16)
        assert (moved > 5) if label == 0 else (moved < -5)


def test_crops_only_come_from_motion_classes(tmp_path):
    ann = load_detection_annotations(write_tiny_detection_set(tmp_path, num_videos=2, num_frames=12))
    ann = dataclasses.replace(ann, motion_pairs=[])  # the moving squares are no longer a pair
    with pytest.raises(ValueError, match="no clip of 4 frames inside a tube of a motion class"):
        crop_clips(ann, ["cls/v_00", "cls/v_01"], size=32, stride=3)


@pytest.mark.parametrize("kind", [k for k in INPUTS if k not in AMMA_KWARGS])
def test_every_input_has_its_declared_channels(kind):
    clip = torch.rand(2, 3, CLIP_LEN, 32, 32)
    probe = Probe(kind, num_classes=4)
    assert probe.inputs(clip).shape == (2, INPUTS[kind][1], 32, 32)
    assert probe(clip).shape == (2, 4)


@pytest.mark.parametrize("kind", list(AMMA_KWARGS))
def test_the_detector_embedding_sees_earlier_frames_only_with_micro_motion(kind):
    torch.manual_seed(0)
    probe = Probe(kind, num_classes=4).eval()
    assert probe.detector.motion_mode == AMMA_KWARGS[kind]["motion"] and probe.lr == DETECTOR_LR
    if probe.detector.motion_entry == "input":  # the maps' filters start at zero; give them what training would
        with torch.no_grad():
            probe.detector.rgb_stages[0][0].weight[:, 3:].normal_()
    assert Probe(kind, num_classes=4, detector_lr=1e-3).lr == 1e-3
    clip = torch.rand(2, 3, CLIP_LEN, 64, 64)
    other = clip.clone()
    other[:, :, :-1] = torch.rand(2, 3, CLIP_LEN - 1, 64, 64)
    with torch.no_grad():
        logits, changed = probe(clip), probe(other)
    assert logits.shape == (2, 4)
    assert torch.allclose(logits, changed) == (kind == "amma_rgb")


def test_the_last_frame_probe_cannot_see_earlier_frames():
    clip = torch.rand(1, 3, CLIP_LEN, 16, 16)
    other = clip.clone()
    other[:, :, :-1] = torch.rand(1, 3, CLIP_LEN - 1, 16, 16)
    last, signed = Probe("last", 4), Probe("signed", 4)
    assert torch.equal(last.inputs(clip), last.inputs(other))
    assert not torch.equal(signed.inputs(clip), signed.inputs(other))
    # the signed differences are earlier frame minus last frame
    assert torch.allclose(signed.inputs(clip)[:, 3:6], clip[:, :, 0] - clip[:, :, -1])


def test_grey_and_pooled_signed_differences_each_drop_one_thing():
    clip = torch.rand(2, 3, CLIP_LEN, 16, 16)
    diff = clip[:, :, :-1] - clip[:, :, -1:]  # (B, 3, t-1, S, S)
    grey = Probe("signed_grey", 4).inputs(clip)[:, 3:]
    assert torch.allclose(grey, diff.mean(1), atol=1e-6)  # full size, averaged over RGB
    pooled = Probe("signed_pooled", 4).inputs(clip)[:, 3:]
    # the first earlier frame's red channel, as MicroMotion's pooling and upsampling would give it
    frames = F.max_pool2d(clip[:, 0, [0, -1]], 3, stride=2, padding=1)
    expected = F.interpolate((frames[:, :1] - frames[:, 1:]), size=(16, 16), mode="bilinear", align_corners=False)
    assert torch.allclose(pooled[:, :1], expected, atol=1e-6)
    assert not torch.allclose(pooled[:, :1], diff[:, 0, :1], atol=1e-2)  # the pooling loses detail
    pooled_grey = Probe("signed_pooled_grey", 4).inputs(clip)[:, 3:]
    assert torch.allclose(pooled_grey, pooled.unflatten(1, (CLIP_LEN - 1, 3)).mean(2), atol=1e-6)

def test_as_batch_scales_and_orders_axes():
    crops = np.full((2, CLIP_LEN, 8, 8, 3), 255, np.uint8)
    crops[:, 0, ..., 1] = 0
    batch = as_batch(crops)
    assert batch.shape == (2, 3, CLIP_LEN, 8, 8) and batch.max() == 1.0 and batch[:, 1, 0].max() == 0.0


def test_pair_accuracy_counts_only_the_pair_and_third_classes_as_wrong():
    labels = np.array([0, 0, 1, 1, 2, 3])
    preds = np.array([0, 1, 1, 2, 0, 0])
    assert pair_accuracy(preds, labels, (0, 1)) == 0.5  # 0 ok, 0->1 wrong, 1 ok, 1->2 wrong
    assert pair_accuracy(preds, labels, (2, 3)) == 0.0


def test_a_probe_is_scored_on_the_test_clips_and_on_its_own_train_clips():
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 256, (70, CLIP_LEN, 16, 16, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, 70)
    result = train_probe("last", (crops, labels), (crops[:5], labels[:5]), np.array([1, 0]), epochs=1, batch=32)
    assert len(result["test_predictions"]) == 5 and set(result["test_predictions"]) <= {0, 1}
    # fewer than FIT_CLIPS train clips: every one is scored, with its own label
    assert sorted(result["train_labels"]) == sorted(labels.tolist())
    assert len(result["train_predictions"]) == 70 and result["epochs"] == 1


def _moving_bars(n: int, rng: np.random.Generator) -> np.ndarray:
    """Clips (n, CLIP_LEN, 16, 16, 3) of a bright bar stepping 3 pixels down per frame over noise (a left-right
    flip keeps the direction)."""
    clips = rng.integers(0, 40, (n, CLIP_LEN, 16, 16, 3), dtype=np.uint8)
    for i, y in enumerate(rng.integers(0, 16 - 3 * CLIP_LEN, n)):
        for t in range(CLIP_LEN):
            clips[i, t, y + 3 * t:y + 3 * t + 2] = 255
    return clips


def test_time_reversal_teaches_the_other_class_from_clips_of_one():
    """Trained on bars moving down only (class 0), a probe that plays half its clips backwards as class 1 names
    bars moving up class 1; without reversal it has never seen class 1."""
    rng = np.random.default_rng(0)
    train = (_moving_bars(256, rng), np.zeros(256, int))
    up = _moving_bars(64, rng)[:, ::-1].copy()
    kwargs = dict(epochs=4, batch=32, mirror=np.array([0, 1]))
    reversed_ = train_probe("frames", train, (up, np.ones(64, int)), reversal=np.array([1, 0]), **kwargs)
    plain = train_probe("frames", train, (up, np.ones(64, int)), **kwargs)
    assert np.mean(reversed_["test_predictions"]) > 0.9
    assert np.mean(plain["test_predictions"]) < 0.1


def test_the_report_gives_train_accuracy_where_it_was_scored(tmp_path):
    cache = ResultCache(tmp_path / "results.json")
    args = argparse.Namespace(train="a", test="b", stride=3, size=64, detector_lr=2.5e-4, reverse=True)
    test_labels = np.array([0, 1, 2, 3])
    cache.put("last", {"test_predictions": [0, 0, 2, 3], "epochs": 6, "minutes": 1.0})
    table = report(cache, ["a", "b", "c", "d"], [(0, 1), (2, 3)], test_labels, {"train": 8, "test": 4}, args)
    assert "a / b, train" not in table and "| last frame only | 3 | 50.0 | 100.0 | 75.0 | 6 | 1.0 |" in table
    assert ("learning rate 0.00025; seed 0, flips swapping the wave pair, clips played backwards swapping both "
            "pairs") in table
    cache.put("mm_diff", {"test_predictions": [0, 1, 2, 3], "train_labels": [0, 1, 2, 3],
                          "train_predictions": [0, 1, 3, 3], "epochs": 6, "minutes": 2.0})
    table = report(cache, ["a", "b", "c", "d"], [(0, 1), (2, 3)], test_labels, {"train": 8, "test": 4}, args)
    assert "| a / b | c / d | all 4 classes | a / b, train | c / d, train |" in table
    assert "| last frame + MM_Diff | 6 | 100.0 | 100.0 | 100.0 | 100.0 | 50.0 | 6 | 2.0 |" in table
    assert "| last frame only | 3 | 50.0 | 100.0 | 75.0 |  |  | 6 | 1.0 |" in table
