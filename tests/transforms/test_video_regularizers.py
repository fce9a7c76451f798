import numpy as np
import pytest
import torch
from PIL import Image

from streamact.data.records import VideoRecord
from streamact.transforms import regularizers as R
from streamact.transforms.presets import build_transform


def test_cross_norm_hand_computed():
    # One channel-last "clip" of 2 pixels: values 10 and 30 in every channel -> mean 20, std 10 (population).
    clip = torch.tensor([[[[10, 10, 10], [30, 30, 30]]]], dtype=torch.uint8)  # (1, 1, 2, 3)
    out = R.cross_norm(clip, mean=[100, 50, 0], std=[5, 40, 20])
    assert out.dtype == torch.uint8 and out.shape == clip.shape
    # x' = std * (x - 20) / 10 + mean, clipped to [0, 255]: channel 2 goes to -20 -> 0.
    assert out[0, 0].tolist() == [[95, 10, 0], [105, 90, 20]]
    as_float = R.cross_norm(clip.float(), mean=[100, 50, 0], std=[5, 40, 20])
    assert as_float.dtype == torch.float32 and as_float[0, 0, 1].tolist() == pytest.approx([105, 90, 20])
    # A channel with std <= 1e-3 (constant) leaves the clip unchanged.
    flat = clip.clone()
    flat[..., 1] = 7
    assert torch.equal(R.cross_norm(flat, mean=[0, 0, 0], std=[1, 1, 1]), flat)


def test_cross_norm_transform_draws_from_the_list(tmp_path):
    stats = np.array([[[100, 110, 120], [10, 20, 30]], [[50, 60, 70], [5, 5, 5]]], np.float32)
    path = R.save_channel_stats(stats, tmp_path / "stats.txt")
    assert path.read_text().splitlines()[0] == "100.0000,110.0000,120.0000 10.0000,20.0000,30.0000"
    transform = R.CrossNorm(path, p=1.0)
    clip = np.random.default_rng(0).integers(0, 256, (4, 8, 8, 3), dtype=np.uint8)
    out = transform(clip, np.random.default_rng(3)).float().reshape(-1, 3)
    # The output carries one of the listed statistics (up to uint8 rounding).
    got = np.stack([out.mean(0).numpy(), out.std(0, unbiased=False).numpy()])
    assert min(np.abs(got - s).max() for s in stats) < 0.6
    assert torch.equal(R.CrossNorm(stats, p=0.0)(clip, np.random.default_rng(0)), torch.from_numpy(clip))
    (tmp_path / "bad.txt").write_text("1,2 3,4,5\n")
    with pytest.raises(ValueError, match="bad.txt:1"):
        R.load_channel_stats(tmp_path / "bad.txt")
    with pytest.raises(ValueError, match="2, 3"):
        R.CrossNorm(np.zeros((2, 3)))


def test_collect_channel_stats_from_frame_folders(tmp_path):
    records = []
    for i, (low, high) in enumerate([(0, 100), (50, 250)]):
        folder = tmp_path / f"video{i}"
        folder.mkdir()
        for t in range(6):
            # Left half `low`, right half `high` in channel 0; channel 1 constant t; channel 2 = 9.
            frame = np.zeros((4, 4, 3), np.uint8)
            frame[:, :2, 0], frame[:, 2:, 0], frame[..., 1], frame[..., 2] = low, high, t, 9
            Image.fromarray(frame).save(folder / f"{t:05d}.png")
        records.append(VideoRecord(folder, 0))
    records.append(VideoRecord(tmp_path / "missing", 0))  # unreadable: skipped
    stats = R.collect_channel_stats(records, frames_per_clip=6, path=tmp_path / "s.txt")
    assert stats.shape == (2, 2, 3)
    # Channel 1 takes values 0..5 once each: mean 2.5, population std sqrt(35/12).
    assert stats[0, 0] == pytest.approx([50, 2.5, 9]) and stats[0, 1] == pytest.approx([50, np.sqrt(35 / 12), 0])
    assert stats[1, 0, 0] == pytest.approx(150) and stats[1, 1, 0] == pytest.approx(100)
    assert R.load_channel_stats(tmp_path / "s.txt") == pytest.approx(stats, abs=1e-4)
    assert R.collect_channel_stats(records[:2], num=1, frames_per_clip=2).shape == (1, 2, 3)


def test_background_mixup(tmp_path):
    clip = torch.full((3, 4, 6, 3), 200, dtype=torch.uint8)
    image = torch.full((4, 6, 3), 100, dtype=torch.uint8)
    assert R.mix_background(clip, image, 0.25).unique().tolist() == [175]  # 0.75 * 200 + 0.25 * 100
    with pytest.raises(ValueError, match="match"):
        R.mix_background(clip, image[:2], 0.5)
    # Background images from a folder of PNGs (any size), blended into every frame with weight <= 0.5.
    for i, value in enumerate((0, 40)):
        Image.fromarray(np.full((20, 30, 3), value, np.uint8)).save(tmp_path / f"bg{i}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    images = R.load_background_images(tmp_path)
    assert len(images) == 2 and images[0].shape == (20, 30, 3)
    mixup = R.BackgroundMixUp(images, alpha=0.2, p=1.0)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = mixup(clip, rng)
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert len(out.unique()) == 1  # uniform image: every pixel of every frame mixed with the same weight
        assert 100 <= out.unique().item() <= 200  # weight in [0, 0.5] towards 0 or 40
    assert torch.equal(R.BackgroundMixUp(images, p=0.0)(clip, rng), clip)
    with pytest.raises(ValueError, match="no background"):
        R.load_background_images(tmp_path / "empty_dir_that_does_not_exist")


def test_background_mixup_weight_distribution():
    clip = torch.zeros((1, 8, 8, 3), dtype=torch.float32)
    mixup = R.BackgroundMixUp([np.full((8, 8, 3), 255, np.uint8)], alpha=0.2, p=1.0)
    rng = np.random.default_rng(0)
    weights = np.array([mixup(clip, rng).mean().item() / 255 for _ in range(400)])
    assert weights.max() <= 0.5 and weights.min() >= 0
    # Beta(0.2, 0.2) folded: mostly faint (median well below 0.25), never above 0.5.
    assert np.median(weights) < 0.15


def test_multi_view_augment_temporal_crops():
    frames = np.zeros((12, 8, 8, 3), np.uint8)
    frames[:] = np.arange(12, dtype=np.uint8)[:, None, None, None] * 10  # frame t has value 10 t
    base = build_transform(train=True, input_size=8, mean=[0, 0, 0], std=[1 / 255] * 3, scale_size=8)
    views = R.MultiViewAugment(base, clip_len=4, num_views=3)
    out = views(frames, np.random.default_rng(0))
    assert out.shape == (3, 3, 4, 8, 8)  # (V, C, T, H, W)
    starts = []
    for view in out:
        values = view[0, :, 0, 0].round().tolist()  # per-frame value of channel 0 = 10 * (start + t)
        start = int(values[0]) // 10
        assert values == [10 * (start + t) for t in range(4)]  # consecutive frames, in order
        starts.append(start)
    assert len(set(starts)) > 1  # views see different time segments
    # Same rng, same views (reproducible in any worker).
    assert torch.equal(out, views(frames, np.random.default_rng(0)))
    with pytest.raises(ValueError, match="temporal crop"):
        R.MultiViewAugment(base, clip_len=13)(frames, np.random.default_rng(0))
