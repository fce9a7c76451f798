"""Spatio-temporal action detection metrics: frame-mAP, video-mAP and the frame-level error breakdown (numpy only).

The protocol is ACT's (Kalogeiton et al., "Action Tubelet Detector for Spatio-Temporal Action Localization"), as
used by MOC-Detector and AMMA, so numbers compare with theirs:

* **frame-mAP** (`frame_ap`): per class, all detections of the test videos ranked by score; a detection is a true
  positive when its frame has a not-yet-matched ground-truth box of its class with IoU >= 0.5 (best IoU first),
  otherwise a false positive, including detections on frames without any annotation (the standard protocol:
  unannotated frames of untrimmed videos are scored). AP is the trapezoidal area under the raw precision/recall
  curve starting at (recall 0, precision 1), no interpolation; IoU uses the "+1" pixel convention.
  ``trimmed=True`` is AMMA's default evaluation mode, *not* comparable with ACT/MOC numbers: a detection of class
  c on a frame that no tube of class c covers, in a video that has a tube of class c, is ignored.
* **error breakdown** (same pass): every false positive is a localisation error (right class on an annotated
  frame of that class, IoU too low or box already matched), classification error (IoU >= 0.5 with a box of
  another class), time error (the video contains the class, but not on that frame) or other; each error's rate
  among the ranked detections is integrated over recall like AP, and missed = 1 - final recall. AP plus the five
  errors sum to 1 for every class with ground truth.
* **direction accuracy** (`direction_accuracy`, for the ``motion_pairs`` of the annotations, classes told apart
  only by the direction of a movement): of the true boxes of such a class that a detection of the pair finds
  (IoU >= 0.5), the share whose best such detection names the right direction; chance is 50%. Not part of ACT.
* **video-mAP** (`video_ap`): per video and class the tubes are reduced by hard 3-D NMS (spatio-temporal IoU
  0.3), then ranked across videos; a tube is a true positive when its spatio-temporal IoU with an unmatched
  ground-truth tube of its class in the same video reaches the threshold. Spatio-temporal IoU = temporal IoU
  (inclusive frame ranges) x mean per-frame IoU over the temporal intersection. Reported at 0.2, 0.5, 0.75 and
  averaged over 0.5:0.05:0.95.

`evaluate_detections` computes everything from a detector's tubelets (per-frame detections and linked tubes via
`streamact.inference.tubes`), on a dataset or on one scene with its ground truth (`scene_annotations`); `streamact.evaluation.detection_report.write_detection_report` writes it as tables,
plots and example frames.

mAP is the mean over classes that have ground truth in the evaluated videos (a class without ground truth has AP
NaN and is left out). All values are fractions in [0, 1].
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from streamact.data.datasets.detection import DetectionAnnotations
from streamact.inference.tubes import Detection, Tube, Tubelet, frame_detections, iou2d, link_tubes

__all__ = [
    "ERROR_TYPES",
    "VIDEO_AP_THRESHOLDS",
    "FrameAPResult",
    "DirectionResult",
    "VideoAPResult",
    "trapezoid_ap",
    "iou3dt",
    "nms3dt",
    "frame_ap",
    "direction_accuracy",
    "video_ap",
    "DetectionEvaluation",
    "evaluate_detections",
    "scene_annotations",
]

ERROR_TYPES = ("localization", "classification", "time", "other", "missed")
_RANGE_THRESHOLDS = [float(t) for t in np.round(np.arange(0.5, 0.951, 0.05), 2)]  # 0.5:0.05:0.95
VIDEO_AP_THRESHOLDS = tuple(dict.fromkeys([0.2, 0.5, 0.75] + _RANGE_THRESHOLDS))


def trapezoid_ap(values: np.ndarray, recall: np.ndarray, start: float = 1.0) -> float:
    """Area under a raw curve of `values` (precision, or an error rate) over recall by the trapezoid rule, from
    (recall 0, `start`): ACT's `pr_to_ap`, with precision starting at 1 and error rates at 0."""
    v = np.concatenate([[start], values])
    r = np.concatenate([[0.0], recall])
    return float(np.sum((r[1:] - r[:-1]) * (v[1:] + v[:-1]) / 2))


