"""Stream windows: labelled by their last frame, never reaching into the future, class-balanced, warm-up safe."""
from collections import Counter

import numpy as np
import pytest

from streamact.data.sampling import StreamWindowSampler, stream_window_indices


def _stream():
    # background 0 dominates; gesture 1 is long, gesture 2 short and rare
    return [0] * 60 + [1] * 40 + [0] * 30 + [2] * 6 + [0] * 30 + [1] * 40 + [0] * 20


def test_window_ends_at_its_labelled_frame_and_looks_only_back():
    labels = _stream()
    sampler = StreamWindowSampler([labels], clip_len=4, frame_interval=2, context=3)
    for i in range(200):
        info = sampler(len(labels), train=True, rng=np.random.default_rng(i), video=0)
        assert len(info.indices) == info.clip_len == 7
        assert np.all(np.diff(info.indices) == 2)  # a fixed stride, ...
        assert info.label == labels[info.indices[-1]]  # ... labelled by the window's last frame, ...
        assert info.indices[0] >= 0  # ... with a full window behind it (warm streaming state)


def test_window_ends_are_class_balanced():
    labels = _stream()
    sampler = StreamWindowSampler([labels], clip_len=2, frame_interval=1, background_p=0.2)
    counts = Counter(sampler(len(labels), train=True, rng=np.random.default_rng(i), video=0).label
                     for i in range(3000))
    # Gesture 2 has 6 frames against 80 of gesture 1, yet both end as many windows; background gets its share.
    assert abs(counts[1] - counts[2]) < 0.1 * 3000
    assert abs(counts[0] / 3000 - 0.2) < 0.03


def test_stream_shorter_than_the_window_warms_up_from_frame_zero():
    labels = [0, 0, 1, 1, 1]
    sampler = StreamWindowSampler([labels], clip_len=4, frame_interval=2, context=9)
    info = sampler(len(labels), train=True, rng=np.random.default_rng(0), video=0)
    assert info.indices[0] == 0 and info.indices[-1] < len(labels) and len(info.indices) == 13
    assert stream_window_indices(3, 4, 2) == [0, 0, 1, 3]


def test_sampler_rejects_bad_settings():
    with pytest.raises(ValueError):
        StreamWindowSampler([[0, 1]], clip_len=2, frame_interval=1, background_p=1.5)
    with pytest.raises(ValueError):
        StreamWindowSampler([[0, 1]], clip_len=2, frame_interval=1)(2, train=True, rng=None, video=0)


def test_several_outputs_label_each_of_the_last_frames_with_a_full_window_behind_it():
    labels = [0] * 30 + [3] * 10 + [0] * 20 + [5] * 12 + [0] * 30
    sampler = StreamWindowSampler([labels], clip_len=4, frame_interval=2, context=3, outputs=5)
    assert sampler.length == 4 + 3 + 5 - 1
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(100):
        info = sampler(len(labels), train=True, rng=rng, video=0)
        assert info.indices == stream_window_indices(info.indices[-1], 11, 2)
        assert info.indices[0] >= 0 and info.indices[-1] - info.indices[0] == 20  # never the warm-up repeat
        assert info.label == [labels[i] for i in info.indices[-5:]]
        seen.add(tuple(info.label))
    assert any(len(set(lab)) > 1 for lab in seen)  # windows across a gesture's onset or end
    assert StreamWindowSampler([labels], clip_len=4, frame_interval=2, context=3)(
        len(labels), train=True, rng=rng, video=0).label in (0, 3, 5)  # one output: a plain class index
    with pytest.raises(ValueError, match="outputs"):
        StreamWindowSampler([labels], clip_len=4, frame_interval=2, outputs=0)
