"""Temporal samplers on hand-computed cases."""
import numpy as np
import pytest

from streamact.data.sampling import ClipSampler, dense_indices, multi_clip_indices, segment_indices


def rng(seed=0):
    return np.random.default_rng(seed)


def test_segment_test_takes_segment_centres():
    info = segment_indices(80, 8, train=False)
    assert info.indices == [5, 15, 25, 35, 45, 55, 65, 75]
    assert (info.num_clips, info.clip_len) == (1, 8)
    # Uneven length: segment k covers [k * 81 / 8, (k + 1) * 81 / 8).
    assert segment_indices(81, 8, train=False).indices == [5, 15, 25, 35, 45, 55, 65, 75]
    assert segment_indices(83, 4, train=False).indices == [10, 31, 51, 72]


def test_segment_train_takes_one_random_frame_per_segment():
    seen = set()
    for seed in range(50):
        indices = segment_indices(80, 8, train=True, rng=rng(seed)).indices
        assert [i // 10 for i in indices] == list(range(8))  # frame k lies in segment k
        seen.update(indices)
    assert len(seen) > 40  # positions actually vary
    again = [segment_indices(80, 8, train=True, rng=rng(3)).indices for _ in range(2)]
    assert again[0] == again[1]


@pytest.mark.parametrize("train", [True, False])
def test_segment_short_video_repeats_frames_in_order(train):
    indices = segment_indices(3, 8, train=train, rng=rng()).indices
    assert len(indices) == 8
    assert indices == sorted(indices) and set(indices) == {0, 1, 2}
    if not train:
        assert indices == [0, 0, 0, 1, 1, 2, 2, 2]


def test_segment_multi_clip_test_views_interleave():
    info = segment_indices(80, 4, train=False, num_clips=2)
    assert info.indices == [5, 25, 45, 65, 15, 35, 55, 75]
    assert (info.num_clips, info.clip_len) == (2, 4)


def test_segment_argument_errors():
    with pytest.raises(ValueError, match="rng"):
        segment_indices(80, 8, train=True)
    with pytest.raises(ValueError, match="num_clips"):
        segment_indices(80, 8, train=True, rng=rng(), num_clips=2)
    with pytest.raises(ValueError, match="num_frames"):
        segment_indices(0, 8, train=False)


def test_dense_test_is_the_centred_window():
    # window 8 * 4 = 32 frames, starts 0..68; centre start floor(69 / 2) = 34
    info = dense_indices(100, 8, 4, train=False)
    assert info.indices == [34, 38, 42, 46, 50, 54, 58, 62]
    assert info == multi_clip_indices(100, 8, 4, num_clips=1)


def test_dense_train_random_start_fixed_stride():
    starts = set()
    for seed in range(100):
        indices = np.array(dense_indices(100, 8, 4, train=True, rng=rng(seed)).indices)
        assert (np.diff(indices) == 4).all()
        assert 0 <= indices[0] <= 68 and indices[-1] < 100
        starts.add(indices[0])
    assert min(starts) < 10 and max(starts) > 58


def test_dense_jitter_stays_in_stride():
    for seed in range(100):
        info = dense_indices(100, 8, 4, train=True, rng=rng(seed), jitter=True)
        indices = np.array(info.indices)
        assert (np.diff(indices) >= 1).all() and (np.diff(indices) <= 7).all()
        assert indices.max() < 100
    draws = [dense_indices(100, 8, 4, train=True, rng=rng(seed), jitter=True).indices for seed in range(20)]
    gaps = {int(d) for indices in draws for d in np.diff(indices)}
    assert gaps == set(range(1, 8))  # every jitter combination occurs
    # Without jitter every index keeps the start's phase.
    indices = dense_indices(100, 8, 4, train=True, rng=rng(1)).indices
    assert len({i % 4 for i in indices}) == 1


@pytest.mark.parametrize("train", [True, False])
def test_dense_short_video_loop_pads(train):
    # 10 frames, window 8 * 2 = 16: start at 0 and wrap around
    indices = dense_indices(10, 8, 2, train=train, rng=rng()).indices
    assert indices == [0, 2, 4, 6, 8, 0, 2, 4]
    jittered = dense_indices(10, 8, 2, train=True, rng=rng(), jitter=True).indices
    assert all(0 <= i < 10 for i in jittered)


def test_multi_clip_evenly_spaced():
    # window 16, starts 0..84 (85 of them) cut in 3: centres floor(14.17), floor(42.5), floor(70.8)
    info = multi_clip_indices(100, 8, 2, num_clips=3)
    clips = np.array(info.indices).reshape(3, 8)
    assert clips[:, 0].tolist() == [14, 42, 70]
    assert (np.diff(clips, axis=1) == 2).all()
    assert (info.num_clips, info.clip_len) == (3, 8)
    short = multi_clip_indices(5, 4, 2, num_clips=2).indices
    assert short == [0, 2, 4, 1] * 2


def test_clip_sampler_respects_the_record_window():
    sampler = ClipSampler(mode="segment", clip_len=5)
    assert sampler(100, train=False, start=20, end=30).indices == [21, 23, 25, 27, 29]
    for seed in range(20):
        indices = ClipSampler(mode="dense", clip_len=4, frame_interval=3, jitter=True)(
            100, train=True, rng=rng(seed), start=40, end=60
        ).indices
        assert all(40 <= i < 60 for i in indices)
    # An end past the video is clipped to it; a window outside the video is an error.
    assert max(sampler(50, train=False, start=40, end=500).indices) < 50
    with pytest.raises(ValueError, match="empty sampling window"):
        sampler(50, train=False, start=60)


def test_clip_sampler_modes_and_views():
    dense = ClipSampler(mode="dense", clip_len=4, frame_interval=2, num_clips=3)
    test = dense(60, train=False)
    assert (test.num_clips, test.clip_len, len(test.indices)) == (3, 4, 12)
    train = dense(60, train=True, rng=rng())
    assert (train.num_clips, len(train.indices)) == (1, 4)  # training always draws one clip
    segment = ClipSampler(mode="segment", clip_len=4, num_clips=2)(80, train=False)
    assert segment.indices == segment_indices(80, 4, train=False, num_clips=2).indices
    with pytest.raises(ValueError, match="mode"):
        ClipSampler(mode="uniform")
    with pytest.raises(ValueError, match="frame_interval"):
        ClipSampler(mode="dense", frame_interval=0)
