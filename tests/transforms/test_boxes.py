"""Box-aware augmentation: boxes follow the content, one random draw for all frames."""
import numpy as np
import pytest

from streamact.transforms.boxes import augment_tubelet, expand, hflip, photometric_distort, resize, tubelet_crop


def _frames_with_box(n=3, h=60, w=80, box=(20, 10, 40, 30)):
    frames = np.zeros((n, h, w, 3), np.uint8)
    x1, y1, x2, y2 = box
    frames[:, y1:y2, x1:x2] = 200
    return frames, np.array([[box] * 2], np.float32)  # (M=1, K=2, 4)


def _content_inside(frames, boxes):
    x1, y1, x2, y2 = (int(round(v)) for v in boxes[0, 0])
    return frames[0, y1:y2, x1:x2].mean()


def test_hflip_moves_boxes_with_content():
    frames, boxes = _frames_with_box()
    f, b = hflip(frames, boxes)
    np.testing.assert_allclose(b[0, 0], [40, 10, 60, 30])
    assert _content_inside(f, b) == 200


def test_expand_offsets_boxes():
    frames, boxes = _frames_with_box()
    for seed in range(5):
        f, b = expand(frames, boxes, np.random.default_rng(seed), max_ratio=2.0, p=1.0)
        assert f.shape[1] >= 60 and f.shape[2] >= 80 and f.shape[1] <= 120
        assert _content_inside(f, b) == 200
        assert (f[0, 0, 0] == [123, 117, 104]).all() or (b[0, 0, :2] == [20, 10]).all()  # mean fill or no shift


def test_crop_keeps_content_under_boxes_for_all_frames():
    frames, boxes = _frames_with_box()
    for seed in range(10):
        f, b, keep = tubelet_crop(frames, boxes, np.random.default_rng(seed))
        assert f.shape[0] == 3 and len(b) == len(keep) == 1  # the only tube's centre is always kept
        assert (b >= 0).all() and (b[..., 2] <= f.shape[2]).all() and (b[..., 3] <= f.shape[1]).all()
        assert _content_inside(f, b) == pytest.approx(200, abs=1)
        np.testing.assert_array_equal(f[0], f[2])  # the same crop for every frame


def test_crop_of_a_sample_without_tubes_is_drawn_too():
    frames, _ = _frames_with_box()
    shapes = set()
    for seed in range(10):
        f, b, keep = tubelet_crop(frames, np.zeros((0, 2, 4), np.float32), np.random.default_rng(seed))
        assert len(b) == len(keep) == 0
        np.testing.assert_array_equal(f[0], f[2])
        shapes.add(f.shape[1:3])
    assert len(shapes) > 2  # not always the whole frame


def test_photometric_is_the_same_for_every_frame():
    frames = np.random.default_rng(0).integers(0, 255, (1, 8, 8, 3), dtype=np.uint8).repeat(4, axis=0)
    changed = False
    for seed in range(6):
        out = photometric_distort(frames, np.random.default_rng(seed))
        assert (out == out[:1]).all()
        changed |= not np.array_equal(out, frames)
    assert changed


def test_resize_scales_boxes():
    frames, boxes = _frames_with_box(h=60, w=80)
    f, b = resize(frames, boxes, 40)
    assert f.shape == (3, 40, 40, 3)
    np.testing.assert_allclose(b[0, 0], [10, 20 / 3, 20, 20])


def test_augment_without_flip_keeps_direction():
    frames, boxes = _frames_with_box()
    f, b, keep, flipped = augment_tubelet(frames, boxes, np.random.default_rng(3), flip=False)
    assert len(keep) == 1 and b.shape == (1, 2, 4) and not flipped


def test_resize_follows_torch_antialiased_bilinear():
    """The Pillow resize gives what PyTorch's antialiased interpolate gives, down and up, up to Pillow's rounding."""
    import torch
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    for (h, w), size in (((120, 160), 64), ((30, 40), 64)):
        frames = rng.integers(0, 256, (2, h, w, 3), dtype=np.uint8)
        got, _ = resize(frames, np.zeros((0, 1, 4), np.float32), size)
        expected = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float(), size=(size, size),
                                 mode="bilinear", align_corners=False, antialias=True).permute(0, 2, 3, 1).numpy()
        assert got.dtype == np.float32 and got.shape == (2, size, size, 3)
        np.testing.assert_allclose(got, expected, atol=1.0)  # Pillow: 8-bit fixed-point weights, rounded