def _gt_by_frame(ann: DetectionAnnotations, videos: Sequence[str]) -> dict[tuple[str, int], dict[int, np.ndarray]]:
    out: dict[tuple[str, int], dict[int, list]] = {}
    for video in videos:
        for label, tube in ann.tubes(video):
            for row in tube:
                out.setdefault((video, int(row[0])), {}).setdefault(label, []).append(row[1:5])
    return {k: {label: np.array(b, np.float64) for label, b in v.items()} for k, v in out.items()}


@dataclass
class FrameAPResult:
    """frame-mAP and its error breakdown at one IoU threshold.

    Attributes:
        ap: per class (NaN without ground truth).
        errors: per error type (`ERROR_TYPES`), per class.
        precision, recall: per class, the raw curve after each ranked detection (for plots).
        num_gt, num_detections: per class.
        trimmed: whether AMMA's trimmed mode (ignore detections on unannotated frames) was used.
    """

    iou_threshold: float
    ap: np.ndarray
    errors: dict[str, np.ndarray]
    precision: list[np.ndarray]
    recall: list[np.ndarray]
    num_gt: np.ndarray
    num_detections: np.ndarray
    trimmed: bool = False

    @property
    def map(self) -> float:
        """Mean AP over classes with ground truth."""
        valid = self.num_gt > 0
        return float(np.mean(self.ap[valid])) if valid.any() else float("nan")

    def mean_errors(self) -> dict[str, float]:
        """Each error type averaged over classes with ground truth (with `map`, they sum to 1)."""
        valid = self.num_gt > 0
        return {k: float(np.mean(v[valid])) if valid.any() else float("nan") for k, v in self.errors.items()}


def frame_ap(
    detections: Mapping[str, Mapping[int, Sequence[Detection]]],
    annotations: DetectionAnnotations,
    videos: Sequence[str],
    *,
    iou_threshold: float = 0.5,
    trimmed: bool = False,
) -> FrameAPResult:
    """frame-AP per class, with the ACT error breakdown.

    Args:
        detections: {video: {1-based frame: [Detection, ...]}}; videos or frames missing mean no detections.
        annotations: ground truth.
        videos: the evaluated videos (e.g. ``annotations.videos("test")``); detections of other videos are ignored.
        iou_threshold: IoU for a true positive.
        trimmed: AMMA's trimmed mode (see the module docstring); not comparable with ACT/MOC numbers.
    """
    num_classes = len(annotations.labels)
    gt = _gt_by_frame(annotations, videos)
    labels_in_video = {v: {label for label, _ in annotations.tubes(v)} for v in videos}
    # Flatten (class, score, video, frame, box) and rank per class by decreasing score, ties in input order.
    ranked: list[list[tuple[float, str, int, np.ndarray]]] = [[] for _ in range(num_classes)]
    for video in videos:
        for frame, dets in detections.get(video, {}).items():
            for d in dets:
                ranked[d.label].append((d.score, video, int(frame), np.array(d[2:], np.float64)))
    ap = np.full(num_classes, np.nan)
    errors = {k: np.full(num_classes, np.nan) for k in ERROR_TYPES}
    precisions, recalls = [], []
    num_gt = np.zeros(num_classes, np.int64)
    num_dets = np.zeros(num_classes, np.int64)
    for c in range(num_classes):
        remaining = {k: v[c].copy() for k, v in gt.items() if c in v}
        num_gt[c] = sum(len(b) for b in remaining.values())
        annotated = set(remaining)  # frames with a box of class c (kept when all their boxes are matched)
        order = sorted(ranked[c], key=lambda item: -item[0])  # stable
        outcome = []  # per counted detection: "tp" or an error type
        for _, video, frame, box in order:
            key = (video, frame)
            if key in annotated:
                boxes = remaining.get(key)
                ious = iou2d(boxes, box) if boxes is not None and len(boxes) else np.zeros(0)
                if ious.size and ious.max() >= iou_threshold:
                    remaining[key] = np.delete(boxes, int(np.argmax(ious)), axis=0)
                    outcome.append("tp")
                else:
                    outcome.append("localization")
                continue
            if trimmed and c in labels_in_video[video]:
                continue  # AMMA's trimmed mode: unannotated frames of a video with this class do not count
            others = [b for label, b in gt.get(key, {}).items() if label != c]
            if others and iou2d(np.concatenate(others), box).max() >= iou_threshold:
                outcome.append("classification")
            elif c in labels_in_video[video]:
                outcome.append("time")
            else:
                outcome.append("other")
        num_dets[c] = len(outcome)
        outcome = np.array(outcome, dtype=object)
        counted = np.arange(1, len(outcome) + 1)
        tp = np.cumsum(outcome == "tp")
        precision = tp / counted if len(outcome) else np.zeros(0)
        recall = tp / num_gt[c] if num_gt[c] else np.zeros(len(outcome))
        precisions.append(precision)
        recalls.append(recall)
        if num_gt[c] == 0:
            continue
        ap[c] = trapezoid_ap(precision, recall)
        for kind in ERROR_TYPES[:-1]:
            rate = np.cumsum(outcome == kind) / counted if len(outcome) else np.zeros(0)
            errors[kind][c] = trapezoid_ap(rate, recall, start=0.0)
        errors["missed"][c] = 1.0 - (recall[-1] if len(recall) else 0.0)
    return FrameAPResult(iou_threshold, ap, errors, precisions, recalls, num_gt, num_dets, trimmed)


