"""Adaptive Clip Selection (ACS): sample training clips where the model has been right before.

LIGAR (section V.ii) fights *induced label noise*: in an untrimmed video the labelled action fills a few
frames, so a uniformly sampled clip often shows background under the video's label. ACS keeps a score v_k per frame
k of every training video, initialised to 0. After each training prediction of a clip covering the segment S_i
(predicted class ŷ_i with probability P̂_i, true class y_i) every frame of the segment is updated (Eq. 2):

    v_k ← v_k + (1[ŷ_i = y_i] − 1[ŷ_i ≠ y_i]) · P̂_i,   k ∈ S_i

(the paper prints P_i in Eq. 2, but its text defines the factor as the predicted probability P̂_i; P_i is the
sampling probability of Eq. 1). Segments are the N − n + 1 windows S_i = {i, ..., i + n − 1} of n = clip_len ·
frame_interval frames, and segment i is drawn with probability (Eq. 1)

    P_i = (Σ_{k∈S_i} v_k·1[v_k ≥ 0] + 1) / Σ_t (Σ_{k∈S_t} v_k·1[v_k ≥ 0] + 1).

The paper prints the denominator's "+ 1" outside the sum over t; only inside does Σ_i P_i = 1, so it is read as
above. Negative scores count as zero, so a video whose frames were all predicted wrongly falls back to uniform
sampling rather than being dropped (the paper found ignoring such videos worse). A video switches to ACS once at
least `min_fraction` (70 %) of its frames have received a score; collection skips the first `warmup_epochs` (1)
epochs, whose predictions are too volatile. Until then, and for videos shorter than one window (loop-padded by
`dense_indices`), sampling is the plain uniform dense sampling, which is Eq. 1 with all scores zero.

Where the pieces live (DataLoader workers are separate processes, and DDP ranks see different samples):

    trainer step    logits ─► (ŷ, P̂) ─► store.update(video, frames, ŷ, P̂, y, num_frames)     buffered locally
    epoch end       store.sync()         every rank all-gathers the buffers and applies Eq. 2 (identical stores)
    epoch start     sampler.snapshot = store.snapshot()   positive scores of the ready videos; the workers,
                    re-created each epoch (not persistent), receive the sampler with its new snapshot
    __getitem__     ACSClipSampler(num_frames, ..., video=index)  draws the window from Eq. 1

Scores change sampling only through the snapshot taken at an epoch start, so applying a whole epoch's updates at its
end (one all-gather per epoch) samples exactly as applying them after every step would.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

from streamact.data.records import ClipInfo, VideoRecord
from streamact.data.sampling import ClipSampler, dense_indices

__all__ = ["segment_probabilities", "ACSScoreStore", "ACSClipSampler"]


def segment_probabilities(scores: np.ndarray, window: int) -> np.ndarray:
    """Eq. 1: the probability of each window start of a video given its frame scores.

    Args:
        scores: frame scores v (L,), any sign.
        window: frames per segment n (clip_len * frame_interval).

    Returns:
        (L - window + 1,) probabilities summing to 1; uniform when no score is positive.

    Raises:
        ValueError: `window` is not in [1, L].
    """
    scores = np.asarray(scores, dtype=np.float64)
    if not 1 <= window <= len(scores):
        raise ValueError(f"segment window must be in [1, {len(scores)}] frames, got {window}")
    cumulative = np.concatenate([[0.0], np.cumsum(np.maximum(scores, 0.0))])  # (L + 1,)
    mass = cumulative[window:] - cumulative[:-window] + 1.0  # (L - window + 1,) segment sums + 1
    return mass / mass.sum()


class ACSScoreStore:
    """Per-frame ACS scores of every training video; lives in the main process of every rank.

    Args:
        num_videos: videos in the training set; `update` takes indices into it.
        min_fraction: a video is ready (sampled by Eq. 1) once this fraction of its frames has a score.
        warmup_epochs: epochs at the start of training whose predictions are not collected.
        windows: per video the usable frames [start, end) (`VideoRecord.start` / `end`, end None = to the end of
            the video); readiness counts frames inside it. None = whole videos.

    Raises:
        ValueError: bad `min_fraction`, negative `warmup_epochs`, or `windows` of the wrong length.
    """

    def __init__(
        self,
        num_videos: int,
        *,
        min_fraction: float = 0.7,
        warmup_epochs: int = 1,
        windows: Sequence[tuple[int, int | None]] | None = None,
    ) -> None:
        if not 0.0 < min_fraction <= 1.0:
            raise ValueError(f"min_fraction must be in (0, 1], got {min_fraction}")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs must be >= 0, got {warmup_epochs}")
        if windows is not None and len(windows) != num_videos:
            raise ValueError(f"{len(windows)} windows for {num_videos} videos")
        self.num_videos = num_videos
        self.min_fraction = min_fraction
        self.warmup_epochs = warmup_epochs
        self.windows = [(0, None)] * num_videos if windows is None else [(int(s), e) for s, e in windows]
        self.epoch = 0
        self._scores: dict[int, np.ndarray] = {}  # video -> (num_frames,) float64 v
        self._seen: dict[int, np.ndarray] = {}  # video -> (num_frames,) bool: received a score
        self._pending: list[tuple[np.ndarray, ...]] = []

    @classmethod
    def from_records(cls, records: Sequence[VideoRecord], **kwargs) -> ACSScoreStore:
        """A store for a training set, with each record's [start, end) as its window."""
        return cls(len(records), windows=[(r.start, r.end) for r in records], **kwargs)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose predictions `update` receives (collection is off during the warm-up epochs)."""
        self.epoch = epoch

    @property
    def collecting(self) -> bool:
        return self.epoch >= self.warmup_epochs

    def update(
        self,
        video_ids,
        clip_frame_indices,
        pred_labels,
        pred_probs,
        true_labels,
        *,
        num_frames,
    ) -> None:
        """Record one batch of training predictions (applied by the next `sync`).

        Args:
            video_ids: (B,) dataset indices of the videos.
            clip_frame_indices: (B, K) absolute frame indices each clip decoded; the clip covers the segment from
                their minimum to their maximum (inclusive).
            pred_labels: (B,) predicted classes ŷ.
            pred_probs: (B,) probability of the predicted class P̂ (the softmax maximum).
            true_labels: (B,) labels y.
            num_frames: (B,) frame counts of the videos.

        Raises:
            ValueError: the arguments disagree in length, or an index lies outside its video.
        """
        if not self.collecting:
            return
        videos, frames, preds, probs, labels, lengths = (
            _as_numpy(a) for a in (video_ids, clip_frame_indices, pred_labels, pred_probs, true_labels, num_frames))
        frames = frames.reshape(len(frames), -1)  # (B, K)
        if not len(videos) == len(frames) == len(preds) == len(probs) == len(labels) == len(lengths):
            raise ValueError("ACSScoreStore.update: every argument needs one entry per clip")
        if len(videos) == 0:
            return
        first, last = frames.min(axis=1), frames.max(axis=1)
        if (first < 0).any() or (last >= lengths).any() or (videos < 0).any() or (videos >= self.num_videos).any():
            raise ValueError("ACSScoreStore.update: a frame index lies outside its video or a video id is unknown")
        delta = np.where(preds == labels, 1.0, -1.0) * probs.astype(np.float64)  # Eq. 2 increment per clip
        self._pending.append((videos.astype(np.int64), first.astype(np.int64), last.astype(np.int64), delta,
                              lengths.astype(np.int64)))

    def sync(self) -> int:
        """Apply the buffered updates of every rank (a collective call under DDP: every rank must make it).

        Returns:
            The number of clips applied, over all ranks.
        """
        local, self._pending = self._pending, []
        parts = [local]
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            parts = [None] * dist.get_world_size()
            dist.all_gather_object(parts, local)
        applied = 0
        for part in parts:  # rank order, so every rank sums in the same order and ends with identical scores
            for videos, first, last, delta, lengths in part:
                for video, lo, hi, d, length in zip(videos, first, last, delta, lengths):
                    self._apply(int(video), int(lo), int(hi), float(d), int(length))
                applied += len(videos)
        return applied

    def _apply(self, video: int, first: int, last: int, delta: float, num_frames: int) -> None:
        scores = self._scores.get(video)
        if scores is None:
            scores = self._scores[video] = np.zeros(num_frames)
            self._seen[video] = np.zeros(num_frames, dtype=bool)
        elif len(scores) != num_frames:
            raise ValueError(f"video {video} reported {num_frames} frames, earlier {len(scores)}")
        scores[first : last + 1] += delta
        self._seen[video][first : last + 1] = True

    def _check_synced(self) -> None:
        if self._pending:
            raise RuntimeError("ACSScoreStore has unapplied updates: call sync() first (on every rank)")

    def is_ready(self, video: int) -> bool:
        """Whether at least `min_fraction` of the video's usable frames have received a score."""
        seen = self._seen.get(video)
        if seen is None:
            return False
        start, end = self.windows[video]
        window = seen[start : len(seen) if end is None else min(end, len(seen))]
        return len(window) > 0 and window.mean() >= self.min_fraction

    def ready_fraction(self) -> float:
        """Fraction of the training videos sampled by ACS (the metric LIGAR logs)."""
        self._check_synced()
        return sum(self.is_ready(v) for v in self._scores) / max(self.num_videos, 1)

    def scores(self, video: int) -> np.ndarray | None:
        """A copy of the video's frame scores v, or None if it has none yet."""
        scores = self._scores.get(video)
        return None if scores is None else scores.copy()

    def snapshot(self) -> dict[int, np.ndarray]:
        """What `ACSClipSampler` needs: the ready videos' scores with negatives set to 0, float32 (small to ship)."""
        self._check_synced()
        return {v: np.maximum(s, 0.0).astype(np.float32) for v, s in self._scores.items() if self.is_ready(v)}

    def state_dict(self) -> dict:
        """Scores as flat tensors (loadable with `torch.load(weights_only=True)`)."""
        self._check_synced()
        videos = sorted(self._scores)
        lengths = [len(self._scores[v]) for v in videos]
        return {
            "epoch": self.epoch,
            "videos": torch.tensor(videos, dtype=torch.long),
            "lengths": torch.tensor(lengths, dtype=torch.long),
            "scores": torch.from_numpy(np.concatenate([self._scores[v] for v in videos] or [np.zeros(0)])),
            "seen": torch.from_numpy(np.concatenate([self._seen[v] for v in videos] or [np.zeros(0, dtype=bool)])),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict()` output (the configuration stays the constructor's)."""
        self._check_synced()
        videos, lengths = state["videos"].tolist(), state["lengths"].tolist()
        if any(v < 0 or v >= self.num_videos for v in videos):
            raise ValueError(f"ACS state names videos outside this training set of {self.num_videos}")
        bounds = np.cumsum([0, *lengths])
        scores, seen = state["scores"].numpy(), state["seen"].numpy()
        self.epoch = int(state["epoch"])
        self._scores = {v: scores[a:b].astype(np.float64) for v, a, b in zip(videos, bounds[:-1], bounds[1:])}
        self._seen = {v: seen[a:b].astype(bool) for v, a, b in zip(videos, bounds[:-1], bounds[1:])}


@dataclass
class ACSClipSampler(ClipSampler):
    """Dense sampling whose training windows follow Eq. 1 for videos in `snapshot`.

    Test sampling, videos not in the snapshot (not ready, or ACS not started) and videos shorter than one window
    are sampled exactly as `ClipSampler` does. Within the chosen window, frames (and temporal jitter) are placed as
    by `dense_indices`.

    Attributes:
        snapshot: `ACSScoreStore.snapshot()` of the current epoch: video index -> non-negative frame scores.
    """

    mode: str = "dense"
    snapshot: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mode != "dense":
            raise ValueError("ACSClipSampler needs mode='dense': ACS chooses among continuous windows")

    def __call__(
        self,
        num_frames: int,
        *,
        train: bool,
        rng: np.random.Generator | None = None,
        start: int = 0,
        end: int | None = None,
        video: int | None = None,
    ) -> ClipInfo:
        """Sample frame indices from the window [start, end) of video number `video` (see `ClipSampler`).

        Raises:
            ValueError: an empty window, or snapshot scores that do not match the video's frame count.
        """
        window = self.clip_len * self.frame_interval
        stop = num_frames if end is None else min(end, num_frames)
        scores = self.snapshot.get(video) if train and video is not None else None
        if scores is None or stop - start < window or start < 0:
            return super().__call__(num_frames, train=train, rng=rng, start=start, end=end)
        if len(scores) != num_frames:
            raise ValueError(f"ACS scores of video {video} cover {len(scores)} frames, the video has {num_frames}")
        if rng is None:
            raise ValueError("ACSClipSampler: training needs an rng")
        probs = segment_probabilities(scores[start:stop], window)
        offset = start + int(rng.choice(len(probs), p=probs))
        # One window of exactly `window` frames: dense_indices places the frames and the jitter inside it.
        info = dense_indices(window, self.clip_len, self.frame_interval, train=True, rng=rng, jitter=self.jitter)
        return ClipInfo(indices=[offset + i for i in info.indices], num_clips=1, clip_len=self.clip_len)


def _as_numpy(values) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)
