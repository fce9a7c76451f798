"""Detection targets on hand-made boxes and the loss on tiny tensors with hand-computed values."""
import math

import numpy as np
import pytest
import torch

from streamact.losses.detection import (TubeletLoss, draw_gaussian, focal_loss, gaussian_radius, masked_l1,
                                        tubelet_targets)
from streamact.models.amma import TubeletOutput


def test_gaussian_radius_hand_computed():
    # CenterNet's formula for a 10x10 box at overlap 0.7: the third quadratic, 2.8 r^2 - 28 r - 30 = 0 solved as
    # (b + sqrt(b^2 - 4ac)) / 2 (CenterNet's own normalisation, kept so the heatmaps match its training), is smallest.
    assert gaussian_radius(10, 10, 0.7) == pytest.approx((-28 + math.sqrt(28 ** 2 + 4 * 2.8 * 30)) / 2)
    assert gaussian_radius(20, 20) > gaussian_radius(10, 10)  # bigger boxes, bigger radius


def test_draw_gaussian_values_and_borders():
    hm = np.zeros((7, 7), np.float32)
    draw_gaussian(hm, (3, 3), 2)  # sigma = 5 / 6
    assert hm[3, 3] == 1.0 and hm.max() == 1.0
    assert hm[3, 4] == pytest.approx(math.exp(-1 / (2 * (5 / 6) ** 2)))
    assert hm[0, 0] == 0 and hm[3, 6] == 0  # outside the radius
    corner = np.zeros((3, 3), np.float32)
    draw_gaussian(corner, (0, 0), 2)  # clipped at the border, peak kept
    assert corner[0, 0] == 1.0 and corner[2, 2] > 0


def test_targets_on_hand_made_tubelet():
    # K = 2 clips on a 10x10 grid: the box moves right by 2 cells; key frame = the LAST clip.
    boxes = np.array([[1.0, 2.0, 5.0, 6.0], [3.0, 2.0, 7.0, 6.5]])
    t = tubelet_targets([(1, boxes)], num_classes=3, num_clips=2, output_size=(10, 10), max_objects=4)
    assert t["heatmap"].shape == (3, 10, 10) and t["movement"].shape == (4, 4) and t["index_all"].shape == (4, 2)
    # key centre (5, 4.25) -> cell (5, 4); the peak is in class 1 only
    assert t["heatmap"][1, 4, 5] == 1.0 and t["heatmap"][0].max() == 0 and t["heatmap"][2].max() == 0
    assert t["index"][0] == 4 * 10 + 5
    np.testing.assert_allclose(t["movement"][0], [3 - 5, 4 - 4, 5 - 5, 4.25 - 4])  # (dx, dy) per clip
    np.testing.assert_allclose(t["size"][0], [4, 4, 4, 4.5])  # (w, h) per clip
    np.testing.assert_array_equal(t["index_all"][0], [4 * 10 + 3, 4 * 10 + 5])
    np.testing.assert_array_equal(t["mask"], [1, 0, 0, 0])


def test_targets_without_objects():
    t = tubelet_targets([], num_classes=2, num_clips=3, output_size=(4, 4), max_objects=3)
    assert t["heatmap"].sum() == 0 and t["mask"].sum() == 0 and t["movement"].shape == (3, 6)


def test_focal_loss_hand_computed():
    target = torch.tensor([[[[1.0, 0.5]]]])  # one positive pixel, one near it
    pred = torch.tensor([[[[0.8, 0.3]]]])
    pos = math.log(0.8) * 0.2 ** 2
    neg = math.log(0.7) * 0.3 ** 2 * 0.5 ** 4
    assert focal_loss(pred, target).item() == pytest.approx(-(pos + neg), rel=1e-5)
    # No positives: normalised by 1, not 0.
    assert focal_loss(pred, torch.zeros_like(target)).item() == pytest.approx(
        -(math.log(0.2) * 0.64 + math.log(0.7) * 0.09), rel=1e-5)


def test_masked_l1_normalises_by_entries():
    pred = torch.tensor([[[1.0, 2.0], [9.0, 9.0]]])
    target = torch.tensor([[[0.0, 0.0], [0.0, 0.0]]])
    mask = torch.tensor([[1.0, 0.0]])
    assert masked_l1(pred, target, mask).item() == pytest.approx(3 / (2 + 1e-4))


def test_tubelet_loss_reads_sizes_at_each_clips_centre():
    k, h, w = 2, 4, 4
    boxes = np.array([[0.0, 0.0, 2.0, 2.0], [2.0, 2.0, 4.0, 4.0]])  # clip 0 centre (1,1), clip 1 centre (3,3)
    targets = tubelet_targets([(0, boxes)], num_classes=1, num_clips=k, output_size=(h, w), max_objects=2)
    t = {n: torch.from_numpy(v)[None] for n, v in targets.items()}
    heat = t["heatmap"].clone()
    movement = torch.zeros(1, 2 * k, h, w)
    movement[0, :, 3, 3] = torch.tensor([-2.0, -2.0, 0.0, 0.0])  # exact movement at the key centre
    size = torch.zeros(1, 2 * k, h, w)
    size[0, 0:2, 1, 1] = 2.0  # clip 0's size at clip 0's centre
    size[0, 2:4, 3, 3] = 2.0  # clip 1's size at clip 1's centre
    loss, parts = TubeletLoss()(TubeletOutput(heat, movement, size), t)
    assert parts["movement"] == pytest.approx(0.0, abs=1e-6) and parts["size"] == pytest.approx(0.0, abs=1e-6)
    size[0, 0:2, 3, 3] = 2.0
    size[0, 0:2, 1, 1] = 0.0  # clip 0's size only at the key centre: wrong place, error 2 on 2 of 4 entries
    loss2, parts2 = TubeletLoss()(TubeletOutput(heat, movement, size), t)
    assert parts2["size"] == pytest.approx(4 / (4 + 1e-4))
    assert loss2.item() == pytest.approx(loss.item() + 0.1 * parts2["size"], rel=1e-5)
