"""Tubelet detection targets and losses (CenterNet / "Actions as Moving Points" style, as AMMA trains them).

Targets (numpy, built in the data loader's workers) for one sample of K clips, on the output grid (stride 8):

- ``heatmap`` (C, h, w): a Gaussian per action at its centre in the **last** clip's key frame, in its class channel;
  radius from CenterNet's ``gaussian_radius`` at min overlap 0.7, sigma = diameter / 6.
- ``movement`` (M, 2K): each clip's box centre minus the key-frame (integer) centre, in grid cells.
- ``size`` (M, 2K): each clip's box (w, h) in grid cells.
- ``index`` (M,): flat grid index of the key-frame centre (where movement is read); ``index_all`` (M, K): each
  clip's own rounded centre (where that clip's size is read); ``mask`` (M,): 1 for real objects, 0 for padding.

Loss (AMMA Eq. 4-7): penalty-reduced focal loss (alpha 2, beta 4) on the heatmap, normalised by the number of
positive pixels, + L1 on movement + 0.1 x L1 on size, each summed over the masked entries and divided by their
number (2K entries per object).
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

__all__ = ["gaussian_radius", "draw_gaussian", "tubelet_targets", "focal_loss", "masked_l1", "TubeletLoss",
           "MAX_OBJECTS"]

MAX_OBJECTS = 128


def gaussian_radius(height: float, width: float, min_overlap: float = 0.7) -> float:
    """CenterNet's radius: the smallest of three corner displacements that keep IoU >= `min_overlap`.

    The three cases are both corners inside, both outside, and one in / one out of the ground-truth box; the
    quadratic for each is solved for the displacement r.
    """
    b1 = height + width
    c1 = width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + math.sqrt(b1 ** 2 - 4 * c1)) / 2
    b2 = 2 * (height + width)
    c2 = (1 - min_overlap) * width * height
    r2 = (b2 + math.sqrt(b2 ** 2 - 16 * c2)) / 2
    a3 = 4 * min_overlap
    b3 = -2 * min_overlap * (height + width)
    c3 = (min_overlap - 1) * width * height
    r3 = (b3 + math.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap: np.ndarray, center: tuple[int, int], radius: int) -> None:
    """Draw a Gaussian of `radius` (sigma = diameter / 6) at integer `center` (x, y) into `heatmap` (h, w), keeping
    the maximum where Gaussians overlap."""
    diameter = 2 * radius + 1
    sigma = diameter / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    g[g < np.finfo(g.dtype).eps * g.max()] = 0
    x, y = center
    h, w = heatmap.shape
    left, right = min(x, radius), min(w - x, radius + 1)
    top, bottom = min(y, radius), min(h - y, radius + 1)
    window = heatmap[y - top:y + bottom, x - left:x + right]
    np.maximum(window, g[radius - top:radius + bottom, radius - left:radius + right], out=window)


def tubelet_targets(objects: Sequence[tuple[int, np.ndarray]], *, num_classes: int, num_clips: int,
                    output_size: tuple[int, int], max_objects: int = MAX_OBJECTS) -> dict[str, np.ndarray]:
    """Training targets of one sample.

    Args:
        objects: (label id, boxes (K, 4) x1 y1 x2 y2 in output-grid units, oldest clip first) per action.
        num_classes: C.
        num_clips: K.
        output_size: (h, w) of the output grid.
        max_objects: M, rows of the padded per-object targets; extra objects are dropped.

    Returns:
        ``heatmap`` (C, h, w), ``movement`` and ``size`` (M, 2K) float32, ``index`` (M,) and ``index_all`` (M, K)
        int64, ``mask`` (M,) float32.
    """
    h, w = output_size
    k = num_clips
    heatmap = np.zeros((num_classes, h, w), np.float32)
    movement = np.zeros((max_objects, 2 * k), np.float32)
    size = np.zeros((max_objects, 2 * k), np.float32)
    index = np.zeros(max_objects, np.int64)
    index_all = np.zeros((max_objects, k), np.int64)
    mask = np.zeros(max_objects, np.float32)
    for i, (label, boxes) in enumerate(objects[:max_objects]):
        boxes = np.asarray(boxes, np.float64)
        bw, bh = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]  # (K,)
        centres = np.stack([(boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2], axis=1)  # (K, 2)
        # Rounded (not floored) integer centres: the decoder puts the last clip's centre exactly on the peak cell.
        cells = np.clip(np.floor(centres + 0.5), 0, [w - 1, h - 1]).astype(np.int64)  # (K, 2)
        radius = max(0, int(gaussian_radius(math.ceil(bh[-1]), math.ceil(bw[-1]))))
        draw_gaussian(heatmap[label], (int(cells[-1, 0]), int(cells[-1, 1])), radius)
        movement[i] = (centres - cells[-1]).reshape(-1)  # (2K,): (dx, dy) of clip 0, 1, ...
        size[i] = np.stack([bw, bh], axis=1).reshape(-1)  # (2K,): (w, h) of clip 0, 1, ...
        index[i] = cells[-1, 1] * w + cells[-1, 0]
        index_all[i] = cells[:, 1] * w + cells[:, 0]
        mask[i] = 1.0
    return {"heatmap": heatmap, "movement": movement, "size": size, "index": index, "index_all": index_all,
            "mask": mask}


def focal_loss(pred: torch.Tensor, target: torch.Tensor, *, alpha: float = 2.0, beta: float = 4.0) -> torch.Tensor:
    """CornerNet's penalty-reduced focal loss on a probability heatmap, normalised by the positive pixels.

    Args:
        pred: (B, C, h, w) probabilities (clamped to [1e-4, 1 - 1e-4] for the logs).
        target: (B, C, h, w) Gaussian heatmap; exactly 1 at object centres.
    """
    pred = pred.float().clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    pos_loss = (torch.log(pred) * (1 - pred) ** alpha * pos).sum()
    neg_loss = (torch.log(1 - pred) * pred ** alpha * (1 - target) ** beta * (1 - pos)).sum()
    return -(pos_loss + neg_loss) / pos.sum().clamp(min=1.0)


def _gather(maps: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Values of (B, C, h, w) maps at flat grid positions index (B, M) -> (B, M, C)."""
    b, c = maps.shape[:2]
    flat = maps.reshape(b, c, -1)  # (B, C, h*w)
    return flat.gather(2, index[:, None, :].expand(-1, c, -1)).transpose(1, 2)  # (B, M, C)