@dataclass
class DirectionResult:
    """How well a detector tells apart two classes that differ only by the direction of a movement (a
    ``motion_pairs`` entry of the annotations: a wave to the right and to the left, a squat down and standing up).

    Every annotated box of either class is looked up among the detections of its frame that have one of the two
    labels and IoU >= 0.5 with it; when there are any, the highest-scoring one names the box's direction. This
    takes finding the actor out of the question (frame-AP mixes both): it asks only, of the actors found, which
    way the detector says they move.

    Attributes:
        pair: the two label ids (a, b).
        boxes: (2,) annotated boxes of a and of b.
        found: (V, 2) per evaluated video, its boxes of a and of b found by a detection of a or b.
        right: (V, 2) of those found, named with their own class.
    """

    pair: tuple[int, int]
    boxes: np.ndarray
    found: np.ndarray
    right: np.ndarray

    @property
    def accuracy(self) -> np.ndarray:
        """(2,) share of the found boxes of a and of b named right (NaN where none was found)."""
        found = self.found.sum(0)
        return np.where(found > 0, self.right.sum(0) / np.maximum(found, 1), np.nan)

    @property
    def balanced(self) -> float:
        """Mean of the two accuracies: 0.5 for a detector that cannot tell the directions apart, whatever its
        bias towards one of them (NaN unless boxes of both classes were found)."""
        return float(np.mean(self.accuracy))

    def interval(self, level: float = 0.95, *, draws: int = 1000, seed: int = 0) -> tuple[float, float]:
        """Bootstrap interval of `balanced` over videos (the boxes of one tube are far from independent, so the
        videos are the samples); (NaN, NaN) without any draw that finds both classes."""
        rng = np.random.default_rng(seed)
        picks = rng.integers(0, len(self.found), (draws, len(self.found)))  # (draws, V) videos drawn
        found, right = self.found[picks].sum(1), self.right[picks].sum(1)  # (draws, 2)
        valid = (found > 0).all(1)
        if not valid.any():
            return float("nan"), float("nan")
        balanced = (right[valid] / found[valid]).mean(1)
        low, high = np.quantile(balanced, [(1 - level) / 2, (1 + level) / 2])
        return float(low), float(high)


