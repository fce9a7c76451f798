"""VideoDataset / build_loader: decoding, sampling, bad samples skipped and counted, determinism."""
import numpy as np
import pytest
import torch
from _fixtures import write_truncated_video

from streamact.data.check import check_dataset
from streamact.data.loader import Batch, VideoDataset, build_loader, collate_skip_bad, set_epoch
from streamact.data.records import VideoRecord
from streamact.data.sampling import ClipSampler
from streamact.io.writer import write_video
from streamact.transforms.presets import build_transform

NUM_FRAMES = 16
# Identity normalisation, so clip values are gray level / 255.
TEST_TRANSFORM = build_transform(train=False, input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
TRAIN_TRANSFORM = build_transform(train=True, input_size=16, mean=(0.5,) * 3, std=(0.25,) * 3)


def level(i):
    return 12 * i + 20


def gray_video(path, n=NUM_FRAMES, offset=0):
    """Frame i is a flat gray of level(i) with a bright corner, so crops differ between draws."""
    frames = []
    for i in range(n):
        frame = np.full((24, 32, 3), level(i) + offset, np.uint8)
        frame[:4, :4] = 255
        frames.append(frame)
    return write_video(path, frames, fps=8)


@pytest.fixture
def videos(tmp_path):
    """Four good videos (labels 0..3) and four broken ones (label 9)."""
    good = [VideoRecord(gray_video(tmp_path / f"good{i}.mp4"), i) for i in range(4)]
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "text.mp4").write_text("not a video\n" * 30)
    cut = gray_video(tmp_path / "cut.mp4")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    bad = [VideoRecord(tmp_path / name, 9) for name in ("empty.mp4", "text.mp4", "cut.mp4", "missing.mp4")]
    return good, bad


def centre_levels(clip):
    """Mean gray level (0-255) of the centre 4x4 of each frame of a (C, T, H, W) clip."""
    return clip[0, :, 6:10, 6:10].mean(dim=(1, 2)).numpy() * 255


def test_sample_is_decoded_sampled_and_transformed(videos):
    good, _ = videos
    dataset = VideoDataset(good, ClipSampler(mode="segment", clip_len=4), TEST_TRANSFORM, train=False)
    clip, label, index, frames, num_frames = dataset[2]
    assert clip.shape == (3, 4, 16, 16) and clip.dtype == torch.float32
    assert (label, index, frames, num_frames) == (2, 2, [2, 6, 10, 14], 16)
    # Segment centres of 16 frames in 4 segments: 2, 6, 10, 14.
    np.testing.assert_allclose(centre_levels(clip), [level(i) for i in (2, 6, 10, 14)], atol=3)


def test_multi_view_sample_shape(videos):
    good, _ = videos
    sampler = ClipSampler(mode="dense", clip_len=4, frame_interval=1, num_clips=3)
    clip, *_ = VideoDataset(good, sampler, TEST_TRANSFORM, train=False)[0]
    assert clip.shape == (3, 3, 4, 16, 16)  # (num_clips, C, T, H, W)
    # starts floor((k + 0.5) * 13 / 3) = 2, 6, 10 with 13 valid starts
    for view, start in enumerate((2, 6, 10)):
        np.testing.assert_allclose(centre_levels(clip[view]), [level(start + t) for t in range(4)], atol=3)


def test_record_window_is_respected(tmp_path):
    record = VideoRecord(gray_video(tmp_path / "v.mp4"), 0, start=8, end=12)
    dataset = VideoDataset([record], ClipSampler(mode="dense", clip_len=4), TEST_TRANSFORM, train=False)
    clip, *_ = dataset[0]
    np.testing.assert_allclose(centre_levels(clip), [level(i) for i in range(8, 12)], atol=3)


def test_bad_samples_return_none_and_are_counted(videos, tmp_path):
    good, bad = videos
    outside = VideoRecord(good[0].path, 0, start=100)  # annotation window past the end of the video
    dataset = VideoDataset(good + bad + [outside], ClipSampler(clip_len=4), TEST_TRANSFORM, train=False)
    results = [dataset[i] for i in range(len(dataset))]
    assert [r is None for r in results] == [False] * 4 + [True] * 5
    assert dataset.num_bad == 5
    assert dataset.bad_paths == [str(r.path) for r in bad] + [str(good[0].path)]


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_epoch_over_corrupt_entries_finishes_and_counts(videos, num_workers):
    good, bad = videos
    records = [good[0], bad[0], good[1], bad[1], bad[2], good[2], bad[3], good[3]]
    dataset = VideoDataset(records, ClipSampler(clip_len=4), TRAIN_TRANSFORM, train=True, seed=1)
    loader = build_loader(dataset, batch_size=3, shuffle=True, num_workers=num_workers, seed=1)
    labels, num_bad = [], 0
    for batch in loader:
        num_bad += batch.num_bad
        if len(batch.labels):
            assert batch.clips.shape == (len(batch.labels), 3, 4, 16, 16)
            labels += batch.labels.tolist()
            # which video each sample is, the frames it decoded, and the video's length (ACS needs all three)
            assert [records[i].label for i in batch.index] == batch.labels.tolist()
            assert batch.frames.shape == (len(batch.labels), 4)
            assert ((batch.frames >= 0) & (batch.frames < batch.num_frames[:, None])).all()
    assert num_bad == 4
    assert sorted(labels) == [0, 1, 2, 3]
    # In order, batches of 2 include two made only of bad samples: they come out empty, not as errors.
    ordered = VideoDataset(good[:2] + bad + good[2:], ClipSampler(clip_len=4), TEST_TRANSFORM, train=False)
    batches = list(build_loader(ordered, batch_size=2, shuffle=False, num_workers=num_workers))
    assert [(len(b.labels), b.num_bad) for b in batches] == [(2, 0), (0, 2), (0, 2), (2, 0)]


