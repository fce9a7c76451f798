"""Plots people would rather look at than read (matplotlib, Agg backend: no display needed)."""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

__all__ = ["plot_confusion_matrix", "plot_timeline"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: np.ndarray, class_names: list[str], path: str | Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix (true class per row) with the counts written in each cell."""
    plt = _pyplot()
    cm = np.asarray(cm)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(class_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.5 * n, 0.8 + 0.5 * n))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _runs(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, start, length) of each run of equal consecutive labels."""
    if len(labels) == 0:
        return []
    starts = np.concatenate([[0], np.flatnonzero(np.diff(labels)) + 1])
    lengths = np.diff(np.concatenate([starts, [len(labels)]]))
    return [(int(labels[s]), int(s), int(n)) for s, n in zip(starts, lengths)]


def plot_timeline(pred_labels: Sequence[int], class_names: list[str], path: str | Path, *,
                  true_labels: Sequence[int] | None = None, scores: Sequence[float] | None = None,
                  events: Sequence[Mapping] | None = None, correct: Sequence[bool] | None = None,
                  fps: float | None = None, title: str = "") -> Path:
    """Frame-level timeline of a stream: predicted (and true) classes as coloured bands, scores as a line, and the
    gesture events as boxes under the bands.

    Args:
        pred_labels: predicted class index per frame; -1 where no prediction exists yet (drawn blank).
        class_names: names of the class indices, for the legend.
        path: PNG to write (parent directories are created).
        true_labels: ground-truth class index per frame, drawn as a band above the prediction.
        scores: score of the predicted class per frame (NaN where none), drawn below the bands.
        events: gesture events (``label_index``, ``start_frame``, ``end_frame`` inclusive, ``emitted_at_frame``),
            drawn in a row of their own as boxes in the class colour over the frames they cover, with a triangle
            where each was emitted.
        correct: per event, whether it matched a true gesture: a green outline if so, red if not.
        fps: frame rate; adds a time axis in seconds on top.
        title: figure title.

    Returns:
        `path`.
    """
    plt = _pyplot()
    pred = np.asarray(pred_labels, dtype=np.int64)
    rows = [("prediction", pred)]
    if true_labels is not None:
        truth = np.asarray(true_labels, dtype=np.int64)
        if len(truth) != len(pred):
            raise ValueError(f"{len(truth)} true labels for {len(pred)} predicted frames")
        rows.insert(0, ("truth", truth))
    for _, labels in rows:
        if len(labels) and labels.max() >= len(class_names):
            raise ValueError(f"class index {labels.max()} out of range for {len(class_names)} class names")
    events = list(events or [])
    if correct is not None and len(correct) != len(events):
        raise ValueError(f"{len(correct)} correctness flags for {len(events)} events")
    num_frames = max(len(pred), 1)
    num_classes = max(len(class_names), 1)
    # Distinct qualitative colours while they last (tab20's ten dark hues, then their light twins, so neighbouring
    # classes never share a hue); a continuous map spreads more classes over its range.
    if num_classes <= 20:
        order = list(range(0, 20, 2)) + list(range(1, 20, 2))
        colors = [plt.get_cmap("tab20")(order[i]) for i in range(num_classes)]
    else:
        colors = [plt.get_cmap("turbo")(i / (num_classes - 1)) for i in range(num_classes)]

    ratios = [1] if scores is None else [1.3, 1]  # bands, then the score line
    fig = plt.figure(figsize=(12, 1.4 + 1.2 * sum(ratios)))
    grid = fig.add_gridspec(len(ratios), 1, height_ratios=ratios, hspace=0.08)
    ax = fig.add_subplot(grid[0])
    shown: set[int] = set()
    offset = 1 if events else 0  # the events row sits under the bands
    for i, e in enumerate(events):
        edge = "black" if correct is None else ("tab:green" if correct[i] else "tab:red")
        ax.broken_barh([(e["start_frame"], e["end_frame"] + 1 - e["start_frame"])], (0.15, 0.7),
                       facecolors=colors[e["label_index"]], edgecolors=edge, linewidth=1.5)
        ax.plot(e["emitted_at_frame"] + 0.5, 0.88, marker="v", color=edge, markersize=6, clip_on=False)
        shown.add(e["label_index"])
    for y, (_, labels) in enumerate(reversed(rows), offset):
        spans: dict[int, list[tuple[int, int]]] = {}
        for label, start, length in _runs(labels):
            if label >= 0:
                spans.setdefault(label, []).append((start, length))
        for label, bars in spans.items():
            ax.broken_barh(bars, (y + 0.1, 0.8), facecolors=colors[label], linewidth=0)
            shown.add(label)
    row_names = (["events"] if events else []) + [name for name, _ in reversed(rows)]
    ax.set_yticks([y + 0.5 for y in range(len(row_names))], row_names)
    ax.set_ylim(0, len(row_names))
    ax.set_xlim(0, num_frames)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colors[i]) for i in sorted(shown)]
    ax.legend(handles, [class_names[i] for i in sorted(shown)], loc="upper left", bbox_to_anchor=(1.01, 1.0),
              fontsize=7, frameon=False, ncol=1 + len(shown) // 12)
    if fps:
        top = ax.secondary_xaxis("top", functions=(lambda f: f / fps, lambda s: s * fps))
        top.set_xlabel("seconds")
    if title:
        ax.set_title(title)
    bottom = ax
    if scores is not None:
        bottom = fig.add_subplot(grid[1], sharex=ax)
        # Frame i's band spans [i, i + 1): its score sits in the middle.
        bottom.plot(np.arange(len(scores)) + 0.5, np.asarray(scores, dtype=np.float64), color="black", linewidth=0.8)
        bottom.set_ylim(0, 1.02)
        bottom.set_ylabel("score")
        bottom.grid(alpha=0.3)
        ax.tick_params(labelbottom=False)
    bottom.set_xlabel("frame")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path
