"""StreamingEngine: subsampling, stride, smoothing, reset, odd frame formats, parity with offline forward."""
import numpy as np
import pytest
import torch

from streamact import create_model
from streamact.inference.streaming import StreamingEngine
from streamact.transforms.frame import preprocess_frame

LABELS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return create_model("tsm_mobilenetv2_100", num_classes=3, num_segments=4, causal=True, img_size=48,
                        label_names=LABELS).eval()


def frames(n, h=60, w=80, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def test_first_window_matches_offline_forward(model):
    clip_frames = frames(4)
    engine = StreamingEngine(model, smoothing="none")
    preds = [engine.push(f) for f in clip_frames]
    steps = [torch.from_numpy(preprocess_frame(f, model.pretrained_cfg)) for f in clip_frames]  # T x (1, 3, H, W)
    clip = torch.stack(steps, dim=2)  # (1, 3, T, H, W): the same frames as one offline clip
    with torch.no_grad():
        probs = model(clip).softmax(-1)[0].numpy()
    np.testing.assert_allclose(preds[-1].probs, probs, atol=1e-5)
    assert preds[-1].label == LABELS[int(probs.argmax())]
    assert [p.frame_index for p in preds] == [0, 1, 2, 3]
    assert [p.warm for p in preds] == [False, False, False, True]  # warm once the window (clip_len 4) is full
    assert preds[-1].to_json()["warm"] is True


def test_stride_and_frame_interval(model):
    engine = StreamingEngine(model, stride=3, frame_interval=2)
    out = [engine.push(f) for f in frames(13)]
    emitted = [p.frame_index for p in out if p is not None]
    # processed frames: 0,2,4,...,12 (7 frames); predictions on processed frames #0, #3, #6
    assert emitted == [0, 6, 12]
    assert engine.num_processed == 7


def test_source_frame_indices_through_dropped_frames(model):
    engine = StreamingEngine(model, frame_interval=2)
    # a realtime source dropped frames 1, 2, 6 and 8: the model steps on frames at least 2 source frames apart
    out = [engine.push(f, i) for f, i in zip(frames(6), [0, 3, 4, 5, 7, 9])]
    assert [p.frame_index for p in out if p is not None] == [0, 3, 5, 7, 9]


def test_reset_restarts_the_stream(model):
    engine = StreamingEngine(model, smoothing="ema")
    first = [engine.push(f) for f in frames(5)]
    engine.reset()
    again = [engine.push(f) for f in frames(5)]
    np.testing.assert_allclose(first[-1].probs, again[-1].probs, atol=1e-6)
    assert again[0].frame_index == 0 and not again[0].warm


def test_smoothing_window_averages_probabilities(model):
    raw = StreamingEngine(model, smoothing="none")
    smooth = StreamingEngine(model, smoothing="window", window=3)
    seq = frames(6, seed=3)
    raw_probs = [raw.push(f).probs for f in seq]
    smooth_probs = [smooth.push(f).probs for f in seq]
    np.testing.assert_allclose(smooth_probs[-1], np.mean(raw_probs[-3:], axis=0), atol=1e-7)


def test_odd_formats_and_size_changes(model):
    engine = StreamingEngine(model)
    rng = np.random.default_rng(1)
    odd = [rng.integers(0, 256, (33, 47), dtype=np.uint8),  # grayscale
           rng.integers(0, 256, (40, 40, 4), dtype=np.uint8),  # RGBA
           rng.integers(0, 256, (101, 57, 3), dtype=np.uint8),  # size changes mid-stream
           rng.integers(0, 256, (64, 64, 1), dtype=np.uint8)]
    preds = [engine.push(f) for f in odd]
    assert all(p is not None and p.probs.shape == (3,) and abs(p.probs.sum() - 1) < 1e-6 for p in preds)


def test_bgr_input_is_converted(model):
    f = frames(1)[0]
    rgb = StreamingEngine(model, smoothing="none").push(f)
    bgr = StreamingEngine(model, smoothing="none", input_format="bgr").push(np.ascontiguousarray(f[..., ::-1]))
    np.testing.assert_allclose(rgb.probs, bgr.probs, atol=1e-6)


def test_bad_arguments(model):
    with pytest.raises(ValueError, match="smoothing"):
        StreamingEngine(model, smoothing="median")
    with pytest.raises(TypeError, match="streaming form"):
        StreamingEngine(torch.nn.Linear(2, 2))
