"""Synthetic gesture streams: gestures back to back with a frame-level ground-truth timeline.

`iter_stream_frames` renders one stream in memory (live demo, soak tests), `generate_stream` writes one to an mp4
with a JSON timeline, and `generate_stream_set` writes train / val / test sets of streams in the IPN Hand
annotation format (Benitez-Garcia et al., "IPN Hand: A Video Dataset and Benchmark for Real-Time Continuous Hand
Gesture Recognition", ICPR 2020), so the IPN loader reads them like the real dataset::

    <out>/classIdx.txt                  id,label,name  (id 1-based; 1 = no_gesture, IPN's D0X)
    <out>/Annot_TrainList.txt           video,label,id,t_start,t_end,frames  (1-based inclusive frames; every
    <out>/Annot_ValList.txt             frame of a stream is in one line: gestures and the no_gesture gaps)
    <out>/Annot_TestList.txt
    <out>/videos/<video>.mp4

In the gaps the hand is hidden, resting low, or raised and drifting idly (a hard negative: a visible hand that
does not gesture), while the scene's distractors keep moving. Every stream has its own seed and its own scene in
which it performs every class, so a scene tells nothing about a label; the three splits use disjoint seeds.
"""
from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from streamact.data.synthetic.gestures import _check_range
from streamact.data.synthetic.parallel import render_all
from streamact.data.synthetic.render import (
    _VISIBLE,
    _X,
    _Y,
    FPS,
    GESTURE_CLASSES,
    _Scene,
    _wobble,
    gesture_trajectory,
)
from streamact.io.writer import VideoWriter

__all__ = ["generate_stream", "generate_stream_set", "iter_stream_frames", "stream_video_name", "GAP", "DURATION",
           "IPN_SPLIT_FILES"]

# Default gap and gesture lengths in frames at the generator's 12 fps: gaps 0.5-3 s, gestures 1-2.5 s.
GAP = (6, 36)
DURATION = (12, 30)
# Annotation file of each split, as IPN Hand names them (IPN has no validation list; ours adds one).
IPN_SPLIT_FILES = {"train": "Annot_TrainList.txt", "val": "Annot_ValList.txt", "test": "Annot_TestList.txt"}


def iter_stream_frames(
    *,
    num_gestures: int | None = None,
    seed: int = 0,
    size: int = 160,
    gap: tuple[int, int] = GAP,
    duration: tuple[int, int] = DURATION,
) -> Iterator[tuple[np.ndarray, int]]:
    """Yield ``(frame, label)`` for a stream of gestures back to back, without writing anything.

    The stream opens with a `no_gesture` gap, then alternates gesture and gap; gestures are drawn uniformly from every
    class except `no_gesture`, and each gesture's motion spans all its labelled frames. One scene (background, person,
    lighting, camera) persists for the whole stream; memory stays flat, so an endless stream (``num_gestures=None``)
    can feed a live demo or a soak test.

    Args:
        num_gestures: gestures before the stream ends (after a final gap); None for an endless stream.
        seed: stream seed (the generator is ``np.random.default_rng((seed, 0, 2))``).
        size: frame height and width.
        gap: inclusive range of no-gesture gap lengths in frames.
        duration: inclusive range of gesture lengths in frames.

    Yields:
        (uint8 frame (size, size, 3), class index into `GESTURE_CLASSES`).
    """
    for frame, label, _ in _stream(num_gestures, seed, size, gap, duration):
        yield frame, label


