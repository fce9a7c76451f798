"""Tubelet training samples: AMMA's sampling rule and background windows, frames read, targets at the right place,
bad frames skipped."""
import numpy as np
import torch
from detection_fixture import write_tiny_detection_set

from streamact.data.datasets.detection import DetectionAnnotations, load_detection_annotations
from streamact.data.tubelets import TubeletDataset, clip_frames, collate_tubelets, training_samples, tube_boxes


def test_clip_frames():
    np.testing.assert_array_equal(clip_frames(12, 2, 4), [5, 6, 7, 8, 9, 10, 11, 12])
    np.testing.assert_array_equal(clip_frames(6, 2, 4), [1, 1, 1, 2, 3, 4, 5, 6])  # padded with frame 1


def test_training_samples_rule():
    ann = _two_tubes()
    ends = [e for _, e in training_samples(ann, ["v"], num_clips=2, clip_len=4)]
    # key frames (end - 4, end): inside a tube, never straddling the start or end of either tube
    assert ends == [9, 10, 11, 12, 13, 14, 19, 20, 25, 26, 27, 28, 29, 30]
    tube_a = ann.gttubes["v"][0][0]
    assert tube_boxes(tube_a, np.array([5, 9])).shape == (2, 4) and tube_boxes(tube_a, np.array([4, 9])) is None


def _two_tubes() -> DetectionAnnotations:
    tube_a = np.array([[f, 0, 0, 5, 5] for f in range(5, 21)], np.float32)  # frames 5..20
    tube_b = np.array([[f, 0, 0, 5, 5] for f in range(15, 31)], np.float32)  # frames 15..30
    return DetectionAnnotations(root=None, labels=["a", "b"], nframes={"v": 40}, resolution={"v": (10, 10)},
                                gttubes={"v": {0: [tube_a], 1: [tube_b]}}, train_videos=[["v"]], test_videos=[[]])


def test_background_windows():
    ann = _two_tubes()
    samples = training_samples(ann, ["v"], num_clips=2, clip_len=4, background=0.25, seed=3)
    ends = sorted(e for _, e in samples)
    # every window with a complete tubelet, also those where the other tube starts or ends (15: b starts at 15)
    positives = set(range(9, 31))
    background = set(ends) - positives
    assert positives <= set(ends) and len(ends) == len(set(ends))
    assert len(background) == round(22 * 0.25 / 0.75) and background <= set(range(5, 9)) | set(range(31, 41))
    assert samples == training_samples(ann, ["v"], num_clips=2, clip_len=4, background=0.25, seed=3)
    # more background wanted than there is: all 14 windows without a complete tubelet
    assert len(training_samples(ann, ["v"], num_clips=2, clip_len=4, background=0.6)) == 22 + 14
    # the targets of a window are its complete tubelets: at 15 tube b has only begun
    ds = TubeletDataset(ann, samples, num_clips=2, clip_len=4, input_size=32, mean=(0.5,) * 3, std=(0.25,) * 3,
                        train=False)
    assert [label for label, _ in ds.objects("v", 15)] == [0]
    assert ds.objects("v", 35) == []




def test_dataset_item_targets(tmp_path):
    pkl = write_tiny_detection_set(tmp_path)
    ann = load_detection_annotations(pkl)
    samples = training_samples(ann, ann.videos("train"), num_clips=2, clip_len=2)
    ds = TubeletDataset(ann, samples, num_clips=2, clip_len=2, input_size=32, mean=(0.5,) * 3, std=(0.25,) * 3,
                        train=False)
    clip, targets = ds[0]
    assert clip.shape == (3, 4, 32, 32)
    video, end = samples[0]
    (label, boxes), = ds.objects(video, end)
    # key-frame box in source pixels -> model input 32x32 (from 64x48) -> grid 4x4 (stride 8)
    x1, y1, x2, y2 = boxes[-1] * np.array([32 / 64, 32 / 48, 32 / 64, 32 / 48]) / 8
    cx, cy = int(np.floor((x1 + x2) / 2 + 0.5)), int(np.floor((y1 + y2) / 2 + 0.5))
    assert targets["heatmap"][label, cy, cx] == 1.0 and targets["heatmap"][1 - label].max() == 0
    assert targets["mask"].sum() == 1
    batch = collate_tubelets([ds[0], None, ds[1]])
    assert batch.clips.shape == (2, 3, 4, 32, 32) and batch.num_bad == 1 and batch.targets["heatmap"].shape[0] == 2