def direction_accuracy(
    detections: Mapping[str, Mapping[int, Sequence[Detection]]],
    annotations: DetectionAnnotations,
    videos: Sequence[str],
    *,
    iou_threshold: float = 0.5,
) -> list[DirectionResult]:
    """`DirectionResult` for every pair of ``annotations.motion_pairs`` (empty without pairs).

    Args:
        detections: {video: {1-based frame: [Detection, ...]}}, as for `frame_ap`.
        annotations: ground truth.
        videos: the evaluated videos.
        iou_threshold: IoU for a detection to find a box.
    """
    gt = _gt_by_frame(annotations, videos)
    row = {video: i for i, video in enumerate(videos)}
    results = []
    for pair in annotations.motion_pairs:
        boxes = np.zeros(2, np.int64)
        found, right = np.zeros((len(videos), 2), np.int64), np.zeros((len(videos), 2), np.int64)
        for (video, frame), by_label in gt.items():
            if not any(label in by_label for label in pair):
                continue
            dets = [d for d in detections.get(video, {}).get(frame, ()) if d.label in pair]
            det_boxes = np.array([d[2:] for d in dets], np.float64).reshape(-1, 4)
            scores = np.array([d.score for d in dets])
            for i, label in enumerate(pair):
                for box in by_label.get(label, ()):
                    boxes[i] += 1
                    hits = np.flatnonzero(iou2d(det_boxes, box) >= iou_threshold)
                    if hits.size:
                        found[row[video], i] += 1
                        right[row[video], i] += dets[hits[np.argmax(scores[hits])]].label == label
        results.append(DirectionResult((int(pair[0]), int(pair[1])), boxes, found, right))
    return results


# --------------------------------------------------------------------------------------------------------------------
# Tubes.