def test_samples_are_deterministic_per_seed_and_epoch(videos):
    good, _ = videos

    def make(seed):
        sampler = ClipSampler(mode="dense", clip_len=4, frame_interval=2, jitter=True)
        return VideoDataset(good, sampler, TRAIN_TRANSFORM, train=True, seed=seed)

    a, b = make(0), make(0)
    assert torch.equal(a[1][0], b[1][0])
    draws = set()
    for epoch in range(6):
        a.set_epoch(epoch)
        draws.add(a[1][0].numpy().tobytes())
    assert len(draws) > 1  # epochs draw different clips / crops
    a.set_epoch(3)
    b.set_epoch(3)
    assert torch.equal(a[2][0], b[2][0])
    assert not torch.equal(make(1)[1][0], make(0)[1][0])


def test_loader_batches_identical_across_worker_counts(videos):
    good, _ = videos
    batches = []
    for num_workers in (0, 2):
        dataset = VideoDataset(good, ClipSampler(clip_len=4), TRAIN_TRANSFORM, train=True, seed=5)
        loader = build_loader(dataset, batch_size=2, shuffle=True, num_workers=num_workers, seed=5)
        set_epoch(loader, 2)
        batches.append([(batch.clips, batch.labels) for batch in loader])
    for (clips_a, labels_a), (clips_b, labels_b) in zip(*batches):
        assert torch.equal(clips_a, clips_b) and torch.equal(labels_a, labels_b)


def test_shuffle_order_depends_only_on_seed_and_epoch(videos):
    good, _ = videos
    records = good * 5
    dataset = VideoDataset(records, ClipSampler(clip_len=2), TEST_TRANSFORM, train=False)
    loader = build_loader(dataset, batch_size=4, shuffle=True, seed=3)

    def order(epoch):
        set_epoch(loader, epoch)
        return list(loader.sampler)

    assert order(1) == order(1)
    assert order(1) != order(2)
    assert sorted(order(1)) == list(range(len(records)))
    unshuffled = build_loader(dataset, batch_size=4, shuffle=False)
    assert list(unshuffled.sampler) == list(range(len(records)))


def test_collate_skip_bad():
    clip = torch.zeros(3, 2, 4, 4)
    batch = collate_skip_bad([(clip, 1, 4, [0, 2], 9), None, (clip + 1, 0, 7, [3, 5], 6)])
    assert isinstance(batch, Batch)
    assert batch.clips.shape == (2, 3, 2, 4, 4) and batch.labels.tolist() == [1, 0] and batch.num_bad == 1
    assert batch.index.tolist() == [4, 7] and batch.frames.tolist() == [[0, 2], [3, 5]]
    assert batch.num_frames.tolist() == [9, 6]
    empty = collate_skip_bad([None, None])
    assert len(empty.clips) == 0 and len(empty.labels) == 0 and empty.labels.dtype == torch.long
    assert empty.num_bad == 2 and empty.frames.shape == (0, 0)


def test_empty_dataset_is_a_clear_error():
    with pytest.raises(ValueError, match="empty dataset"):
        VideoDataset([], ClipSampler(), TEST_TRANSFORM, train=True)


def test_distributed_loader_needs_a_process_group(videos):
    good, _ = videos
    dataset = VideoDataset(good, ClipSampler(clip_len=2), TEST_TRANSFORM, train=False)
    with pytest.raises(RuntimeError, match="init_process_group"):
        build_loader(dataset, batch_size=2, shuffle=False, distributed=True)


def test_dataset_decodes_the_displayed_picture(tagged_video):
    path, stored = tagged_video("phone.mp4", 90)
    dataset = VideoDataset([VideoRecord(path, 0)], ClipSampler(mode="dense", clip_len=2), lambda f, rng: f,
                           train=False)
    frames = dataset[0][0]
    assert frames.shape == (2, 176, 144, 3)
    assert np.abs(frames.astype(int) - np.rot90(stored)).mean() < 4


def test_check_and_training_make_the_same_decision_about_a_truncated_file(tmp_path):
    # Index at the front, end cut off: the first frames decode, so sampling alone would use it in some epochs.
    path = write_truncated_video(tmp_path / "cut.mp4", num_frames=40, height=32, width=32, keep=2 / 3)
    records = [VideoRecord(path, 0)]
    report = check_dataset(records, progress=False)
    assert report["num_bad"] == 1 and "truncated" in report["bad"][0]["reason"]
    dataset = VideoDataset(records, ClipSampler(mode="dense", clip_len=2), lambda f, rng: f, train=True)
    outcomes = []
    for epoch in range(8):
        dataset.set_epoch(epoch)
        outcomes.append(dataset[0] is None)
    assert all(outcomes) and dataset.num_bad == 8
