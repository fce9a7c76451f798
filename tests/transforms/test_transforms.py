"""Clip transforms: geometry on odd / non-square frames, one random draw per clip, presets."""
import numpy as np
import pytest
import torch

from streamact.io.frames import to_rgb
from streamact.transforms import functional as F
from streamact.transforms.presets import build_transform
from streamact.transforms.video import Compose, MultiScaleCrop, RandomHorizontalFlip, RandomResizedCrop

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def coordinate_clip(t=3, h=37, w=51):
    """uint8 (T, H, W, 3): channel 0 = row, channel 1 = column, channel 2 = frame index."""
    rows, cols = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    frame = np.stack([rows, cols, np.zeros_like(rows)], axis=-1).astype(np.uint8)
    clip = np.repeat(frame[None], t, axis=0)
    clip[..., 2] = np.arange(t)[:, None, None]
    return clip


def test_resize_short_keeps_aspect_on_odd_non_square_frames():
    clip = coordinate_clip(2, 33, 47)
    out = F.resize_short(clip, 20)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.uint8
    assert out.shape == (2, 20, 28, 3)  # 47 * 20 / 33 = 28.5 -> 28
    assert F.resize_short(coordinate_clip(1, 47, 33), 20).shape == (1, 28, 20, 3)
    # Flat regions stay flat: no value shift from resizing.
    flat = np.full((2, 33, 47, 3), 77, np.uint8)
    assert (F.resize_short(flat, 20) == 77).all()
    # Any leading shape works: a single frame (H, W, C).
    assert F.resize_short(clip[0], 11).shape == (11, 16, 3)


def test_center_crop_takes_the_middle():
    clip = coordinate_clip(2, 37, 51)
    out = F.center_crop(clip, 16)
    assert out.shape == (2, 16, 16, 3)
    assert out[0, 0, 0, 0].item() == (37 - 16) // 2 and out[0, 0, 0, 1].item() == (51 - 16) // 2
    assert F.center_crop(clip, (10, 20)).shape == (2, 10, 20, 3)
    with pytest.raises(ValueError, match="outside"):
        F.center_crop(clip, 40)


def test_hflip_and_numpy_views():
    clip = coordinate_clip()
    flipped = F.hflip(clip)
    assert torch.equal(flipped, torch.from_numpy(clip[:, :, ::-1].copy()))
    # A numpy view with negative strides is accepted.
    assert torch.equal(F.to_tensor(clip[:, :, ::-1]), F.to_tensor(flipped))


def test_multi_scale_crop_params_follow_tsn():
    height, width, size = 128, 171, 112
    allowed = {112 if abs(int(128 * s) - 112) < 3 else int(128 * s) for s in (1, 0.875, 0.75, 0.66)}
    positions, shapes = set(), set()
    rng = np.random.default_rng(0)
    for _ in range(500):
        top, left, crop_h, crop_w = F.multi_scale_crop_params(height, width, size, rng=rng)
        assert crop_h in allowed and crop_w in allowed
        assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width
        positions.add((top, left, crop_h, crop_w))
        shapes.add((crop_h, crop_w))
    assert (128, 84) not in shapes and (84, 128) not in shapes  # scales more than max_distort apart never pair
    assert (128, 112) in shapes  # adjacent scales do (aspect jitter)
    assert len(positions) > 30


def test_random_resized_crop_params_inside_frame():
    rng = np.random.default_rng(0)
    for height, width in [(37, 51), (51, 37), (10, 200)]:
        for _ in range(200):
            top, left, crop_h, crop_w = F.random_resized_crop_params(height, width, rng=rng)
            assert crop_h >= 1 and crop_w >= 1
            assert 0 <= top and top + crop_h <= height and 0 <= left and left + crop_w <= width


