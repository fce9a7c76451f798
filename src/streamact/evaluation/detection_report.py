"""Detection evaluation report: per-class AP tables (markdown + JSON), precision/recall plots, the error breakdown
and example frames with predicted and true boxes (PNG). Used by `streamact eval` on a detection checkpoint."""
from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from streamact.data.datasets.detection import DetectionAnnotations, read_frame
from streamact.evaluation.detection import ERROR_TYPES, DetectionEvaluation
from streamact.viz import _pyplot

__all__ = ["write_detection_report", "frames_worth_drawing", "clear_of", "percent"]

_TRUE, _PRED = (40, 220, 60), (255, 70, 40)


def percent(x: float | None) -> str:
    """A fraction as a percentage with one decimal for report tables; "–" for a missing value."""
    return "–" if x is None else f"{100 * x:.1f}"


def _markdown(summary: dict, results: DetectionEvaluation) -> str:
    lines = [
        "# Detection results",
        "",
        f"{summary['num_videos']} videos, {summary['num_tubes']} linked tubes. Values in %.",
        "",
        "| metric | value |",
        "| --- | --- |",
        f"| frame-mAP@0.5 (every frame counts, as ACT / MOC) | {percent(summary['frame_map@0.5'])} |",
        f"| frame-mAP@0.5, trimmed (AMMA's mode: unannotated frames ignored; not comparable) | "
        f"{percent(summary['frame_map@0.5_trimmed'])} |",
        *(f"| video-mAP@{t} | {percent(summary[f'video_map@{t}'])} |" for t in ("0.2", "0.5", "0.75", "0.5:0.95")),
        "",
        "## Per class",
        "",
        "| class | frame-AP@0.5 | video-AP@0.2 | video-AP@0.5 | video-AP@0.75 | true boxes | true tubes | detections |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in summary["per_class"].items():
        lines.append(f"| {name} | {percent(row['frame_ap@0.5'])} | {percent(row['video_ap@0.2'])} | "
                     f"{percent(row['video_ap@0.5'])} | {percent(row['video_ap@0.75'])} | {row['gt_boxes']} | "
                     f"{row['gt_tubes']} | {row['detections']} |")
    lines += [
        "",
        "## frame-mAP error breakdown",
        "",
        "Shares of the ranked detections (integrated over recall like AP) that are localisation errors (right class, "
        "IoU < 0.5 or a duplicate), classification errors (IoU >= 0.5 with another class's box), time errors (class "
        "present in the video but not on that frame), other errors, and the missed share (1 - recall). With "
        "frame-mAP they sum to 100.",
        "",
        "| class | AP | " + " | ".join(ERROR_TYPES) + " |",
        "| --- | --- | " + " | ".join("---" for _ in ERROR_TYPES) + " |",
    ]
    frame = results.frame
    for c, name in enumerate(results.labels):
        if frame.num_gt[c]:
            lines.append(f"| {name} | {100 * frame.ap[c]:.1f} | "
                         + " | ".join(f"{100 * frame.errors[k][c]:.1f}" for k in ERROR_TYPES) + " |")
    lines.append(f"| **mean** | {percent(summary['frame_map@0.5'])} | "
                 + " | ".join(percent(summary["frame_errors"][k]) for k in ERROR_TYPES) + " |")
    if summary["direction"]:
        lines += [
            "",
            "## Direction-reversed pairs",
            "",
            "Classes told apart only by the direction of a movement. Of the true boxes of each class found by a "
            "detection of either class of its pair (IoU >= 0.5), the share whose best such detection names the "
            "right one; the pair's balanced accuracy is the mean of its two (50 = cannot tell them apart), with its "
            "95% bootstrap interval over videos.",
            "",
            "| pair | balanced accuracy | class | accuracy | found / true boxes |",
            "| --- | --- | --- | --- | --- |",
        ]
        for pair, row in summary["direction"].items():
            low, high = (percent(x) for x in row["interval_95"])
            for i, (name, cls) in enumerate(row["classes"].items()):
                first = f"| {pair} | {percent(row['balanced_accuracy'])} ({low}-{high}) |" if i == 0 else "| | |"
                lines.append(f"{first} {name} | {percent(cls['accuracy'])} | {cls['found']} / {cls['boxes']} |")
    return "\n".join(lines) + "\n"


def _plot_pr(precisions: list[np.ndarray], recalls: list[np.ndarray], aps: np.ndarray, labels: list[str],
             path: Path, title: str) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for c, name in enumerate(labels):
        if np.isnan(aps[c]):
            continue
        r = np.concatenate([[0.0], recalls[c]])
        p = np.concatenate([[1.0], precisions[c]])
        ax.plot(r, p, label=f"{name} ({100 * aps[c]:.1f})", lw=1.5)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _plot_errors(results: DetectionEvaluation, path: Path) -> None:
    plt = _pyplot()
    frame = results.frame
    classes = [c for c in range(len(results.labels)) if frame.num_gt[c]]
    names = [results.labels[c] for c in classes] + ["mean"]
    parts = {"AP": list(frame.ap[classes]) + [frame.map]}
    mean = frame.mean_errors()
    for k in ERROR_TYPES:
        parts[k] = list(frame.errors[k][classes]) + [mean[k]]
    fig, ax = plt.subplots(figsize=(8, 1.2 + 0.4 * len(names)))
    left = np.zeros(len(names))
    colors = ["#2ca02c", "#ff7f0e", "#d62728", "#9467bd", "#8c564b", "#7f7f7f"]
    for (k, values), color in zip(parts.items(), colors):
        values = 100 * np.asarray(values)
        ax.barh(names, values, left=left, color=color, label=k)
        left += values
    ax.set_xlim(0, 100)
    ax.invert_yaxis()
    ax.set_xlabel("% of frame-AP budget")
    ax.set_title("frame-mAP@0.5 error breakdown")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def clear_of(box: tuple[float, float, float, float], placed: Sequence[tuple[float, float, float, float]]
             ) -> tuple[float, float, float, float]:
    """`box` (x1, y1, x2, y2) moved down until it overlaps none of `placed`."""
    x1, y1, x2, y2 = box
    while covered := [b for b in placed if x1 < b[2] and b[0] < x2 and y1 < b[3] and b[1] < y2]:
        shift = max(b[3] for b in covered) + 1 - y1
        y1, y2 = y1 + shift, y2 + shift
    return x1, y1, x2, y2


def _draw_frame(annotations: DetectionAnnotations, results: DetectionEvaluation, video: str, frame: int,
                path: Path, *, min_score: float, scale: int) -> None:
    from PIL import Image, ImageDraw

    image = Image.fromarray(read_frame(annotations, video, frame))
    image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    draw = ImageDraw.Draw(image)

    captions = [((4, 4), f"{video} frame {frame}   green: true   red: predicted (score, #tube)", (255, 255, 255))]
    for label, tube in annotations.tubes(video):
        row = tube[tube[:, 0] == frame]
        if len(row):
            draw.rectangle([float(v) * scale for v in row[0, 1:]], outline=_TRUE, width=2)
            captions.append(((row[0, 1] * scale + 3, row[0, 4] * scale - 14), annotations.labels[label], _TRUE))
    # The best detection per class above `min_score`, with the id of the linked tube that covers this frame.
    tube_ids = {}
    for t in results.tubes.get(video, []):
        if t.frames[0] <= frame <= t.frames[-1]:
            tube_ids.setdefault(t.label, t.tube_id)
    shown = set()
    for d in sorted(results.detections.get(video, {}).get(frame, []), key=lambda d: -d.score):
        if d.score < min_score or d.label in shown:
            continue
        shown.add(d.label)
        draw.rectangle([v * scale for v in (d.x1, d.y1, d.x2, d.y2)], outline=_PRED, width=2)
        tube = f" #{tube_ids[d.label]}" if d.label in tube_ids else ""
        captions.append(((d.x1 * scale + 3, d.y1 * scale + 3), f"{annotations.labels[d.label]} {d.score:.2f}{tube}",
                         _PRED))
    # Captions over all outlines, dark text on the outline's colour (readable on any background); one that would
    # cover a caption already drawn (overlapping actors) moves down below it.
    placed: list[tuple[float, float, float, float]] = []
    for (x, y), text, color in captions:
        box = draw.textbbox((x, y), text)
        placed.append(clear_of(box, placed))
        draw.rectangle(placed[-1], fill=color)
        draw.text((x, y + placed[-1][1] - box[1]), text, fill=(0, 0, 0))
    image.save(path)


def frames_worth_drawing(
    annotations: DetectionAnnotations, videos: Sequence[str], num: int = 4
) -> list[tuple[str, int]]:
    """(video, frame) pairs for the report: the middle frame of the first true tube of `num` videos spread over
    `videos` (a frame where something should be detected)."""
    picks = []
    for video in [videos[i] for i in np.linspace(0, len(videos) - 1, min(num, len(videos))).astype(int)]:
        tube = next((t for _, t in annotations.tubes(video)), None)
        if tube is not None:
            picks.append((video, int(tube[len(tube) // 2, 0])))
    return picks


def write_detection_report(
    out_dir: str | Path,
    results: DetectionEvaluation,
    annotations: DetectionAnnotations,
    frames_to_draw: Sequence[tuple[str, int]] = (),
    *,
    min_score: float = 0.2,
    scale: int = 3,
) -> dict[str, Path]:
    """Write the report of one detection evaluation.

    Files: ``detection_metrics.json`` (`DetectionEvaluation.summary`), ``detection_metrics.md`` (headline metrics,
    per-class AP table, error breakdown), ``pr_frame.png`` and ``pr_video.png`` (per-class precision/recall at
    IoU 0.5), ``errors.png`` (error breakdown bars) and ``frames/<video>_<frame>.png`` (true boxes green, the best
    detection per class red with its score and tube id).

    Args:
        out_dir: folder to write into (created).
        results: from `streamact.evaluation.detection.evaluate_detections`.
        annotations: ground truth (and frames).
        frames_to_draw: (video, 1-based frame) pairs to draw.
        min_score: detections below this score are not drawn.
        scale: upscaling of drawn frames (small synthetic frames are hard to read).

    Returns:
        {kind: path} of the files written.
    """
    out = Path(out_dir)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    summary = results.summary()
    paths = {"json": out / "detection_metrics.json", "markdown": out / "detection_metrics.md",
             "pr_frame": out / "pr_frame.png", "pr_video": out / "pr_video.png", "errors": out / "errors.png"}
    paths["json"].write_text(json.dumps(summary, indent=2) + "\n")
    paths["markdown"].write_text(_markdown(summary, results))
    _plot_pr(results.frame.precision, results.frame.recall, results.frame.ap, results.labels, paths["pr_frame"],
             "frame-AP@0.5 per class (precision / recall)")
    _plot_pr(results.video.precision[0.5], results.video.recall[0.5], results.video.ap[0.5], results.labels,
             paths["pr_video"], "video-AP@0.5 per class (precision / recall)")
    _plot_errors(results, paths["errors"])
    for video, frame in frames_to_draw:
        name = f"{video.replace('/', '_')}_{frame:05d}.png"
        _draw_frame(annotations, results, video, frame, out / "frames" / name, min_score=min_score, scale=scale)
        paths[f"frame:{video}:{frame}"] = out / "frames" / name
    return paths
