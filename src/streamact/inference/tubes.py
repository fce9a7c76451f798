"""Action tubelets -> per-frame detections and action tubes (numpy only; runs online, one step at a time).

A tubelet detector such as AMMA ("Accumulated Micro-Motion Representations for Lightweight Online Action Detection
in Real-Time") predicts, at each detection step, tubelets: one box on each of K key frames spaced `spacing` frames
apart and ending at the current frame (AMMA: K = 5, spacing 5, so a tubelet spans 21 frames), with one class and
score. Two things are built from them, following the ACT protocol (Kalogeiton et al., "Action Tubelet Detector for
Spatio-Temporal Action Localization") with AMMA's key-frame spacing:

* per-frame detections (frame-mAP): each tubelet gives a box to every frame from its first to its last key frame,
  linearly interpolated between key frames, with the tubelet's score; per frame and class, soft NMS (`nms2d`,
  overlap 0.6) rescales, and never removes, overlapping lower-scored boxes (`frame_detections`);
* action tubes (video-mAP): `TubeLinker` links each step's tubelets to the running tubes of their class
  (tubelet NMS 0.6, top 10 per class and step, mean IoU over shared key frames >= 0.5, highest score first;
  tubelets scoring below `LINK_SCORE` are not linked, our addition) and gives every tube a stable id. Offline
  use is a loop of `update` then `finish`, see `link_tubes`.

Coordinates are source pixels; IoU uses the "+1" pixel convention of ACT / MOC (a box (x1, y1, x2, y2) covers
x2 - x1 + 1 columns).

Data passed around::

    Detection   (label, score, x1, y1, x2, y2)                   one box on one frame
    Tubelet     label, score, key_frames (K,), boxes (K, 4)      one detector output; key frames 1-based
    Tube        label, score, frames (n,), boxes (n, 4)          a linked tube, one box per frame, frames consecutive
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

__all__ = [
    "Detection",
    "Tubelet",
    "Tube",
    "iou2d",
    "nms2d",
    "nms_tubelets",
    "frame_detections",
    "TubeLinker",
    "link_tubes",
    "LINK_SCORE",
]

# TubeLinker's default link_score: the best video-mAP@0.5 of the bundled detector on a synthetic set of another
# seed than its training and test videos (docs/RESULTS.md, "The bundled detector"; ACT's linking is 0).
LINK_SCORE = 0.2


class Detection(NamedTuple):
    """One box on one frame: class id, score and corners in source pixels."""

    label: int
    score: float
    x1: float
    y1: float
    x2: float
    y2: float


@dataclass
class Tubelet:
    """One tubelet: `boxes[k]` (x1, y1, x2, y2) on 1-based frame `key_frames[k]`, key frames increasing."""

    label: int
    score: float
    key_frames: np.ndarray  # (K,) int
    boxes: np.ndarray  # (K, 4) float

    def per_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """(frames, boxes) for every frame from the first to the last key frame, linearly interpolated between key
        frames. Repeated key frames (clamped at the start of a video) keep their last box."""
        keys = np.asarray(self.key_frames, dtype=np.int64)
        boxes = np.asarray(self.boxes, dtype=np.float64)
        last = len(keys) - 1 - np.unique(keys[::-1], return_index=True)[1]  # last occurrence of each key frame
        keys, boxes = keys[last], boxes[last]
        frames = np.arange(keys[0], keys[-1] + 1)
        return frames, np.stack([np.interp(frames, keys, boxes[:, c]) for c in range(4)], axis=1)


@dataclass
class Tube:
    """A linked action tube: `boxes[i]` on 1-based frame `frames[i]`; `tube_id` is stable while it is linked."""

    label: int
    score: float
    frames: np.ndarray  # (n,) int, consecutive
    boxes: np.ndarray  # (n, 4) float
    tube_id: int = -1

    def as_array(self) -> np.ndarray:
        """(n, 5) rows of frame, x1, y1, x2, y2: the ground-truth tube layout."""
        return np.concatenate([self.frames[:, None], self.boxes], axis=1).astype(np.float32)


# --------------------------------------------------------------------------------------------------------------------
# Box geometry and non-maximum suppression.


def iou2d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes (..., 4) against boxes (..., 4) (broadcast), "+1" pixel convention."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    iw = np.maximum(0.0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0.0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    return inter / (area_a + area_b - inter)


def _soft_suppress(
    scores: np.ndarray, overlap_with: Callable[[int, np.ndarray], np.ndarray], threshold: float
) -> np.ndarray:
    """ACT's soft NMS: visit boxes by decreasing score; each box overlapping the visited one by more than
    `threshold` gets weight 1 - overlap and leaves the queue. Returns the weights."""
    order = np.argsort(-scores, kind="stable")
    weight = np.ones(len(scores))
    while order.size:
        best, rest = order[0], order[1:]
        overlap = overlap_with(best, rest)
        suppressed = overlap > threshold
        weight[rest[suppressed]] = 1.0 - overlap[suppressed]
        order = rest[~suppressed]
    return weight


def nms2d(boxes: np.ndarray, scores: np.ndarray, overlap: float = 0.6) -> np.ndarray:
    """Soft NMS of one frame and class (ACT's `nms2d`): returns the rescored scores (all boxes are kept).

    Args:
        boxes: (N, 4).
        scores: (N,).
        overlap: IoU above which a lower-scored box is rescaled by (1 - IoU).
    """
    boxes, scores = np.asarray(boxes, np.float64), np.asarray(scores, np.float64)
    weight = _soft_suppress(scores, lambda i, rest: iou2d(boxes[i], boxes[rest]), overlap)
    return scores * weight


def nms_tubelets(tubelets: Sequence[Tubelet], overlap: float = 0.6, top_k: int | None = 10) -> list[Tubelet]:
    """Soft NMS of tubelets of one class and step, then the `top_k` best (ACT's `nms_tubelets`).

    Two tubelets overlap by the mean IoU of their boxes on the key frames they share (0 if none). ACT weights a
    suppressed tubelet by 1 - (sum of per-frame IoUs), which goes negative for K > 1; we use 1 - mean IoU, the same
    rule as `nms2d`, so scores stay in [0, score]. Returns rescored copies, best first.
    """
    if not tubelets:
        return []
    scores = np.array([t.score for t in tubelets], np.float64)
    if _same_key_frames(tubelets):  # one step's tubelets (the usual case): all overlaps in one array operation
        boxes = np.stack([np.asarray(t.boxes) for t in tubelets])  # (N, K, 4)
        overlaps = iou2d(boxes[:, None], boxes[None]).mean(axis=2)  # (N, N)

        def overlap_with(i: int, rest: np.ndarray) -> np.ndarray:
            return overlaps[i, rest]
    else:

        def overlap_with(i: int, rest: np.ndarray) -> np.ndarray:
            return np.array([_mean_shared_iou(tubelets[i], tubelets[j]) for j in rest])

    return _soft_nms_top(tubelets, scores, overlap_with, overlap, top_k)


def _soft_nms_top(tubelets: Sequence[Tubelet], scores: np.ndarray, overlap_with: Callable[[int, np.ndarray], np.ndarray],
                  overlap: float, top_k: int | None) -> list[Tubelet]:
    """Rescored copies of the `top_k` best `tubelets` after soft NMS, best first."""
    rescored = scores * _soft_suppress(scores, overlap_with, overlap)
    order = np.argsort(-rescored, kind="stable")[:top_k]
    return [Tubelet(tubelets[i].label, float(rescored[i]), tubelets[i].key_frames, tubelets[i].boxes) for i in order]


def _same_key_frames(tubelets: Sequence[Tubelet]) -> bool:
    first = np.asarray(tubelets[0].key_frames)
    if any(len(t.key_frames) != len(first) for t in tubelets):
        return False
    return bool((np.stack([np.asarray(t.key_frames) for t in tubelets]) == first).all())


def _mean_shared_iou(a: Tubelet, b: Tubelet) -> float:
    """Mean IoU over the key frames two tubelets share; NaN if they share none."""
    shared, ia, ib = np.intersect1d(a.key_frames, b.key_frames, return_indices=True)
    if not shared.size:
        return float("nan")
    return float(np.mean(iou2d(np.asarray(a.boxes)[ia], np.asarray(b.boxes)[ib])))


# --------------------------------------------------------------------------------------------------------------------
# Per-frame detections for frame-mAP.


def frame_detections(tubelets: Iterable[Tubelet], *, overlap: float = 0.6) -> dict[int, list[Detection]]:
    """Per-frame detections of one video from all its tubelets (every step), after soft NMS per frame and class.

    Returns:
        {1-based frame: [Detection, ...]}, each frame's list sorted by label then decreasing score.
    """
    rows: dict[tuple[int, int], list[tuple[float, np.ndarray]]] = {}
    for t in tubelets:
        frames, boxes = t.per_frame()
        for frame, box in zip(frames.tolist(), boxes):
            rows.setdefault((frame, int(t.label)), []).append((float(t.score), box))
    out: dict[int, list[Detection]] = {}
    for (frame, label), items in sorted(rows.items()):
        scores = nms2d(np.stack([b for _, b in items]), np.array([s for s, _ in items]), overlap)
        for i in np.argsort(-scores, kind="stable"):
            out.setdefault(frame, []).append(Detection(label, float(scores[i]), *map(float, items[i][1])))
    return out


# --------------------------------------------------------------------------------------------------------------------
# Online tube linking.


class _Link:
    """A tube being linked: its tubelets and the running sum of their scores (the tube's score is their mean)."""

    def __init__(self, tube_id: int, label: int, tubelet: Tubelet) -> None:
        self.tube_id, self.label, self.tubelets, self._total = tube_id, label, [tubelet], float(tubelet.score)

    def append(self, tubelet: Tubelet) -> None:
        self.tubelets.append(tubelet)
        self._total += float(tubelet.score)

    @property
    def score(self) -> float:
        return self._total / len(self.tubelets)

    def span(self) -> tuple[int, int]:
        """First and last frame the tube covers."""
        return min(int(t.key_frames[0]) for t in self.tubelets), max(int(t.key_frames[-1]) for t in self.tubelets)


class TubeLinker:
    """Links each detection step's tubelets into action tubes, online (ACT's BuildTubes with key-frame spacing).

    At every step, per class: soft tubelet NMS (`nms_overlap`) keeps the `top_k` best tubelets, and those scoring
    below `link_score` are left out (they neither start nor extend a tube); running tubes,
    best mean score first, each take the highest-scored unclaimed tubelet whose mean IoU with the tube's last
    tubelet over their shared key frames (or, when they share none, between the new tubelet's first box and the
    tube's last box) is at least `link_iou`; a tube that finds none and whose last tubelet no longer overlaps the
    new ones in time is finished; unclaimed tubelets start new tubes with new ids.

    Args:
        link_score: tubelets scoring below this (after the NMS) are not linked. ACT links every tubelet of the
            top 10, however weak: a tube then runs on through the low-scored tubelets of its class that a detector
            still places on the actor once the action has ended (or before it starts), and its temporal extent,
            which video-mAP scores, grows by their length.
        min_score: finished tubes scoring below this (mean tubelet score) are dropped.
        min_tubelets: tubes made of fewer tubelets are dropped (AMMA: 2).
        min_length: tubes spanning fewer frames are dropped; default K * spacing (AMMA: 25), from the tubelets
            seen, capped by the video length given to `finish`.
    """

    def __init__(
        self,
        *,
        link_iou: float = 0.5,
        nms_overlap: float = 0.6,
        top_k: int = 10,
        link_score: float = LINK_SCORE,
        min_score: float = 0.005,
        min_tubelets: int = 2,
        min_length: int | None = None,
    ) -> None:
        self.link_iou, self.nms_overlap, self.top_k, self.link_score = link_iou, nms_overlap, top_k, link_score
        self.min_score, self.min_tubelets, self.min_length = min_score, min_tubelets, min_length
        self.reset()

    def reset(self) -> None:
        """Forget every tube (a new video)."""
        self._active: list[_Link] = []
        self._finished: list[_Link] = []
        self._next_id = 0
        self._span = 0  # frames one tubelet spans, from the tubelets seen
        self._spacing = 1  # frames between key frames, from the tubelets seen
        self._steady = False  # tubelets span their full length and the stream is a minimum tube long (pop_finished)

    def update(self, frame: int, tubelets: Sequence[Tubelet]) -> list[tuple[int, Tubelet]]:
        """Link the tubelets detected at `frame` (1-based; their last key frame, normally).

        Args:
            frame: the step's frame.
            tubelets: the step's tubelets; they share their key frames (one detector step).

        Returns:
            (tube id, rescored tubelet) for every tubelet kept at this step, best first per class.

        Raises:
            ValueError: tubelets with different key frames.
        """
        if tubelets and not _same_key_frames(tubelets):
            raise ValueError("the tubelets of one linking step must share their key frames")
        if tubelets:
            keys = np.asarray(tubelets[0].key_frames)
            self._span = max(self._span, int(keys[-1] - keys[0]) + 1)
            if len(keys) > 1:
                self._spacing = max(self._spacing, int(keys[-1] - keys[-2]))
            self._steady = self._steady or (int(keys[0]) > 1 and frame >= self._min_length())
        pool = [t for t in self._nms_by_class(tubelets) if t.score >= self.link_score]  # by class, best first
        pool_labels = np.array([t.label for t in pool], np.int64)
        boxes = np.stack([np.asarray(t.boxes) for t in pool]) if pool else np.zeros((0, 1, 4))  # (P, K, 4)
        scores = np.array([t.score for t in pool])
        free = np.ones(len(pool), bool)
        # Running tubes by class, best mean score first within a class (claims only compete within a class).
        links = sorted(self._active, key=lambda link: (link.label, -link.score))
        same_class = np.array([link.label for link in links], np.int64)[:, None] == pool_labels[None]  # (L, P)
        matches = self._link_ious([link.tubelets[-1] for link in links], pool, boxes, same_class) >= self.link_iou
        by_label: dict[int, list[tuple[int, Tubelet]]] = {}  # per class: extended tubes, then new ones
        ended: set[int] = set()  # tube ids
        for link, row in zip(links, matches):
            valid = np.flatnonzero(free & row) if row.any() else ()
            if len(valid):
                best = int(valid[np.argmax(scores[valid])])
                free[best] = False
                link.append(pool[best])
                by_label.setdefault(link.label, []).append((link.tube_id, pool[best]))
            elif int(link.tubelets[-1].key_frames[-1]) < frame - self._span + 1:
                # Its last tubelet ends before any tubelet of this step starts: nothing can extend it any more.
                ended.add(link.tube_id)
                self._finished.append(link)
        for i in np.flatnonzero(free):  # new tubes, class by class (the pool's order)
            link = _Link(self._next_id, int(pool_labels[i]), pool[i])
            self._next_id += 1
            self._active.append(link)
            by_label.setdefault(link.label, []).append((link.tube_id, pool[i]))
        if ended:
            self._active = [link for link in self._active if link.tube_id not in ended]
        return [entry for label in sorted(by_label) for entry in by_label[label]]

    def _nms_by_class(self, tubelets: Sequence[Tubelet]) -> list[Tubelet]:
        """`nms_tubelets` of each class of one step's tubelets, classes in increasing order; the overlaps of all
        same-class pairs are computed in one array operation and each class reads its block."""
        if not tubelets:
            return []
        labels = np.array([t.label for t in tubelets], np.int64)
        scores = np.array([t.score for t in tubelets], np.float64)
        boxes = np.stack([np.asarray(t.boxes) for t in tubelets])  # (N, K, 4)
        rows, cols = np.nonzero(labels[:, None] == labels[None])
        overlaps = np.zeros((len(tubelets), len(tubelets)))  # (N, N), 0 across classes
        overlaps[rows, cols] = iou2d(boxes[rows], boxes[cols]).mean(axis=1)
        pool: list[Tubelet] = []
        for label in np.unique(labels):
            idx = np.flatnonzero(labels == label)
            members = [tubelets[i] for i in idx]
            pool += _soft_nms_top(members, scores[idx], lambda i, rest, idx=idx: overlaps[idx[i], idx[rest]],
                                  self.nms_overlap, self.top_k)
        return pool

    @staticmethod
    def _link_ious(lasts: list[Tubelet], pool: list[Tubelet], boxes: np.ndarray, pairs: np.ndarray) -> np.ndarray:
        """(L, P) linking overlaps of L tubes' last tubelets with the tubelets of one step's `pool` (boxes
        (P, K, 4)): mean IoU over shared key frames, or first box against last box when they share none. Only the
        pairs where `pairs` (L, P) is true are computed (the same class); the others are 0.

        Last tubelets from the same step share their key frames, so one array operation over the pairs covers
        each such group (a few per step, however many tubes are running)."""
        ious = np.zeros((len(lasts), len(pool)))
        rows, cols = np.nonzero(pairs)
        if not rows.size:
            return ious
        last_keys = np.stack([np.asarray(t.key_frames) for t in lasts])  # (L, K)
        last_boxes = np.stack([np.asarray(t.boxes) for t in lasts])  # (L, K, 4)
        groups, group_of = np.unique(last_keys, axis=0, return_inverse=True)
        group_of = group_of.reshape(-1)[rows]  # (pairs,)
        for g, keys in enumerate(groups):
            r, c = rows[group_of == g], cols[group_of == g]
            _, ia, ib = np.intersect1d(keys, pool[0].key_frames, return_indices=True)
            if ia.size:  # (n, k, 4) against (n, k, 4), mean over the k shared key frames
                ious[r, c] = iou2d(last_boxes[r][:, ia], boxes[c][:, ib]).mean(axis=1)
            else:  # first boxes against last boxes
                ious[r, c] = iou2d(boxes[c, 0], last_boxes[r, -1])
        return ious

    def active_tubes(self) -> list[Tube]:
        """The tubes still being linked, as they stand (no filtering), with the linker's ids."""
        return [self._build(link) for link in self._active]

    def held_ids(self) -> set[int]:
        """Ids of the tubes the linker still holds: running, or ended and not popped yet."""
        return {link.tube_id for link in self._active} | {link.tube_id for link in self._finished}

    def pop_finished(self) -> list[Tube]:
        """Remove and return the tubes that have ended and pass the filters, sorted by id; the rest are dropped.

        For an endless stream: the linker then only holds running tubes, so memory stays bounded. Returns nothing
        until the tubelets span their full length (key frames no longer clamped at frame 1) and the stream is as
        long as the minimum tube length, so the filters are exactly those `finish` applies and popped tubes plus
        the ones `finish` returns equal the tubes of offline linking.
        """
        if not self._steady:
            return []
        tubes = self._passing(self._finished, self._min_length())
        self._finished = []
        return tubes

    def finish(self, num_frames: int | None = None) -> list[Tube]:
        """End the video: return every tube (not popped yet) that passes the filters, sorted by id, and reset.

        Args:
            num_frames: video length, caps the minimum tube length for short videos.
        """
        min_length = self._min_length()
        if num_frames is not None:
            min_length = min(min_length, num_frames)
        tubes = self._passing(self._finished + self._active, min_length)
        self.reset()
        return tubes

    def _min_length(self) -> int:
        return self.min_length if self.min_length is not None else self._span + self._spacing - 1

    def _passing(self, links: list[_Link], min_length: int) -> list[Tube]:
        tubes = []
        for link in sorted(links, key=lambda l: l.tube_id):
            if link.score < self.min_score or len(link.tubelets) < self.min_tubelets:
                continue  # decided without building the tube (most tubes of a stream end here)
            first, last = link.span()
            if last - first + 1 >= min_length:
                tubes.append(self._build(link))
        return tubes

    @staticmethod
    def _build(link: _Link) -> Tube:
        """Per-frame boxes: the mean of all (interpolated) tubelet boxes covering the frame; frames no tubelet
        covers (a link across a gap) are interpolated between their neighbours."""
        first, last = link.span()
        total = np.zeros((last - first + 1, 4))
        count = np.zeros(last - first + 1)
        for t in link.tubelets:
            frames, boxes = t.per_frame()
            total[frames - first] += boxes
            count[frames - first] += 1
        frames = np.arange(first, last + 1)
        covered = count > 0
        mean = total[covered] / count[covered, None]
        boxes = np.stack([np.interp(frames, frames[covered], mean[:, c]) for c in range(4)], axis=1)
        return Tube(link.label, link.score, frames, boxes, link.tube_id)


def link_tubes(steps: Iterable[tuple[int, Sequence[Tubelet]]], num_frames: int | None = None, **kwargs) -> list[Tube]:
    """Offline linking of one video: `TubeLinker.update` for each (frame, tubelets) step, then `finish`."""
    linker = TubeLinker(**kwargs)
    for frame, tubelets in steps:
        linker.update(frame, tubelets)
    return linker.finish(num_frames)