def masked_l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Sum of |pred - target| over the masked entries, divided by their number (+1e-4).

    Args:
        pred, target: (B, M, 2K).
        mask: (B, M); each object counts 2K entries.
    """
    m = mask[..., None].expand_as(pred).float()
    return ((pred.float() - target) * m).abs().sum() / (m.sum() + 1e-4)


class TubeletLoss(nn.Module):
    """AMMA's objective: focal(heatmap) + movement_weight x L1(movement) + size_weight x L1(size)."""

    def __init__(self, *, movement_weight: float = 1.0, size_weight: float = 0.1) -> None:
        super().__init__()
        self.movement_weight, self.size_weight = movement_weight, size_weight

    def forward(self, out, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Loss of a batch and its parts (floats, for logging).

        Args:
            out: the model's `TubeletOutput` (heatmap, movement, size).
            targets: batched `tubelet_targets` as tensors.
        """
        k = out.movement.shape[1] // 2
        center = focal_loss(out.heatmap, targets["heatmap"])
        movement = masked_l1(_gather(out.movement, targets["index"]), targets["movement"], targets["mask"])
        # Each clip's size is read at that clip's own centre: channels (2i, 2i+1) at index_all[:, :, i].
        size = torch.cat([_gather(out.size[:, 2 * i:2 * i + 2], targets["index_all"][:, :, i]) for i in range(k)],
                         dim=2)  # (B, M, 2K)
        size = masked_l1(size, targets["size"], targets["mask"])
        loss = center + self.movement_weight * movement + self.size_weight * size
        return loss, {"center": float(center.detach()), "movement": float(movement.detach()),
                      "size": float(size.detach())}