def iou3dt(a: np.ndarray, b: np.ndarray) -> float:
    """Spatio-temporal IoU of two tubes given as (n, 5) rows (frame, x1, y1, x2, y2), frames increasing.

    Temporal IoU of the inclusive frame ranges times the mean spatial IoU over the frames of the temporal
    intersection (a frame where one tube has no box counts as IoU 0).
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t_min, t_max = max(a[0, 0], b[0, 0]), min(a[-1, 0], b[-1, 0])
    if t_max < t_min:
        return 0.0
    temporal = (t_max - t_min + 1) / (max(a[-1, 0], b[-1, 0]) - min(a[0, 0], b[0, 0]) + 1)
    frames = np.arange(t_min, t_max + 1)
    _, ia, ib = np.intersect1d(a[:, 0], b[:, 0], return_indices=True)
    keep = (a[ia, 0] >= t_min) & (a[ia, 0] <= t_max)
    spatial = np.sum(iou2d(a[ia[keep], 1:5], b[ib[keep], 1:5])) / len(frames)
    return float(temporal * spatial)


def nms3dt(tubes: Sequence[Tube], overlap: float = 0.3) -> list[Tube]:
    """Hard 3-D NMS of one video's tubes of one class: keep the best, drop tubes with `iou3dt` > `overlap` to a
    kept one. Returns the kept tubes, best first."""
    order = sorted(range(len(tubes)), key=lambda i: -tubes[i].score)
    arrays = [t.as_array() for t in tubes]
    kept: list[int] = []
    for i in order:
        if all(iou3dt(arrays[i], arrays[j]) <= overlap for j in kept):
            kept.append(i)
    return [tubes[i] for i in kept]


@dataclass
class VideoAPResult:
    """video-AP per class at several spatio-temporal IoU thresholds.

    Attributes:
        ap: {threshold: per-class AP (NaN without ground truth)}.
        num_gt: per class.
    """

    ap: dict[float, np.ndarray]
    num_gt: np.ndarray
    precision: dict[float, list[np.ndarray]] = field(default_factory=dict)
    recall: dict[float, list[np.ndarray]] = field(default_factory=dict)

    def map(self, threshold: float) -> float:
        """Mean AP over classes with ground truth at `threshold`."""
        valid = self.num_gt > 0
        return float(np.mean(self.ap[threshold][valid])) if valid.any() else float("nan")

    def map_range(self) -> float:
        """video-mAP averaged over the thresholds 0.5:0.05:0.95 (all must have been evaluated)."""
        missing = [t for t in _RANGE_THRESHOLDS if t not in self.ap]
        if missing:
            raise ValueError(f"video-mAP 0.5:0.95 needs every threshold of 0.5:0.05:0.95; missing {missing}")
        return float(np.mean([self.map(t) for t in _RANGE_THRESHOLDS]))


def video_ap(
    tubes: Mapping[str, Sequence[Tube]],
    annotations: DetectionAnnotations,
    videos: Sequence[str],
    *,
    thresholds: Sequence[float] = VIDEO_AP_THRESHOLDS,
    nms_overlap: float = 0.3,
) -> VideoAPResult:
    """video-AP per class (see the module docstring).

    Args:
        tubes: {video: [Tube, ...]} (from `streamact.inference.tubes.link_tubes`).
        annotations: ground truth.
        videos: the evaluated videos.
        thresholds: spatio-temporal IoU thresholds.
        nms_overlap: 3-D NMS overlap per video and class.
    """
    num_classes = len(annotations.labels)
    ranked: list[list[tuple[float, str, np.ndarray]]] = [[] for _ in range(num_classes)]
    for video in videos:
        by_label: dict[int, list[Tube]] = {}
        for t in tubes.get(video, []):
            by_label.setdefault(int(t.label), []).append(t)
        for label, group in by_label.items():
            ranked[label] += [(t.score, video, t.as_array()) for t in nms3dt(group, nms_overlap)]
    gt_tubes = [{v: [t for label, t in annotations.tubes(v) if label == c] for v in videos} for c in range(num_classes)]
    num_gt = np.array([sum(len(t) for t in g.values()) for g in gt_tubes])
    result = VideoAPResult({}, num_gt)
    for th in dict.fromkeys(float(t) for t in thresholds):
        ap = np.full(num_classes, np.nan)
        result.precision[th], result.recall[th] = [], []
        for c in range(num_classes):
            remaining = {v: list(g) for v, g in gt_tubes[c].items()}
            tp = []
            for _, video, tube in sorted(ranked[c], key=lambda item: -item[0]):
                ious = [iou3dt(g, tube) for g in remaining[video]]
                hit = bool(ious) and max(ious) >= th
                if hit:
                    del remaining[video][int(np.argmax(ious))]
                tp.append(hit)
            hits = np.cumsum(tp)
            precision = hits / np.arange(1, len(tp) + 1) if tp else np.zeros(0)
            recall = hits / num_gt[c] if num_gt[c] else np.zeros(len(tp))
            result.precision[th].append(precision)
            result.recall[th].append(recall)
            if num_gt[c]:
                ap[c] = trapezoid_ap(precision, recall)
        result.ap[th] = ap
    return result


# --------------------------------------------------------------------------------------------------------------------
# Everything at once, from a detector's tubelets.


@dataclass
class DetectionEvaluation:
    """All detection metrics of one run, with the detections and tubes they were computed from.

    Attributes:
        frame: frame-AP (standard ACT protocol: every frame counts).
        frame_trimmed: frame-AP in AMMA's trimmed mode (unannotated frames of videos with the class ignored); for
            comparison with AMMA's own numbers only.
        video: video-AP at `VIDEO_AP_THRESHOLDS`.
        direction: `direction_accuracy` of every pair of classes told apart only by motion (empty without pairs).
        detections: {video: {frame: [Detection]}} after per-frame soft NMS.
        tubes: {video: [Tube]} after linking.
        labels: class names.
    """

    frame: FrameAPResult
    frame_trimmed: FrameAPResult
    video: VideoAPResult
    direction: list[DirectionResult]
    detections: dict[str, dict[int, list[Detection]]]
    tubes: dict[str, list[Tube]]
    labels: list[str]

    def summary(self) -> dict:
        """JSON-ready numbers: the headline metrics, the error breakdown and per-class APs (fractions)."""

        def clean(x: float) -> float | None:
            return None if np.isnan(x) else round(float(x), 6)

        per_class = {}
        for c, name in enumerate(self.labels):
            per_class[name] = {
                "frame_ap@0.5": clean(self.frame.ap[c]),
                **{f"video_ap@{t:g}": clean(self.video.ap[t][c]) for t in (0.2, 0.5, 0.75)},
                "gt_boxes": int(self.frame.num_gt[c]),
                "gt_tubes": int(self.video.num_gt[c]),
                "detections": int(self.frame.num_detections[c]),
            }
        return {
            "frame_map@0.5": clean(self.frame.map),
            "frame_map@0.5_trimmed": clean(self.frame_trimmed.map),
            **{f"video_map@{t:g}": clean(self.video.map(t)) for t in (0.2, 0.5, 0.75)},
            "video_map@0.5:0.95": clean(self.video.map_range()),
            "frame_errors": {k: clean(v) for k, v in self.frame.mean_errors().items()},
            "direction": {
                f"{self.labels[d.pair[0]]}/{self.labels[d.pair[1]]}": {
                    "balanced_accuracy": clean(d.balanced),
                    "interval_95": [clean(x) for x in d.interval()],
                    "classes": {self.labels[c]: {"accuracy": clean(d.accuracy[i]), "found": int(d.found[:, i].sum()),
                                                 "boxes": int(d.boxes[i])} for i, c in enumerate(d.pair)},
                } for d in self.direction},
            "num_videos": len(self.tubes),
            "num_tubes": sum(len(t) for t in self.tubes.values()),
            "per_class": per_class,
        }


def evaluate_detections(
    steps: Mapping[str, Sequence[tuple[int, Sequence[Tubelet]]]],
    annotations: DetectionAnnotations,
    videos: Sequence[str],
    *,
    frame_nms: float = 0.6,
    video_nms: float = 0.3,
    **linker_kwargs,
) -> DetectionEvaluation:
    """Per-frame detections, linked tubes and every metric from a detector's tubelets.

    Args:
        steps: {video: [(frame, tubelets detected at that frame), ...]} in frame order, one entry per detection
            step (AMMA: every 5 frames).
        annotations: ground truth.
        videos: the evaluated videos; a video without steps has no detections.
        frame_nms: soft-NMS overlap of the per-frame detections.
        video_nms: 3-D NMS overlap of the tubes.
        **linker_kwargs: `TubeLinker` options.
    """
    detections, tubes = {}, {}
    for video in videos:
        video_steps = steps.get(video, [])
        detections[video] = frame_detections([t for _, step in video_steps for t in step], overlap=frame_nms)
        tubes[video] = link_tubes(video_steps, annotations.nframes.get(video), **linker_kwargs)
    return DetectionEvaluation(
        frame=frame_ap(detections, annotations, videos),
        frame_trimmed=frame_ap(detections, annotations, videos, trimmed=True),
        video=video_ap(tubes, annotations, videos, nms_overlap=video_nms),
        direction=direction_accuracy(detections, annotations, videos),
        detections=detections,
        tubes=tubes,
        labels=list(annotations.labels),
    )


def scene_annotations(video: str, tubes: Sequence[tuple[int, np.ndarray]], labels: Sequence[str], *,
                      num_frames: int, size: tuple[int, int]) -> DetectionAnnotations:
    """Ground truth of one scene (e.g. the synthetic source's ``tubes``) as a dataset of one test video.

    Args:
        video: the scene's name.
        tubes: (label id, (n, 5) rows of 1-based frame, x1, y1, x2, y2).
        labels: class names.
        num_frames: frames of the scene that were detected; tube rows after it are dropped.
        size: (height, width) of its frames.
    """
    gttubes: dict[int, list[np.ndarray]] = {}
    for label, tube in tubes:
        tube = np.asarray(tube, np.float32)
        tube = tube[tube[:, 0] <= num_frames]
        if len(tube):
            gttubes.setdefault(int(label), []).append(tube)
    return DetectionAnnotations(root=Path("."), labels=list(labels), nframes={video: num_frames},
                                resolution={video: tuple(size)}, gttubes={video: gttubes}, train_videos=[[]],
                                test_videos=[[video]])
