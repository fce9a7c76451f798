"""Training samples for tubelet detection: K clips of t frames ending at a key frame, with their boxes and targets.

    DetectionAnnotations ──► training_samples (windows holding a complete action tubelet, plus a share of
    background windows) ──► TubeletDataset[i]: read K*t frames ──► augment (same draw for all frames) ──► resize,
    normalise ──► clip (3, K*t, S, S) + targets (the complete tubelets) on the S/8 grid

The key frames of a sample ending at frame f are f - (K-1)t, ..., f - t, f (contiguous clips of t frames, so a
tubelet spans K*t frames); frames before the first are replaced by frame 1, as the paper pads short videos.
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch.utils.data import Dataset

from streamact.data.datasets.detection import DetectionAnnotations, read_frame
from streamact.errors import UserError
from streamact.inference.detection_decode import key_frames
from streamact.losses.detection import tubelet_targets
from streamact.transforms.boxes import augment_tubelet, resize

__all__ = ["training_samples", "tube_boxes", "clip_frames", "TubeletDataset", "DetectionBatch", "collate_tubelets",
           "STRIDE"]

logger = logging.getLogger(__name__)

STRIDE = 8  # output stride of AMMA's head


def clip_frames(end_frame: int, num_clips: int, clip_len: int) -> np.ndarray:
    """The K*t 1-based frames a sample ending at `end_frame` reads, oldest first (clamped to >= 1)."""
    ends = key_frames(end_frame, num_clips, clip_len)  # (K,)
    return np.maximum((ends[:, None] - np.arange(clip_len - 1, -1, -1)[None]).reshape(-1), 1)  # (K*t,)


def tube_boxes(tube: np.ndarray, frames: np.ndarray) -> np.ndarray | None:
    """Boxes (len(frames), 4) of `tube` (n, 5) at `frames`, or None if the tube does not cover all of them."""
    rows = {int(f): i for i, f in enumerate(tube[:, 0])}
    if not all(int(f) in rows for f in frames):
        return None
    return tube[[rows[int(f)] for f in frames], 1:5]


def training_samples(ann: DetectionAnnotations, videos: Sequence[str], *, num_clips: int, clip_len: int,
                     background: float = 0.0, seed: int = 0) -> list[tuple[str, int]]:
    """(video, end frame) of every training sample.

    With `background` 0, AMMA's rule: the sample's K key frames lie entirely inside or entirely outside each
    ground-truth tube, and inside at least one (no sample straddles an action's start or end).

    With `background` > 0, every window holding at least one complete tubelet (a tube covering all K key frames),
    plus windows holding none (actors idling, walking, or starting or ending an action inside the window) drawn at
    random (seeded) to make up that share of the samples. A sample's targets are its complete tubelets only, so the
    detector learns to fire when an action covers the whole tubelet, not when it is about to start or has just
    ended: its tubelets then start and end with the action, which frame-mAP (every frame counts) and the temporal
    extent of linked tubes reward.
    """
    positive, negative = [], []
    first = (num_clips - 1) * clip_len + 1
    for video in videos:
        spans = [(int(t[0, 0]), int(t[-1, 0])) for _, t in ann.tubes(video)]
        for end in range(first, ann.nframes[video] + 1):
            start = end - (num_clips - 1) * clip_len
            inside = [a <= start and end <= b for a, b in spans]
            outside = [end < a or b < start for a, b in spans]
            if any(inside) and (background > 0 or all(i or o for i, o in zip(inside, outside))):
                positive.append((video, end))
            elif not any(inside):
                negative.append((video, end))
    if background <= 0:
        return positive
    wanted = min(len(negative), round(len(positive) * background / (1 - background)))
    chosen = np.random.default_rng(seed).choice(len(negative), wanted, replace=False)
    return positive + [negative[i] for i in sorted(chosen)]


class DetectionBatch(NamedTuple):
    """Collated tubelet samples.

    Attributes:
        clips: (B, 3, K*t, S, S).
        targets: batched `tubelet_targets` as tensors.
        num_bad: unreadable samples dropped from this batch.
    """

    clips: torch.Tensor
    targets: dict[str, torch.Tensor]
    num_bad: int


def collate_tubelets(batch: Sequence[tuple[torch.Tensor, dict] | None]) -> DetectionBatch:
    """Stack the readable samples and count the unreadable ones (None)."""
    good = [s for s in batch if s is not None]
    if not good:
        return DetectionBatch(torch.empty(0), {}, len(batch))
    targets = {k: torch.from_numpy(np.stack([s[1][k] for s in good])) for k in good[0][1]}
    return DetectionBatch(torch.stack([s[0] for s in good]), targets, len(batch) - len(good))


class TubeletDataset(Dataset):
    """Tubelet samples of some videos, augmented for training or plain for evaluation.

    Args:
        ann: the annotations.
        samples: (video, end frame) pairs, e.g. from `training_samples`.
        num_clips: K.
        clip_len: t.
        input_size: S, square model input (no aspect ratio kept).
        mean, std: the model's normalisation of [0, 1] RGB.
        train: random augmentation (photometric, expand, crop, optional flip, optional time reversal) with
            per-sample seeds.
        flip: allow horizontal flips (off for classes told apart by left/right motion, unless they are all in
            `flip_pairs`).
        flip_pairs: label-id pairs that are each other's mirror image (``swipe_left`` / ``swipe_right``): a
            flipped sample of one is a sample of the other.
        reverse_pairs: label-id pairs that are each other's time reversal (``squat_down`` / ``stand_up``): half the
            samples whose every tubelet is of such a class play backwards, as samples of the other class, so
            the same actor and background are seen doing both and only the order of frames tells them apart.
        seed: base seed of the per-sample random generators.

    Attributes:
        num_bad: samples whose frames could not be read in this process.
    """

    def __init__(self, ann: DetectionAnnotations, samples: Sequence[tuple[str, int]], *, num_clips: int,
                 clip_len: int, input_size: int, mean: Sequence[float], std: Sequence[float], train: bool,
                 flip: bool = False, flip_pairs: Sequence[tuple[int, int]] = (),
                 reverse_pairs: Sequence[tuple[int, int]] = (), seed: int = 0) -> None:
        if not samples:
            raise UserError("no detection training samples: no video has K*t frames inside a ground-truth tube; "
                            "lower data.num_clips or data.clip_len, or check the annotations")
        self.ann, self.samples = ann, list(samples)
        self.num_clips, self.clip_len, self.input_size = num_clips, clip_len, input_size
        self.mean = np.asarray(mean, np.float32) * 255
        self.std = np.asarray(std, np.float32) * 255
        self.train, self.flip, self.seed = train, flip, seed
        self.mirror = np.arange(len(ann.labels))  # label of a flipped sample
        for a, b in flip_pairs:
            self.mirror[a], self.mirror[b] = b, a
        self.reversal = np.full(len(ann.labels), -1) if reverse_pairs else None  # label played backwards, -1: none
        for a, b in reverse_pairs:
            self.reversal[a], self.reversal[b] = b, a
        self.epoch = 0
        self.num_bad = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.samples)

    def objects(self, video: str, end_frame: int, *, backwards: bool = False) -> list[tuple[int, np.ndarray]]:
        """(label, boxes (K, 4) in source pixels) of every tube covering all key frames of the sample; played
        `backwards`, the key frames are each clip's last once the K*t frames run from the last to the first."""
        frames = clip_frames(end_frame, self.num_clips, self.clip_len)
        keys = (frames[::-1] if backwards else frames)[self.clip_len - 1::self.clip_len]  # (K,)
        found = ((label, tube_boxes(tube, keys)) for label, tube in self.ann.tubes(video))
        return [(label, boxes) for label, boxes in found if boxes is not None]

    def _maybe_backwards(self, video: str, end: int, objects: list, rng: np.random.Generator) -> tuple[bool, list]:
        """Whether to play the sample backwards (half the time, when every tubelet either way has a reversed
        class), and its objects then, relabelled."""
        if self.reversal is None or rng.random() >= 0.5:
            return False, objects
        backwards = self.objects(video, end, backwards=True)
        if any(self.reversal[label] < 0 for label, _ in objects + backwards):
            return False, objects
        return True, [(int(self.reversal[label]), boxes) for label, boxes in backwards]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, dict[str, np.ndarray]] | None:
        video, end = self.samples[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        try:
            order = clip_frames(end, self.num_clips, self.clip_len)
            decoded = {f: read_frame(self.ann, video, int(f)) for f in np.unique(order)}
        except UserError as e:
            self.num_bad += 1
            logger.warning("skipping unreadable detection sample %d: %s", index, e)
            return None
        objects = self.objects(video, end)
        if self.train:
            backwards, objects = self._maybe_backwards(video, end, objects, rng)
            order = order[::-1] if backwards else order
        frames = np.stack([decoded[f] for f in order])  # (K*t, H, W, 3)
        labels = [label for label, _ in objects]
        boxes = np.stack([b for _, b in objects]).astype(np.float32) if objects else np.zeros((0, self.num_clips, 4),
                                                                                             np.float32)
        if self.train:
            frames, boxes, keep, flipped = augment_tubelet(frames, boxes, rng, flip=self.flip)
            labels = [int(self.mirror[labels[i]]) if flipped else labels[i] for i in keep]
        frames, boxes = resize(frames, boxes, self.input_size)
        clip = torch.from_numpy((frames - self.mean) / self.std).permute(3, 0, 1, 2)  # (3, K*t, S, S)
        grid = self.input_size // STRIDE
        targets = tubelet_targets([(label, b / STRIDE) for label, b in zip(labels, boxes)],
                                  num_classes=len(self.ann.labels), num_clips=self.num_clips,
                                  output_size=(grid, grid))
        return clip.float(), targets