def _idle_trajectory(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """A no_gesture gap: the generator's no_gesture (hand hidden or resting low), or, one time in three, a raised
    hand drifting idly in mid-frame, which a recogniser must not mistake for a swipe or a static pose."""
    traj = gesture_trajectory("no_gesture", rng, num_frames)
    if rng.random() < 1 / 3:
        traj[:, _VISIBLE] = 1.0
        traj[:, _X] = rng.uniform(0.3, 0.7) + _wobble(rng, num_frames, 0.025, smooth=9)
        traj[:, _Y] = rng.uniform(0.35, 0.65) + _wobble(rng, num_frames, 0.025, smooth=9)
    return traj


def _stream(
    num_gestures: int | None, seed: int, size: int, gap: Sequence[int], duration: Sequence[int]
) -> Iterator[tuple[np.ndarray, int, bool]]:
    """`iter_stream_frames` plus a flag marking each gesture's first frame (two gestures of one class may touch
    when gaps can be empty, so labels alone do not delimit them)."""
    gap, duration = _check_range("gap", gap, 0), _check_range("duration", duration, 1)
    rng = np.random.default_rng((seed, 0, 2))
    scene = _Scene(rng, size)
    gestures = [c for c in GESTURE_CLASSES if c != "no_gesture"]
    count = 0
    while True:
        idle = int(rng.integers(gap[0], gap[1] + 1))
        if idle:
            for row in _idle_trajectory(rng, idle):
                yield scene.render(row, rng), 0, False
        if num_gestures is not None and count >= num_gestures:
            return
        class_name = gestures[int(rng.integers(len(gestures)))]
        label = GESTURE_CLASSES.index(class_name)
        length = int(rng.integers(duration[0], duration[1] + 1))
        for t, row in enumerate(gesture_trajectory(class_name, rng, length, hold=False)):
            yield scene.render(row, rng), label, t == 0
        count += 1


def generate_stream(
    out_path: str | Path,
    *,
    num_gestures: int = 12,
    seed: int = 0,
    size: int = 160,
    gap: tuple[int, int] = GAP,
    duration: tuple[int, int] = DURATION,
) -> dict:
    """Write a gesture stream (`iter_stream_frames`) to an mp4 and its frame-level ground truth to
    ``<out_path without suffix>.timeline.json`` (``stream.mp4`` -> ``stream.timeline.json``).

    Args:
        out_path: mp4 path to write.
        num_gestures: gestures in the stream.
        seed: stream seed.
        size: frame height and width.
        gap: inclusive range of no-gesture gap lengths in frames.
        duration: inclusive range of gesture lengths in frames.

    Returns:
        The timeline: ``classes``, ``fps``, ``num_frames``, ``labels`` (class index per frame), ``segments`` (the
        gestures as ``{"label": name, "start", "end"}`` with ``end`` exclusive; every other frame is `no_gesture`),
        ``video`` (mp4 path) and ``seed``.
    """
    out_path = Path(out_path)
    labels: list[int] = []
    segments: list[dict] = []
    with VideoWriter(out_path, FPS) as writer:
        for t, (frame, label, first) in enumerate(_stream(num_gestures, seed, size, gap, duration)):
            writer.write(frame)
            labels.append(label)
            if first:
                segments.append({"label": GESTURE_CLASSES[label], "start": t, "end": t + 1})
            elif label:
                segments[-1]["end"] = t + 1
    timeline = {
        "classes": list(GESTURE_CLASSES),
        "fps": FPS,
        "num_frames": len(labels),
        "labels": labels,
        "segments": segments,
        "video": str(out_path),
        "seed": seed,
    }
    out_path.with_suffix(".timeline.json").write_text(json.dumps(timeline) + "\n")
    return timeline




def generate_stream_set(
    out_dir: str | Path,
    *,
    num_streams: Sequence[int] = (60, 10, 24),
    num_gestures: int = 20,
    seed: int = 0,
    size: int = 128,
    gap: tuple[int, int] = GAP,
    duration: tuple[int, int] = DURATION,
    num_workers: int = 1,
    progress: bool = True,
) -> dict:
    """Write train / val / test sets of gesture streams as mp4 files with IPN Hand annotations (module docstring).

    Stream ``j`` of the whole set (train first, then val, then test) is `generate_stream` with seed
    ``seed * 1_000_000 + j``, so no seed serves two splits and a test stream is never seen in training.

    Args:
        out_dir: output directory (created).
        num_streams: streams in the train, val and test splits.
        num_gestures: gestures per stream.
        seed: set seed.
        size: frame height and width.
        gap: inclusive range of no-gesture gap lengths in frames (12 frames per second).
        duration: inclusive range of gesture lengths in frames.
        num_workers: processes rendering and encoding in parallel.
        progress: show a progress bar.

    Returns:
        A summary: ``out_dir``, ``classes``, ``fps`` and per split the stream ``seeds``, ``num_frames`` (total)
        and ``num_segments`` (annotation lines).
    """
    if len(num_streams) != 3 or min(num_streams) < 0 or num_streams[0] < 1:
        raise ValueError(f"num_streams must be three counts (train, val, test) with at least one training stream, "
                         f"got {num_streams!r}")
    if num_gestures < 1:
        raise ValueError(f"num_gestures must be at least 1, got {num_gestures}")
    _check_range("gap", gap, 0), _check_range("duration", duration, 1)
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    splits, first = {}, 0
    for name, count in zip(IPN_SPLIT_FILES, num_streams):
        splits[name] = [seed * 1_000_000 + j for j in range(first, first + count)]
        first += count
    tasks = [(out_dir, s, num_gestures, size, tuple(gap), tuple(duration)) for seeds in splits.values() for s in seeds]
    lines = {stream_seed: rows for stream_seed, rows in render_all(
        _write_set_stream, tasks, num_workers=num_workers, desc="streams", unit="stream", progress=progress,
        start_method="spawn").values()}
    (out_dir / "classIdx.txt").write_text(
        "id,label,name\n" + "".join(f"{i + 1},{c},{c.replace('_', ' ')}\n" for i, c in enumerate(GESTURE_CLASSES)))
    header = "video,label,id,t_start,t_end,frames\n"
    summary = {"out_dir": str(out_dir), "classes": list(GESTURE_CLASSES), "fps": FPS, "splits": {}}
    for name, seeds in splits.items():
        rows = [row for s in seeds for row in lines[s]]
        (out_dir / IPN_SPLIT_FILES[name]).write_text(header + "".join(row + "\n" for row in rows))
        summary["splits"][name] = {"seeds": seeds, "num_segments": len(rows),
                                   "num_frames": sum(int(row.rsplit(",", 1)[1]) for row in rows)}
    return summary


def stream_video_name(seed: int) -> str:
    """Video name of the stream with this seed in a stream set."""
    return f"stream_{seed:08d}"


def _write_set_stream(task: tuple) -> tuple[int, list[str]]:
    """Worker: write one stream of a set; returns its seed and its annotation lines (gestures and gaps)."""
    out_dir, seed, num_gestures, size, gap, duration = task
    video = stream_video_name(seed)
    timeline = generate_stream(Path(out_dir) / "videos" / f"{video}.mp4", num_gestures=num_gestures, seed=seed,
                               size=size, gap=gap, duration=duration)
    Path(out_dir, "videos", f"{video}.timeline.json").unlink()  # the annotation list is the ground truth here
    rows, t = [], 0
    for segment in [*timeline["segments"], None]:
        start = timeline["num_frames"] if segment is None else segment["start"]
        if start > t:  # the no_gesture gap before this gesture (or after the last one)
            rows.append(_ipn_row(video, "no_gesture", t, start))
        if segment is not None:
            rows.append(_ipn_row(video, segment["label"], segment["start"], segment["end"]))
            t = segment["end"]
    return seed, rows


def _ipn_row(video: str, label: str, start: int, end: int) -> str:
    """IPN annotation line of frames [start, end) (0-based, end exclusive): 1-based inclusive t_start, t_end."""
    return f"{video},{label},{GESTURE_CLASSES.index(label) + 1},{start + 1},{end},{end - start}"
