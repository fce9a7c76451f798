"""Trimmed synthetic gesture clips with Jester-format annotations (`generate_gestures`), and the writer shared
with the untrimmed variant (render in parallel, write mp4 files, split per class, write the CSVs)."""
from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from streamact.data.records import VideoRecord
from streamact.data.synthetic.parallel import render_all
from streamact.data.synthetic.render import (
    FPS,
    GESTURE_CLASSES,
    REVERSED_PAIRS,
    _Scene,
    gesture_trajectory,
    render_clip,
)
from streamact.io.writer import VideoWriter

__all__ = ["generate_gestures"]

logger = logging.getLogger(__name__)


def _check_range(name: str, value: Sequence[float], low: float) -> tuple:
    if len(value) != 2 or not low <= value[0] <= value[1]:
        raise ValueError(f"{name} must be a (min, max) pair with {low} <= min <= max, got {value!r}")
    return tuple(value)


def _split_sizes(per_class: int, splits: Sequence[float]) -> tuple[int, int, int]:
    """Clips per class in train, val and test.

    Every class keeps a training clip, and every split with a non-zero fraction gets a clip of every class whenever
    `per_class` allows (3 and more): rounding alone would leave val empty at 4 per class, and training then has
    nothing to validate on.
    """
    if per_class < 1:
        raise ValueError(f"per_class must be at least 1, got {per_class}")
    if len(splits) != 3 or min(splits) < 0 or not math.isclose(sum(splits), 1.0, abs_tol=1e-6):
        raise ValueError(f"splits must be three non-negative fractions summing to 1, got {splits!r}")
    bounds = np.round(np.cumsum(splits) * per_class).astype(int)
    sizes = [max(1, int(bounds[0]))]  # every class must be trainable
    sizes.append(max(0, min(int(bounds[1]), per_class) - sizes[0]))
    sizes.append(per_class - sum(sizes))
    for split in (1, 2):
        if splits[split] > 0 and sizes[split] == 0 and sizes[0] > 1:
            sizes[0] -= 1
            sizes[split] += 1
    return sizes[0], sizes[1], sizes[2]


def _write_clip(task: tuple) -> tuple[int, int, int, int]:
    """Worker: render and write one video. Returns (index, num_frames, gesture start, gesture end)."""
    kind, out_dir, seed, index, class_name, size, lengths, extra = task
    path = Path(out_dir) / "videos" / f"{index:06d}.mp4"
    if kind == "trimmed":
        rng = np.random.default_rng((seed, index))
        num_frames = int(rng.integers(lengths[0], lengths[1] + 1))
        with VideoWriter(path, FPS) as writer:
            for frame in render_clip(class_name, rng, size, num_frames):
                writer.write(frame)
        return index, num_frames, 0, num_frames
    fraction_range, subject = extra
    rng = np.random.default_rng((seed, index, 1))
    num_frames = int(rng.integers(lengths[0], lengths[1] + 1))
    fraction = rng.uniform(*fraction_range)
    scene = _Scene(rng if subject is None else np.random.default_rng((seed, subject, 2)), size)
    traj = gesture_trajectory("no_gesture", rng, num_frames)
    if class_name == "no_gesture":
        start, end = 0, num_frames
    else:
        length = min(num_frames, max(1, round(fraction * num_frames)))
        start = int(rng.integers(0, num_frames - length + 1))
        end = start + length
        traj[start:end] = gesture_trajectory(class_name, rng, length, hold=False)
    with VideoWriter(path, FPS) as writer:
        for row in traj:
            writer.write(scene.render(row, rng))
    return index, num_frames, start, end


