"""Temporal sampling: which frames of a video make up a training or test sample.

Two families, both returning `ClipInfo` (frame indices, clip-major):

- **Segment** (TSN / TSM): the video is cut into `num_segments` equal segments and one frame is taken from each,
  at random in training and at the centre in testing. The sample spans the whole video, so its stride depends
  on the video length.
- **Dense** (I3D / X3D / LIGAR): `clip_len` frames at a fixed stride `frame_interval`, a continuous window
  of `clip_len * frame_interval` frames. It is the only kind a live stream can produce (the model sees the
  last frames at a fixed rate), so models meant for streaming should be trained with it.

- **Stream windows** (online recognition on continuous streams): a window that ends at a frame of a stream and
  looks only backwards, labelled with the class of its LAST frame: what a streaming recognizer must answer at
  that frame, never using the future. `StreamWindowSampler` balances the classes of the window ends and can
  label the last few frames of a window each with its own class (a causal model answers at all of them in one pass).

The functions are pure: they work on frames [0, num_frames) and take the random generator explicitly.
`ClipSampler` bundles a configuration and restricts sampling to a record's [start, end) window.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamact.data.records import ClipInfo

__all__ = ["segment_indices", "dense_indices", "multi_clip_indices", "stream_window_indices", "ClipSampler",
           "StreamWindowSampler"]


def segment_indices(
    num_frames: int,
    num_segments: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    num_clips: int = 1,
) -> ClipInfo:
    """TSN segment sampling: one frame from each of `num_segments` equal segments.

    Segment k covers frames [k * L, (k + 1) * L) with L = num_frames / num_segments. Training takes a uniformly
    random position in each segment; testing takes the centre. With `num_clips` > 1 (testing only) clip c takes
    the position (c + 0.5) / num_clips through each segment, so the views interleave (TSM's `twice_sample`
    is the 2-clip case, up to a half-segment offset).

    Short videos (num_frames < num_segments) need no special case: segments are then shorter than a frame, the
    same formula repeats frames, and the result stays in temporal order, each frame used about
    num_segments / num_frames times.

    Args:
        num_frames: frames in the video.
        num_segments: frames per sample.
        train: random position per segment if True, centre if False.
        rng: random generator; required when `train` is True.
        num_clips: test views; must be 1 in training.

    Returns:
        `ClipInfo` with num_clips * num_segments indices, non-decreasing within each clip.

    Raises:
        ValueError: a non-positive argument, no `rng` in training, or several clips in training.
    """
    _check_positive(num_frames=num_frames, num_segments=num_segments, num_clips=num_clips)
    segment = num_frames / num_segments
    starts = np.arange(num_segments) * segment
    if train:
        if rng is None:
            raise ValueError("segment_indices: training needs an rng")
        if num_clips != 1:
            raise ValueError("segment_indices: training draws one clip; num_clips > 1 is for testing")
        offsets = rng.random(num_segments)[None]  # (1, num_segments)
    else:
        offsets = ((np.arange(num_clips) + 0.5) / num_clips)[:, None]  # (num_clips, 1)
    indices = np.floor(starts[None] + offsets * segment).astype(np.int64)  # (num_clips, num_segments)
    # Guards float rounding at the very end of the last segment.
    indices = np.minimum(indices, num_frames - 1)
    return ClipInfo(indices=indices.reshape(-1).tolist(), num_clips=num_clips, clip_len=num_segments)


def dense_indices(
    num_frames: int,
    clip_len: int,
    frame_interval: int,
    *,
    train: bool,
    rng: np.random.Generator | None = None,
    jitter: bool = False,
) -> ClipInfo:
    """Dense sampling: `clip_len` frames, `frame_interval` apart, from one window of clip_len * frame_interval.

    Training picks the window start uniformly among all positions that fit; testing centres the window (the
    same as `multi_clip_indices` with one clip). Temporal jitter (training only, so evaluation stays
    deterministic) adds an independent offset in [0, frame_interval) to each index: frames keep their order
    and never leave the window.

    Videos shorter than the window (num_frames < clip_len * frame_interval) are loop-padded: the window starts at
    frame 0 and wraps around to the start of the video (index mod num_frames), as MMAction2's `loop` option.
    The clip keeps its stride, so motion speed is preserved; the wrap point is the one discontinuity.

    Args:
        num_frames: frames in the video.
        clip_len: frames per clip.
        frame_interval: stride between consecutive frames.
        train: random window if True, centred if False.
        rng: random generator; required when `train` is True.
        jitter: add temporal jitter in training.

    Returns:
        `ClipInfo` with clip_len indices in [0, num_frames).

    Raises:
        ValueError: a non-positive argument, or no `rng` in training.
    """
    if not train:
        return multi_clip_indices(num_frames, clip_len, frame_interval, num_clips=1)
    _check_positive(num_frames=num_frames, clip_len=clip_len, frame_interval=frame_interval)
    if rng is None:
        raise ValueError("dense_indices: training needs an rng")
    window = clip_len * frame_interval
    start = int(rng.integers(0, num_frames - window + 1)) if num_frames >= window else 0
    indices = start + np.arange(clip_len) * frame_interval
    if jitter:
        indices = indices + rng.integers(0, frame_interval, size=clip_len)
    return ClipInfo(indices=(indices % num_frames).tolist(), num_clips=1, clip_len=clip_len)


def multi_clip_indices(num_frames: int, clip_len: int, frame_interval: int, num_clips: int) -> ClipInfo:
    """Multi-view testing: `num_clips` dense clips with evenly spaced windows.

    The valid window starts [0, num_frames - clip_len * frame_interval] are cut into `num_clips` equal parts and
    each clip starts at the centre of its part (one clip = the centred window). Videos shorter than one window
    give `num_clips` identical loop-padded clips starting at frame 0 (see `dense_indices`).

    Args:
        num_frames: frames in the video.
        clip_len: frames per clip.
        frame_interval: stride between consecutive frames.
        num_clips: number of views.

    Returns:
        `ClipInfo` with num_clips * clip_len indices, clip-major.

    Raises:
        ValueError: a non-positive argument.
    """
    _check_positive(num_frames=num_frames, clip_len=clip_len, frame_interval=frame_interval, num_clips=num_clips)
    window = clip_len * frame_interval
    num_starts = max(num_frames - window + 1, 1)
    starts = np.floor((np.arange(num_clips) + 0.5) * num_starts / num_clips).astype(np.int64)  # (num_clips,)
    indices = starts[:, None] + np.arange(clip_len)[None] * frame_interval  # (num_clips, clip_len)
    return ClipInfo(indices=(indices % num_frames).reshape(-1).tolist(), num_clips=num_clips, clip_len=clip_len)


@dataclass
class ClipSampler:
    """A sampling configuration, callable on a video's frame count.

    Attributes:
        mode: 'segment' (TSN style, spans the video) or 'dense' (fixed stride, what a stream can do).
        clip_len: frames per clip; in 'segment' mode this is the number of segments.
        frame_interval: stride between frames in 'dense' mode (ignored in 'segment' mode).
        num_clips: views per video at test time; training always draws one clip.
        jitter: temporal jitter in 'dense' training.
    """

    mode: str = "segment"
    clip_len: int = 8
    frame_interval: int = 1
    num_clips: int = 1
    jitter: bool = False

    def __post_init__(self) -> None:
        if self.mode not in ("segment", "dense"):
            raise ValueError(f"ClipSampler: mode must be 'segment' or 'dense', got {self.mode!r}")
        _check_positive(clip_len=self.clip_len, frame_interval=self.frame_interval, num_clips=self.num_clips)

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
        """Sample frame indices from the window [start, end) of a video.

        Args:
            num_frames: frames in the whole video.
            train: training (random) or testing (deterministic) sampling.
            rng: random generator; required when `train` is True.
            start: first usable frame (`VideoRecord.start`).
            end: one past the last usable frame (`VideoRecord.end`); None or past the video = its end.
            video: dataset index of the video, for samplers with per-video state (`ACSClipSampler`); unused here.

        Returns:
            `ClipInfo` with absolute frame indices; one clip in training, `num_clips` in testing.

        Raises:
            ValueError: the window [start, end) holds no frame of the video.
        """
        stop = num_frames if end is None else min(end, num_frames)
        length = stop - start
        if start < 0 or length <= 0:
            raise ValueError(f"empty sampling window [{start}, {end}) in a video of {num_frames} frames")
        if self.mode == "segment":
            num_clips = 1 if train else self.num_clips
            info = segment_indices(length, self.clip_len, train=train, rng=rng, num_clips=num_clips)
        elif train:
            info = dense_indices(length, self.clip_len, self.frame_interval, train=True, rng=rng, jitter=self.jitter)
        else:
            info = multi_clip_indices(length, self.clip_len, self.frame_interval, self.num_clips)
        info.indices = [start + i for i in info.indices]
        return info


def stream_window_indices(end: int, length: int, frame_interval: int) -> list[int]:
    """The `length` frames, `frame_interval` apart, of the window whose last frame is `end`.

    A window reaching before the stream's first frame repeats frame 0 (warm-up near the start of a stream, or a
    stream shorter than the window).

    Args:
        end: the window's last frame (0-based).
        length: frames in the window.
        frame_interval: stride between frames.

    Returns:
        Non-decreasing frame indices ending with `end`.
    """
    _check_positive(length=length, frame_interval=frame_interval)
    return [max(0, end - frame_interval * k) for k in range(length - 1, -1, -1)]


class StreamWindowSampler:
    """Windows from continuous streams, labelled online: the window ends at a frame and takes that frame's class.

    Window ends are drawn class-balanced within each stream: with probability `background_p` a background frame,
    otherwise a frame of one of the stream's gesture classes, chosen uniformly, so rare and short classes are seen
    as often as frequent and long ones (the loss stays unweighted). Ends come from the frames with a full window
    before them (the streaming state is warm); a stream shorter than one window uses every frame (see
    `stream_window_indices`).

    The window holds ``clip_len + context`` frames: a causal recognizer's output at a frame averages the per-frame
    scores of its last `clip_len` frames, each of which depends on `context` earlier frames through the temporal
    layers' caches (`TSN.stream_context`), so that many frames reproduce exactly what the streaming engine computes
    at the window's end.

    With ``outputs`` > 1 the window grows by ``outputs - 1`` frames and its last `outputs` frames are each labelled
    with their own class (a list, oldest first): every one of them still has a full ``clip_len + context`` frames
    behind it, so a causal model's outputs at all of them (`TSN.forward_head_steps`) are the streamed ones, for the
    cost of one longer pass. Training then also sees every onset and end of a gesture that falls in the window.

    Args:
        labels: per-frame class indices of every stream, by dataset index (the records' `frame_labels`).
        clip_len: frames the recognizer averages (its ``num_segments``).
        frame_interval: stride between processed frames.
        context: extra past frames the temporal layers reach.
        background: the background class.
        background_p: share of windows ending on a background frame.
        outputs: labelled frames at the end of each window (1: the last frame only, a plain class index).
    """

    def __init__(self, labels: Sequence[Sequence[int]], *, clip_len: int, frame_interval: int, context: int = 0,
                 background: int = 0, background_p: float = 0.25, outputs: int = 1) -> None:
        _check_positive(clip_len=clip_len, frame_interval=frame_interval, outputs=outputs)
        if context < 0 or not 0.0 <= background_p <= 1.0:
            raise ValueError(f"context must be >= 0 and background_p in [0, 1], got {context}, {background_p}")
        self.clip_len, self.frame_interval, self.context = clip_len, frame_interval, context
        self.background, self.background_p, self.outputs = background, background_p, outputs
        self.length = clip_len + context + outputs - 1
        self._labels = [np.asarray(stream) for stream in labels]
        span = (self.length - 1) * frame_interval  # frames from the window's first frame to its last
        self._ends: list[dict[int, np.ndarray]] = []  # per stream: class -> candidate end frames
        for stream in self._labels:
            usable = np.arange(span, len(stream)) if len(stream) > span else np.arange(len(stream))
            self._ends.append({int(c): usable[stream[usable] == c] for c in np.unique(stream[usable])})

    def __call__(self, num_frames: int, *, train: bool, rng: np.random.Generator | None = None, start: int = 0,
                 end: int | None = None, video: int | None = None) -> ClipInfo:
        """Draw one window of stream `video` (a dataset index); the other arguments follow `ClipSampler`.

        Evaluation draws the same way: the dataset seeds every sample's generator, so the windows are fixed.

        Raises:
            ValueError: no `rng` or `video`, or a stream without frames.
        """
        if rng is None or video is None:
            raise ValueError("StreamWindowSampler needs the sample's rng and dataset index")
        ends = self._ends[video]
        if not ends:
            raise ValueError("empty stream: no frame to end a window at")
        gestures = [c for c in ends if c != self.background]
        if self.background in ends and (not gestures or rng.random() < self.background_p):
            label = self.background
        else:
            label = gestures[int(rng.integers(len(gestures)))]
        last = int(rng.choice(ends[label]))
        last = min(last, num_frames - 1)  # the reader's count wins if the annotation overstates it
        indices = stream_window_indices(last, self.length, self.frame_interval)
        if self.outputs > 1:
            stream = self._labels[video]
            label = [int(stream[min(i, len(stream) - 1)]) for i in indices[-self.outputs:]]
        return ClipInfo(indices=indices, num_clips=1, clip_len=self.length, label=label)


def _check_positive(**values: int) -> None:
    for name, value in values.items():
        if value < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
