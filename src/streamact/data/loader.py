"""The one dataset class that decodes records, and the loader around it.

`VideoDataset` opens each video once per sample: the reader's frame count feeds the sampler and the same
reader decodes the sampled frames. A video that cannot be read (missing, corrupt, truncated, not a video)
does not stop training: the sample comes back as None, is counted and logged, and `collate_skip_bad` drops it
from the batch and reports how many were dropped, because counters in worker processes never reach the main
process.

Long videos sampled many times per epoch (stream windows) can be read from a `FrameCache` instead: each video is
decoded once, and a sample copies its frames out of a memory map.

Samples are deterministic: the random generator of sample `index` in epoch `epoch` is seeded with
(seed, epoch, index), so the same clip and crop come out whatever worker decodes it and after a resume.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from streamact.data.frame_cache import FrameCache
from streamact.data.records import VideoRecord
from streamact.data.sampling import ClipSampler
from streamact.io.errors import VideoError
from streamact.io.video import open_video

__all__ = ["VideoDataset", "Batch", "collate_skip_bad", "build_loader", "set_epoch"]

logger = logging.getLogger(__name__)


class VideoDataset(Dataset):
    """Decode, sample and transform `VideoRecord`s into (clip, label) pairs.

    Args:
        records: the videos.
        sampler: chooses frame indices from a video's frame count.
        transform: called as `transform(frames, rng)` on uint8 frames (N, H, W, 3), returning (C, N, H, W)
            float (see `streamact.transforms.presets.build_transform`).
        train: training (random) or test (deterministic, possibly multi-view) sampling.
        seed: base seed of the per-sample random generators.
        frame_cache: read the videos from this cache (decoded once, at the transform's first scale) instead of
            decoding every sample; the clips are the same.

    Attributes:
        num_bad: samples that failed in this process (each DataLoader worker has its own count).
        bad_paths: the failed videos, in this process.

    Raises:
        ValueError: `records` is empty.
    """

    def __init__(
        self,
        records: Sequence[VideoRecord],
        sampler: ClipSampler,
        transform: Callable[[np.ndarray, np.random.Generator], torch.Tensor],
        *,
        train: bool,
        seed: int = 0,
        frame_cache: FrameCache | None = None,
    ) -> None:
        if len(records) == 0:
            raise ValueError("empty dataset: no video records (check the annotation file and the split)")
        self.records = list(records)
        self.sampler = sampler
        self.transform = transform
        self.train = train
        self.seed = seed
        self.open = frame_cache.open if frame_cache is not None else open_video
        self.epoch = 0
        self.num_bad = 0
        self.bad_paths: list[str] = []

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random draws `__getitem__` makes (call before iterating)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int, list[int], int] | None:
        """Sample `index` as (clip, label, index, decoded frame indices, frame count of the video), or None if its
        video cannot be read.

        The clip is (C, T, H, W) for one clip, (V, C, T, H, W) for multi-view testing or augmented views.
        """
        record = self.records[index]
        rng = np.random.default_rng([self.seed, self.epoch, index])
        try:
            with self.open(record.path) as reader:
                try:
                    info = self.sampler(reader.num_frames, train=self.train, rng=rng, start=record.start,
                                        end=record.end, video=index)
                    num_frames = reader.num_frames
                except ValueError as e:
                    # The annotated window lies outside the video: the file does not match its annotation.
                    raise VideoError(f"{record.path}: {e}") from e
                frames = reader.get_frames(info.indices)  # (num_clips * clip_len, H, W, 3) uint8
        except VideoError as e:
            self.num_bad += 1
            self.bad_paths.append(str(record.path))
            logger.warning("skipping unreadable sample %d: %s", index, e)
            return None
        clip = self.transform(frames, rng)  # (C, num_clips * clip_len, H', W')
        if info.num_clips > 1:
            channels, _, height, width = clip.shape
            clip = clip.reshape(channels, info.num_clips, info.clip_len, height, width).transpose(0, 1)
        label = record.label if info.label is None else info.label  # stream windows carry their own label
        return clip, label, index, info.indices, num_frames


class Batch(NamedTuple):
    """A collated batch of the readable samples, and how many unreadable ones were dropped.

    When every sample was dropped, B is 0 and the tensors are empty, so `len(labels) == 0` is the check to skip
    a batch.

    Attributes:
        clips: (B, C, T, H, W), or (B, V, C, T, H, W) for multi-view testing or augmented training views.
        labels: (B,) class indices.
        num_bad: unreadable samples dropped from this batch.
        index: (B,) dataset index of each sample (ACS scores, the dataset of a joint training set).
        frames: (B, K) frame indices each sample decoded.
        num_frames: (B,) frame count of each sample's video.
    """

    clips: torch.Tensor
    labels: torch.Tensor
    num_bad: int
    index: torch.Tensor
    frames: torch.Tensor
    num_frames: torch.Tensor


def collate_skip_bad(batch: Sequence[tuple[torch.Tensor, int] | None]) -> Batch:
    """Stack the readable samples of a batch and count the unreadable ones (None).

    Args:
        batch: `VideoDataset` samples.

    Returns:
        A `Batch`.
    """
    good = [sample for sample in batch if sample is not None]
    num_bad = len(batch) - len(good)
    if not good:
        empty = torch.empty(0, dtype=torch.long)
        return Batch(torch.empty(0), empty, num_bad, empty, torch.empty(0, 0, dtype=torch.long), empty)
    clips = torch.stack([sample[0] for sample in good])
    labels, index, num_frames = (torch.tensor([sample[i] for sample in good], dtype=torch.long) for i in (1, 2, 4))
    frames = torch.tensor([sample[3] for sample in good], dtype=torch.long)
    return Batch(clips, labels, num_bad, index, frames, num_frames)


def build_loader(
    dataset: VideoDataset,
    batch_size: int,
    *,
    shuffle: bool,
    num_workers: int = 0,
    distributed: bool | None = None,
    seed: int = 0,
    drop_last: bool = False,
    collate_fn: Callable = collate_skip_bad,
) -> DataLoader:
    """A DataLoader over `dataset` yielding `Batch`es, sharded across ranks when distributed.

    Shuffling uses a `DistributedSampler` in every case (one replica when not distributed), so the order of an
    epoch depends only on (seed, epoch) and a resumed run sees the same order; call `set_epoch` each epoch.

    Args:
        dataset: the dataset.
        batch_size: samples per batch (per rank).
        shuffle: reshuffle every epoch.
        num_workers: decoding processes (0 = decode in this process).
        distributed: shard across ranks; None = whenever torch.distributed is initialised.
        seed: shuffling seed; must agree across ranks.
        drop_last: drop the last incomplete batch (and, distributed, the samples that do not divide evenly;
            otherwise the sampler repeats a few samples so every rank gets as many).
        collate_fn: batches the samples (detection: `streamact.data.tubelets.collate_tubelets`).

    Raises:
        ValueError: the dataset is empty.
        RuntimeError: `distributed=True` without an initialised process group.
    """
    if len(dataset) == 0:
        raise ValueError("empty dataset: nothing to load")
    initialised = dist.is_available() and dist.is_initialized()
    if distributed is None:
        distributed = initialised
    if distributed and not initialised:
        raise RuntimeError("build_loader(distributed=True) needs torch.distributed.init_process_group() first")
    if distributed:
        sampler = DistributedSampler(dataset, shuffle=shuffle, seed=seed, drop_last=drop_last)
    else:
        sampler = DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_fn,
        drop_last=drop_last,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Select the epoch for both the shuffling order and the per-sample random draws of a `build_loader` loader.

    Workers receive a fresh copy of the dataset each epoch (workers are not persistent), so the epoch set
    here reaches them.
    """
    loader.sampler.set_epoch(epoch)
    loader.dataset.set_epoch(epoch)
