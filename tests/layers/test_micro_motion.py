"""Micro-motion: distances over channels (never over pixels), shapes, variants."""
import pytest
import torch

from streamact.layers.micro_motion import MicroMotion, micro_motion_distance


def test_distance_is_over_channels_per_pixel():
    # 2 frames, 2 channels, 1x2 pixels: frame 0 = 0; last frame = (3, 4) at pixel 0 and (0, 1) at pixel 1.
    feats = torch.zeros(1, 2, 2, 1, 2)
    feats[0, 1, :, 0, 0] = torch.tensor([3.0, 4.0])
    feats[0, 1, :, 0, 1] = torch.tensor([0.0, 1.0])
    d = micro_motion_distance(feats, eps=0.0)
    assert d.shape == (1, 1, 1, 2)
    torch.testing.assert_close(d[0, 0, 0], torch.tensor([5.0, 1.0]))  # sqrt(9+16), sqrt(0+1)
    # nn.PairwiseDistance on (B, C, HW) reduces over the pixels in current PyTorch: one value per channel.
    wrong = torch.nn.PairwiseDistance(p=2, eps=0.0)(feats[:, 1].flatten(2), feats[:, 0].flatten(2))
    assert wrong.shape == (1, 2) and not torch.allclose(wrong, d.flatten(1))


def test_distance_against_every_earlier_frame():
    feats = torch.arange(4.0).reshape(1, 4, 1, 1, 1).expand(1, 4, 3, 1, 1)  # frame i has value i in 3 channels
    d = micro_motion_distance(feats, eps=0.0)[0, :, 0, 0]
    torch.testing.assert_close(d, torch.tensor([3.0, 2.0, 1.0]) * 3 ** 0.5)


@pytest.mark.parametrize("mode, maps", [("convdiff", 3), ("diff", 3), ("signed", 9)])
def test_micro_motion_shapes_and_static_clip(mode, maps):
    torch.manual_seed(0)
    mm = MicroMotion(mode)
    clip = torch.randn(2, 3, 4, 32, 48)
    out = mm(clip)
    assert out.shape == (2, maps, 32, 48) and mm.out_channels(4) == maps
    static = clip[:, :, :1].expand(-1, -1, 4, -1, -1)
    assert mm(static).abs().max() < 1e-4  # no motion, (almost) no signal: only the eps term remains
    assert (mm.embed is None) == (mode != "convdiff")


def test_diff_mode_is_pooled_rgb_distance():
    clip = torch.zeros(1, 3, 2, 4, 4)
    clip[0, :, 1] = 2.0  # the last frame is brighter by 2 in every channel
    out = MicroMotion("diff")(clip)
    torch.testing.assert_close(out, torch.full((1, 1, 4, 4), 2.0 * 3 ** 0.5), atol=1e-4, rtol=0)


def test_signed_mode_keeps_the_direction_colour_and_detail():
    clip = torch.zeros(1, 3, 2, 4, 4)
    clip[0, 0, 1] = 2.0  # the last frame is redder by 2: earlier - last = -2 in the red map only
    expected = torch.zeros(1, 3, 4, 4)
    expected[0, 0] = -2.0
    torch.testing.assert_close(MicroMotion("signed")(clip), expected)
    backwards = clip.flip(2)
    torch.testing.assert_close(MicroMotion("signed")(backwards), -expected)
    torch.testing.assert_close(MicroMotion("diff")(backwards), MicroMotion("diff")(clip))  # the distance cannot tell
    # a one-pixel-wide line moving by one pixel: the signed maps keep both edges, full size, in the order of frames
    line = torch.zeros(1, 3, 3, 8, 8)
    for t in range(3):
        line[0, :, t, :, 2 + t] = 1.0
    maps = MicroMotion("signed")(line)  # (1, 6, 8, 8): frame 0 - last (RGB), frame 1 - last (RGB)
    assert maps[0, 0, :, 2].eq(1).all() and maps[0, 0, :, 4].eq(-1).all() and maps[0, 0, :, [0, 1, 3, 5]].eq(0).all()
    assert maps[0, 3, :, 3].eq(1).all() and maps[0, 3, :, 4].eq(-1).all()


def test_unknown_mode():
    with pytest.raises(ValueError, match="convdiff"):
        MicroMotion("flow")