def test_to_tensor_and_normalize():
    clip = coordinate_clip(3, 5, 7)
    x = F.to_tensor(clip)
    assert x.shape == (3, 3, 5, 7) and x.dtype == torch.float32  # (C, T, H, W)
    assert x[2, 1, 0, 0].item() == pytest.approx(1 / 255)  # channel 2 of frame 1
    assert x[0, 0, 4, 0].item() == pytest.approx(4 / 255)  # row 4
    y = F.normalize(x, (0.5, 0.25, 0.0), (0.5, 0.5, 2.0))
    assert torch.allclose(y[0], (x[0] - 0.5) / 0.5) and torch.allclose(y[2], x[2] / 2.0)


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("shape", [(4, 37, 51), (4, 51, 37), (2, 113, 113), (1, 9, 300)])
def test_presets_give_model_input_for_any_frame_shape(train, shape):
    t, h, w = shape
    clip = np.random.default_rng(0).integers(0, 256, (t, h, w, 3), dtype=np.uint8)
    transform = build_transform(train=train, input_size=32, mean=IMAGENET_MEAN, std=IMAGENET_STD, flip=True)
    out = transform(clip, np.random.default_rng(1))
    assert out.shape == (3, t, 32, 32) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_test_preset_is_resize_then_centre_crop():
    # 48x64 frame with a centred 16x16 white square on black: after resize to 36 (32 * 256 // 224) the square
    # is 12x12 and stays centred in the 32x32 crop.
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[16:32, 24:40] = 255
    transform = build_transform(train=False, input_size=32, mean=(0, 0, 0), std=(1, 1, 1))
    out = transform(np.stack([frame] * 2))
    assert out.shape == (3, 2, 32, 32)
    assert out[:, :, 12:20, 12:20].min() > 0.95  # centre is white
    assert out[:, :, :8].max() < 0.05 and out[:, :, :, :8].max() < 0.05  # borders black
    assert torch.equal(out, transform(np.stack([frame] * 2)))  # deterministic


def test_train_preset_uses_one_draw_for_all_frames_and_is_seeded():
    frame = np.random.default_rng(0).integers(0, 256, (40, 60, 3), dtype=np.uint8)
    clip = np.stack([frame] * 5)
    transform = build_transform(train=True, input_size=24, mean=IMAGENET_MEAN, std=IMAGENET_STD, flip=True)
    outs = [transform(clip, np.random.default_rng(seed)) for seed in range(8)]
    for out in outs:
        assert all(torch.equal(out[:, 0], out[:, t]) for t in range(5))  # same crop / flip on every frame
    assert len({o.numpy().tobytes() for o in outs}) > 1  # but different draws per seed
    assert torch.equal(outs[3], transform(clip, np.random.default_rng(3)))


def test_flip_is_off_unless_asked():
    # Left half dark, right half bright: a flip would put the bright half on the left.
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:, 24:] = 255
    clip = np.stack([frame] * 2)
    no_flip = build_transform(train=True, input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
    with_flip = build_transform(train=True, input_size=16, mean=(0, 0, 0), std=(1, 1, 1), flip=True)

    def flipped(transform, seed):
        out = transform(clip, np.random.default_rng(seed))
        return out[..., :4].mean() > out[..., -4:].mean()

    assert not any(flipped(no_flip, seed) for seed in range(30))
    assert any(flipped(with_flip, seed) for seed in range(30))


def test_callable_classes_compose():
    clip = coordinate_clip(2, 37, 51)
    rng = np.random.default_rng(0)
    out = Compose([RandomResizedCrop(20), RandomHorizontalFlip(p=1.0)])(clip, rng)
    assert out.shape == (2, 20, 20, 3)
    assert MultiScaleCrop(24)(clip, np.random.default_rng(0)).shape == (2, 24, 24, 3)


def test_grayscale_and_rgba_frames_through_the_pipeline():
    gray = np.full((2, 21, 35), 128, np.uint8)
    rgba = np.zeros((2, 21, 35, 4), np.uint8)
    rgba[..., :3], rgba[..., 3] = 64, 255
    transform = build_transform(train=False, input_size=16, mean=(0, 0, 0), std=(1, 1, 1))
    for frames, value in [(gray, 128), (rgba, 64)]:
        clip = np.stack([to_rgb(f) for f in frames])
        out = transform(clip)
        assert out.shape == (3, 2, 16, 16)
        assert torch.allclose(out, torch.full_like(out, value / 255), atol=1e-6)


def test_scale_size_smaller_than_input_is_rejected():
    with pytest.raises(ValueError, match="scale_size"):
        build_transform(train=False, input_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD, scale_size=200)