def test_missing_frame_is_skipped_and_counted(tmp_path):
    pkl = write_tiny_detection_set(tmp_path)
    ann = load_detection_annotations(pkl)
    samples = training_samples(ann, ann.videos("train"), num_clips=2, clip_len=2)
    video, end = samples[0]
    ann.frame_path(video, end).unlink()
    ds = TubeletDataset(ann, samples, num_clips=2, clip_len=2, input_size=32, mean=(0.5,) * 3, std=(0.25,) * 3,
                        train=True)
    assert ds[0] is None and ds.num_bad == 1
    assert ds[len(ds) - 1] is not None


def test_flip_swaps_mirror_image_classes(tmp_path):
    """With flip_pairs a flipped sample trains the other class of its pair; unflipped samples keep theirs."""
    ann = load_detection_annotations(write_tiny_detection_set(tmp_path))  # classes move_right, move_left
    samples = training_samples(ann, ann.videos("train"), num_clips=2, clip_len=2)
    kwargs = dict(num_clips=2, clip_len=2, input_size=32, mean=(0.5,) * 3, std=(0.25,) * 3, train=True)
    unflipped = TubeletDataset(ann, samples, flip=False, **kwargs)  # the same draws up to the flip
    swapped = TubeletDataset(ann, samples, flip=True, flip_pairs=[(0, 1)], **kwargs)
    label = unflipped.objects(*samples[0])[0][0]
    seen = set()
    for epoch in range(8):
        unflipped.set_epoch(epoch)
        swapped.set_epoch(epoch)
        (clip, plain), (clip_b, b) = unflipped[0], swapped[0]
        if plain["mask"].sum() == 0:
            continue  # the crop left the actor out
        flipped = not torch.equal(clip, clip_b)
        if flipped:
            assert torch.equal(clip.flip(-1), clip_b)
            assert b["heatmap"][label].max() == 0 and b["heatmap"][1 - label].max() == 1
        else:
            np.testing.assert_array_equal(plain["heatmap"], b["heatmap"])
        seen.add(flipped)
    assert seen == {True, False}


def _motion_and_label(clip: torch.Tensor, targets: dict) -> tuple[float, int, tuple[int, int], tuple[int, int]] | None:
    """The bright square's horizontal travel over the clip's last two frames (both inside the tube when the sample
    has a target), the target's class, the target's centre cell and the square's cell in the last frame; None when
    the square does not stand out in both frames (an augmentation brightened the rest)."""
    light = clip.mean(0)[-2:]  # (2, S, S)
    masks = [(f > (f.max() + f.min()) / 2).numpy() for f in light]
    if any(m.mean() > 0.1 for m in masks):
        return None
    (_, before_x), (ys, xs) = [np.nonzero(m) for m in masks]
    (label,), (cy,), (cx,) = np.nonzero(targets["heatmap"] == 1)
    return float(xs.mean() - before_x.mean()), int(label), (int(cy), int(cx)), (int(ys.mean() // 8),
                                                                               int(xs.mean() // 8))


def test_time_reversal_plays_pair_samples_backwards_as_the_other_class(tmp_path):
    """Played backwards a square moving right moves left: with reverse_pairs [(move_right, still)] half of its
    samples come reversed, as the pair's other class, with the box of the reversed clip's last frame; move_left,
    in no pair, is never reversed."""
    ann = load_detection_annotations(write_tiny_detection_set(tmp_path, num_frames=20))
    ann = DetectionAnnotations(**{**ann.__dict__, "labels": [*ann.labels, "still"]})
    samples = training_samples(ann, ann.videos("train"), num_clips=2, clip_len=3)
    ds = TubeletDataset(ann, samples, num_clips=2, clip_len=3, input_size=64, mean=(0.5,) * 3, std=(0.25,) * 3,
                        train=True, reverse_pairs=[(0, 2)])
    seen, checked = {0: set(), 1: set()}, 0
    for index in range(len(samples)):
        true_label = ds.objects(*samples[index])[0][0]
        for epoch in range(8):
            ds.set_epoch(epoch)
            clip, targets = ds[index]
            if targets["mask"].sum() != 1:
                continue  # the crop left the square out
            found = _motion_and_label(clip, targets)
            if found is None:
                continue
            travel, label, centre, square = found
            checked += 1
            assert (travel > 0) == (label == 0), (travel, label)  # the label follows the motion shown
            assert abs(centre[0] - square[0]) <= 1 and abs(centre[1] - square[1]) <= 1
            seen[true_label].add(label)
    assert seen == {0: {0, 2}, 1: {1}} and checked >= 100
