"""FrameCache: the same frames as decoding, rebuilt when the video changes, bad videos still counted."""
import os

import numpy as np
import pytest
import torch

from streamact.data import frame_cache as frame_cache_module
from streamact.data.frame_cache import FrameCache
from streamact.data.loader import VideoDataset
from streamact.data.records import VideoRecord
from streamact.data.sampling import StreamWindowSampler
from streamact.io.errors import VideoError
from streamact.io.video import open_video
from streamact.io.writer import write_video
from streamact.transforms.functional import resize_short
from streamact.transforms.presets import build_transform, default_scale_size

INPUT_SIZE = 28  # -> training scale 32: the 48 x 64 test frames are resized on the way into the cache


def textured_video(path, n=40, seed=0):
    """Smooth random texture drifting over time, so every frame and every crop differs."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (12, 16, 3)).repeat(8, 0).repeat(8, 1)  # (96, 128, 3) blocky texture
    frames = [np.roll(base, i * 2, axis=1)[:48, :64].astype(np.uint8) for i in range(n)]
    return write_video(path, frames, fps=12)


@pytest.fixture
def cache(tmp_path):
    return FrameCache(tmp_path / "cache", short_side=default_scale_size(INPUT_SIZE))


def test_cached_frames_equal_decoded_frames_at_the_training_scale(tmp_path, cache):
    video = textured_video(tmp_path / "a.mp4")
    indices = [39, 0, 17, 17, 5]
    with open_video(video) as reader:
        expected = resize_short(reader.get_frames(indices), 32).numpy()
    cached = cache.open(video)
    assert cached.num_frames == 40 and expected.shape == (5, 32, 43, 3)
    np.testing.assert_array_equal(cached.get_frames(indices), expected)
    with pytest.raises(IndexError):
        cached.get_frames([40])


def test_dataset_gives_the_same_training_windows_with_and_without_the_cache(tmp_path, cache):
    records = [VideoRecord(textured_video(tmp_path / f"s{i}.mp4", seed=i), -1) for i in range(2)]
    labels = [[0] * 20 + [1] * 20, [0] * 10 + [2] * 30]
    transform = build_transform(train=True, input_size=INPUT_SIZE, mean=(0.5,) * 3, std=(0.25,) * 3)

    def samples(frame_cache):
        sampler = StreamWindowSampler(labels, clip_len=3, frame_interval=2, context=2)
        dataset = VideoDataset(records, sampler, transform, train=True, seed=3, frame_cache=frame_cache)
        out = []
        for epoch in (0, 1):
            dataset.set_epoch(epoch)
            out += [dataset[0], dataset[1]]
        return out

    decoded, cached = samples(None), samples(cache)
    assert len(list(cache.root.glob("*.npy"))) == 2
    for a, b in zip(decoded, cached):
        assert torch.equal(a[0], b[0]) and a[1:] == b[1:]
    assert len({tuple(s[3]) for s in decoded}) > 1  # the windows really vary


def test_a_fresh_entry_is_read_without_decoding(tmp_path, cache, monkeypatch):
    video = textured_video(tmp_path / "a.mp4")
    first = cache.open(video).get_frames(range(40))

    def no_decoding(path):
        raise AssertionError("decoded again although the entry is fresh")
    monkeypatch.setattr(frame_cache_module, "open_video", no_decoding)
    np.testing.assert_array_equal(FrameCache(cache.root, short_side=32).open(video).get_frames(range(40)), first)


def test_a_changed_video_is_decoded_again(tmp_path, cache):
    video = textured_video(tmp_path / "a.mp4", seed=0)
    old = cache.open(video).get_frames([3])
    stat = video.stat()
    textured_video(video, n=30, seed=1)  # same path, new content and length
    os.utime(video, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later modification time, whatever the clock
    with open_video(video) as reader:
        expected = resize_short(reader.get_frames([3]), 32).numpy()
    fresh = cache.open(video)
    assert fresh.num_frames == 30
    np.testing.assert_array_equal(fresh.get_frames([3]), expected)
    assert not np.array_equal(expected, old)
    assert len(list(cache.root.glob("*.npy"))) == 1  # the stale entry was replaced, not kept beside the new one


def test_another_scale_is_another_entry(tmp_path, cache):
    video = textured_video(tmp_path / "a.mp4")
    assert cache.open(video).get_frames([0]).shape == (1, 32, 43, 3)
    assert FrameCache(cache.root, short_side=48).open(video).get_frames([0]).shape == (1, 48, 64, 3)
    assert len(list(cache.root.glob("*.npy"))) == 2


def test_unreadable_videos_are_reported_and_their_samples_skipped(tmp_path, cache):
    good = textured_video(tmp_path / "good.mp4")
    cut = textured_video(tmp_path / "cut.mp4")
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    (tmp_path / "text.mp4").write_text("not a video\n" * 30)
    paths = [good, cut, tmp_path / "text.mp4", tmp_path / "missing.mp4", good]
    assert cache.build(paths, progress=False) == 3
    with pytest.raises(VideoError, match="cut.mp4"):
        cache.open(cut)
    assert sorted(p.name for p in cache.root.iterdir()) == sorted(  # nothing half-written left behind
        p.name for p in cache.root.glob("good-*"))
    sampler = StreamWindowSampler([[0] * 40] * 4, clip_len=2, frame_interval=1)
    transform = build_transform(train=False, input_size=INPUT_SIZE, mean=(0,) * 3, std=(1,) * 3)
    dataset = VideoDataset([VideoRecord(p, -1) for p in paths[:4]], sampler, transform, train=True,
                           frame_cache=cache)
    assert [dataset[i] is None for i in range(4)] == [False, True, True, True]
    assert dataset.num_bad == 3