def _generate(
    kind: str,
    out_dir: str | Path,
    *,
    per_class: int,
    seed: int,
    size: int,
    splits: Sequence[float],
    lengths: tuple[int, int],
    extra: Callable[[int], tuple] | None,
    num_workers: int,
    progress: bool,
) -> dict:
    """Render `per_class` videos per class and write them with Jester-format annotations (shared by both variants)."""
    start_time = time.perf_counter()
    out_dir = Path(out_dir)
    (out_dir / "videos").mkdir(parents=True, exist_ok=True)
    sizes = _split_sizes(per_class, splits)
    for name, count, fraction in zip(("train", "val", "test"), sizes, splits):
        if count == 0 and fraction > 0:
            logger.warning("%s: the %s split is empty: %d video(s) per class cannot fill train, val and test; "
                           "generate 3 or more per class", out_dir, name, per_class)
    num_classes = len(GESTURE_CLASSES)
    # Clip index i has class i % C and is the (i // C)-th draw of that class. Clips are i.i.d., so taking each
    # class's draws in order already gives a random stratified split.
    split_of = {}
    for i in range(per_class * num_classes):
        j = i // num_classes
        split_of[i] = "train" if j < sizes[0] else "val" if j < sizes[0] + sizes[1] else "test"
    tasks = [
        (kind, str(out_dir), seed, i, GESTURE_CLASSES[i % num_classes], size, lengths, extra(i) if extra else None)
        for i in split_of
    ]
    results = render_all(_write_clip, tasks, num_workers=num_workers, desc=f"synth {kind}", progress=progress,
                         chunksize=4)

    (out_dir / "labels.csv").write_text("".join(f"{name}\n" for name in GESTURE_CLASSES))
    records: dict[str, list[VideoRecord]] = {"train": [], "val": [], "test": []}
    for i, split in split_of.items():
        _, num_frames, start, end = results[i]
        label = i % num_classes
        meta = {"id": f"{i:06d}", "label_name": GESTURE_CLASSES[label], "split": split}
        if kind == "untrimmed":
            meta["segment"] = [start, end]
        path = out_dir / "videos" / f"{i:06d}.mp4"
        records[split].append(VideoRecord(path=path, label=label, num_frames=num_frames, meta=meta))
    for split, recs in records.items():
        lines = "".join(f"{r.meta['id']};{r.meta['label_name']}\n" for r in recs)
        (out_dir / f"{split}.csv").write_text(lines)
    summary = {
        "kind": kind,
        "out_dir": str(out_dir),
        "classes": list(GESTURE_CLASSES),
        "reversed_pairs": [list(p) for p in REVERSED_PAIRS],
        "seed": seed,
        "size": size,
        "fps": FPS,
        "per_class": per_class,
        "splits": {split: len(recs) for split, recs in records.items()},
        "num_videos": len(results),
        "num_frames": sum(r[1] for r in results.values()),
        "seconds": round(time.perf_counter() - start_time, 3),
    }
    (out_dir / "generation.json").write_text(json.dumps(summary, indent=2) + "\n")
    return {**summary, "records": records}


def generate_gestures(
    out_dir: str | Path,
    *,
    per_class: int,
    seed: int = 0,
    size: int = 160,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    num_frames: tuple[int, int] = (24, 36),
    num_workers: int = 1,
    progress: bool = True,
) -> dict:
    """Write a trimmed synthetic gesture dataset: ``videos/<id>.mp4`` and Jester-format CSVs (see module docstring).

    Args:
        out_dir: output directory (created).
        per_class: videos per class, split per class into train/val/test (at least one training video per class).
        seed: dataset seed; clip ``i`` is rendered from ``np.random.default_rng((seed, i))``.
        size: frame height and width.
        splits: train, val, test fractions.
        num_frames: inclusive range of clip lengths, drawn per clip.
        num_workers: processes rendering and encoding in parallel (output is identical for any value).
        progress: show a progress bar.

    Returns:
        Summary (also written to ``generation.json``: classes, seed, size, fps, split sizes, number of videos and
        frames, seconds taken) plus ``records``: per split, the `VideoRecord`s (meta: id, label_name, split).
    """
    return _generate(
        "trimmed",
        out_dir,
        per_class=per_class,
        seed=seed,
        size=size,
        splits=splits,
        lengths=_check_range("num_frames", num_frames, 1),
        extra=None,
        num_workers=num_workers,
        progress=progress,
    )


