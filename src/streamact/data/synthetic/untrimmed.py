"""Untrimmed synthetic gesture videos: the labelled gesture fills only a minority of the frames (`generate_untrimmed`)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from streamact.data.synthetic.gestures import _check_range, _generate
from streamact.data.synthetic.render import GESTURE_CLASSES

__all__ = ["generate_untrimmed"]


def generate_untrimmed(
    out_dir: str | Path,
    *,
    per_class: int,
    seed: int = 0,
    size: int = 160,
    length: tuple[int, int] = (96, 160),
    gesture_fraction: tuple[float, float] = (0.15, 0.35),
    subjects: int | None = None,
    splits: Sequence[float] = (0.7, 0.15, 0.15),
    num_workers: int = 1,
    progress: bool = True,
) -> dict:
    """Write an untrimmed gesture dataset: long videos labelled with a gesture that fills only a minority of frames.

    Outside the gesture the video shows idle behaviour (no hand, or a resting hand) and distractor motion, so most
    frames of a labelled video do not show its label: induced label noise, as adaptive clip selection expects. The
    annotation format is that of `generate_gestures`, plus ``segments.json`` mapping each id to
    ``{"label", "start", "end", "num_frames"}`` with the true gesture frames ``[start, end)``; a `no_gesture` video's
    segment is the whole video.

    Args:
        out_dir: output directory (created).
        per_class: videos per class.
        seed: dataset seed; video ``i`` is rendered from ``np.random.default_rng((seed, i, 1))``.
        size: frame height and width.
        length: inclusive range of video lengths in frames.
        gesture_fraction: range of the fraction of frames the gesture fills.
        subjects: number of recording subjects, each with one scene (background, skin, sleeve, lighting,
            distractors) in which it performs every class, as in real gesture datasets: the scene then tells
            nothing about the label, and a model cannot fit the idle frames' labels by recognising each video's
            scene. Take ``j`` of every class is by subject ``j % subjects``. None: a new scene per video.
        splits: train, val, test fractions.
        num_workers: processes rendering and encoding in parallel.
        progress: show a progress bar.

    Returns:
        The summary of `generate_gestures`; records carry ``meta["segment"] = [start, end]``.
    """
    fraction = _check_range("gesture_fraction", gesture_fraction, 0.0)
    if fraction[1] > 1.0:
        raise ValueError(f"gesture_fraction must be at most 1, got {gesture_fraction!r}")
    if subjects is not None and subjects < 1:
        raise ValueError(f"subjects must be at least 1, got {subjects}")
    num_classes = len(GESTURE_CLASSES)
    summary = _generate(
        "untrimmed",
        out_dir,
        per_class=per_class,
        seed=seed,
        size=size,
        splits=splits,
        lengths=_check_range("length", length, 1),
        extra=lambda i: (fraction, None if subjects is None else (i // num_classes) % subjects),
        num_workers=num_workers,
        progress=progress,
    )
    segments = {
        r.meta["id"]: {
            "label": r.meta["label_name"],
            "start": r.meta["segment"][0],
            "end": r.meta["segment"][1],
            "num_frames": r.num_frames,
        }
        for recs in summary["records"].values()
        for r in recs
    }
    (Path(out_dir) / "segments.json").write_text(json.dumps(dict(sorted(segments.items())), indent=1) + "\n")
    return summary


