import numpy as np
import pytest
import torch

from streamact.pretrained import PretrainedCfg
from streamact.transforms.frame import preprocess_frame
from streamact.transforms.presets import build_transform


@pytest.mark.parametrize("height, width, size", [(71, 53, 48), (480, 640, 112), (60, 80, 112), (224, 224, 224)])
def test_preprocess_frame_matches_the_clip_test_pipeline(height, width, size):
    """Pillow's resize stands in for torchvision's: at most one grey level apart, on few pixels."""
    cfg = PretrainedCfg(input_size=(3, size, size), mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3))
    frame = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    expected = build_transform(train=False, input_size=size, mean=cfg.mean, std=cfg.std)(frame[None], None)
    expected = expected.transpose(0, 1).numpy()  # (3, 1, S, S) -> (1, 3, S, S)
    x = preprocess_frame(frame, cfg)
    assert x.shape == (1, 3, size, size) and x.dtype == np.float32
    grey_levels = np.abs(x - expected) * np.asarray(cfg.std, np.float32)[None, :, None, None] * 255
    assert grey_levels.max() < 1 + 1e-3
    assert (grey_levels > 0.5).mean() < 0.05


def test_preprocess_frame_exact_without_resize():
    """A frame already at the crop scale is only cropped and normalised: exact, channel by channel."""
    cfg = PretrainedCfg(input_size=(3, 112, 112), mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    frame = np.random.default_rng(1).integers(0, 256, (128, 150, 3), dtype=np.uint8)
    x = preprocess_frame(frame, cfg)
    top, left = (128 - 112) // 2, (150 - 112) // 2
    expected = (frame[top:top + 112, left:left + 112].astype(np.float32) / 255 - 0.5) / 0.5
    np.testing.assert_allclose(x[0], expected.transpose(2, 0, 1), atol=1e-6)
    torch.testing.assert_close(torch.from_numpy(x), build_transform(
        train=False, input_size=112, mean=cfg.mean, std=cfg.std)(frame[None], None).transpose(0, 1))


def test_preprocess_frame_rejects_non_rgb():
    cfg = PretrainedCfg(input_size=(3, 32, 32))
    with pytest.raises(ValueError, match="RGB uint8"):
        preprocess_frame(np.zeros((40, 40), np.uint8), cfg)
