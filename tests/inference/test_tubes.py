"""Tubelet NMS, per-frame detections and online tube linking, on hand-made tubelets."""
import subprocess
import sys

import numpy as np
import pytest

from streamact.inference.tubes import (
    Tubelet,
    TubeLinker,
    frame_detections,
    iou2d,
    link_tubes,
    nms2d,
    nms_tubelets,
)

A = (0.0, 0.0, 9.0, 9.0)
K, SPACING = 5, 5


def keys(frame):
    """AMMA's key frames for a step at `frame`: frame - 20, ..., frame, clamped at 1."""
    return np.maximum(1, frame - SPACING * np.arange(K - 1, -1, -1))


def tubelet(frame, box, score=0.9, label=0, dx=0.0):
    """A tubelet whose box moves dx pixels right per frame."""
    k = keys(frame)
    return Tubelet(label, score, k, np.array([[box[0] + dx * f, box[1], box[2] + dx * f, box[3]] for f in k]))


def test_iou2d_plus_one_convention_and_broadcast():
    assert iou2d(A, (5.0, 0.0, 14.0, 9.0)) == pytest.approx(50 / 150)
    assert iou2d(np.array([A, A]), np.array(A)).shape == (2,)
    assert iou2d(A, (20.0, 20.0, 29.0, 29.0)) == 0.0


def test_nms2d_is_soft_and_suppressed_boxes_do_not_suppress():
    boxes = np.array([A, A, (5.0, 0.0, 14.0, 9.0), (0.0, 0.0, 9.0, 8.0)])
    scores = np.array([0.9, 0.8, 0.7, 0.6])
    # B duplicates A (IoU 1) -> x0; C overlaps A by 1/3 <= 0.6 -> kept; D overlaps A by 90/100 -> x0.1.
    assert nms2d(boxes, scores, 0.6) == pytest.approx([0.9, 0.0, 0.7, 0.06])
    # A suppressed box leaves the queue and suppresses nothing: at threshold 0.5, Y (3..12) overlaps X (0..9) by
    # 70/130 and is rescaled; Z (6..15) overlaps Y by 70/130 too but X only by 40/160, so it keeps its score.
    chain = np.array([A, (3.0, 0.0, 12.0, 9.0), (6.0, 0.0, 15.0, 9.0)])
    assert nms2d(chain, np.array([0.9, 0.8, 0.7]), 0.5) == pytest.approx([0.9, 0.8 * (1 - 70 / 130), 0.7])


def test_nms_tubelets_mean_iou_weight_and_top_k():
    a = tubelet(21, A, 0.9)
    copy = tubelet(21, A, 0.8)
    far = tubelet(21, (30.0, 30.0, 39.0, 39.0), 0.5)
    kept = nms_tubelets([copy, far, a], overlap=0.6, top_k=2)
    assert [t.score for t in kept] == pytest.approx([0.9, 0.5])  # the copy got weight 1 - 1 = 0
    # Half-overlapping on every key frame: weight 1 - mean IoU (ACT's 1 - sum would be negative here).
    shifted = tubelet(21, (2.0, 0.0, 11.0, 9.0), 0.8)  # IoU 80/120 = 2/3 on each key frame
    rescored = nms_tubelets([a, shifted], overlap=0.6, top_k=None)
    assert rescored[1].score == pytest.approx(0.8 * (1 - 2 / 3))


def test_tubelet_per_frame_interpolates_and_handles_clamped_keys():
    t = tubelet(11, A, dx=1.0)  # key frames 1, 1, 1, 6, 11
    frames, boxes = t.per_frame()
    assert list(frames) == list(range(1, 12))
    assert boxes[2] == pytest.approx([3.0, 0.0, 12.0, 9.0])  # frame 3, between keys 1 and 6


def test_frame_detections_interpolated_and_soft_nms_per_class():
    t1 = tubelet(21, A, 0.9)
    t2 = tubelet(26, A, 0.6)  # same place, next step: its frames 6-21 overlap t1's
    other = tubelet(21, A, 0.5, label=1)
    dets = frame_detections([t1, t2, other])
    assert sorted(dets) == list(range(1, 27))
    on_10 = dets[10]
    assert [(d.label, round(d.score, 6)) for d in on_10] == [(0, 0.9), (0, 0.0), (1, 0.5)]  # other class untouched
    assert [(d.label, d.score) for d in dets[24]] == [(0, 0.6)]  # only t2 reaches frame 24


def moving_steps(last_frame, actors):
    """Steps every 5 frames; each actor (start frame, end frame, box, dx, score, label) gives a tubelet while its
    key frames lie inside its span."""
    steps = []
    for f in range(5, last_frame + 1, SPACING):
        step = [tubelet(f, box, score, label, dx) for start, end, box, dx, score, label in actors
                if f - SPACING * (K - 1) >= start and f <= end]
        steps.append((f, step))
    return steps


def test_linker_keeps_ids_and_builds_averaged_tubes():
    steps = moving_steps(60, [(1, 60, A, 0.5, 0.9, 0), (1, 60, (40.0, 0.0, 49.0, 9.0), -0.5, 0.7, 1)])
    linker = TubeLinker()
    ids = []
    for frame, tubelets in steps:
        ids.append(sorted(i for i, _ in linker.update(frame, tubelets)))
    active = [s for s in ids if s]
    assert all(s == [0, 1] for s in active)  # the same two tubes all along
    tubes = linker.finish(60)
    assert [(t.tube_id, t.label) for t in tubes] == [(0, 0), (1, 1)]
    first = tubes[0]
    assert first.frames[0] == 5 and first.frames[-1] == 60  # first step whose key frames (5-25) fit is at 25
    assert first.score == pytest.approx(0.9)
    # Every tubelet is exact on its frames, so the average is too (index 30 = frame 35).
    assert first.boxes[30] == pytest.approx([0.5 * 35, 0.0, 9.0 + 0.5 * 35, 9.0])
    assert np.all(np.diff(first.frames) == 1)
    # Offline use is the same loop.
    assert [t.tube_id for t in link_tubes(steps, 60)] == [0, 1]


def test_linker_averages_overlapping_tubelets():
    linker = TubeLinker(min_tubelets=1, min_length=1)
    linker.update(21, [tubelet(21, A, 0.8)])
    moved = (2.0, 0.0, 11.0, 9.0)  # IoU 2/3 with A: linked
    linker.update(26, [tubelet(26, moved, 0.6)])
    (tube,) = linker.finish()
    assert tube.score == pytest.approx(0.7)
    assert tube.frames[0] == 1 and tube.frames[-1] == 26
    assert tube.boxes[0] == pytest.approx(A)  # frame 1: first tubelet only
    assert tube.boxes[9] == pytest.approx([1.0, 0.0, 10.0, 9.0])  # frame 10: mean of both
    assert tube.boxes[-1] == pytest.approx(moved)  # frame 26: second only


def test_linker_finishes_tubes_starts_new_ids_and_filters():
    # Actor 1 acts on frames 1-40, then a different place on 50-90: two tubes. A lone tubelet is dropped.
    steps = moving_steps(90, [(1, 40, A, 0.0, 0.9, 0), (50, 90, (30.0, 30.0, 39.0, 39.0), 0.0, 0.8, 0)])
    steps[-1][1].append(tubelet(90, (60.0, 0.0, 69.0, 9.0), 0.3, label=2))
    linker = TubeLinker()
    finished_early = None
    for frame, tubelets in steps:
        linker.update(frame, tubelets)
        if frame == 70:
            finished_early = [t.tube_id for t in linker.active_tubes()]
    assert finished_early == [1]  # tube 0 was finished once the new tubelets no longer overlapped it
    tubes = linker.finish(90)
    assert [(t.tube_id, int(t.frames[0]), int(t.frames[-1])) for t in tubes] == [(0, 5, 40), (1, 50, 90)]


def test_linker_links_across_a_gap_and_interpolates():
    linker = TubeLinker(min_tubelets=1, min_length=1)
    linker.update(21, [tubelet(21, A, 0.9)])
    linker.update(46, [tubelet(46, (1.0, 0.0, 10.0, 9.0), 0.9)])  # key frames 26-46: no shared frames, IoU 0.82
    (tube,) = linker.finish()
    assert tube.frames[0] == 1 and tube.frames[-1] == 46
    assert tube.boxes[23] == pytest.approx([0.6, 0.0, 9.6, 9.0])  # frame 24, 3/5 of the way from 21 (x 0) to 26 (x 1)


def test_low_scores_and_short_tubes_are_dropped():
    steps = moving_steps(60, [(1, 60, A, 0.0, 0.004, 0)])
    assert link_tubes(steps, 60, link_score=0.0) == []  # mean score below 0.005
    assert link_tubes(steps, 60, link_score=0.0, min_score=0.0)[0].score == pytest.approx(0.004)
    short = moving_steps(30, [(1, 24, A, 0.0, 0.9, 0)])  # one tubelet only
    assert link_tubes(short, 30) == []


def test_weak_tubelets_neither_start_nor_extend_tubes():
    # The action covers frames 31-60 (its tubelets: key frames 35-55 and 40-60); before and after it the detector
    # still puts weak tubelets on the idle actor.
    steps = moving_steps(100, [(31, 60, A, 0.0, 0.9, 0)])
    for frame, tubelets in steps:
        if not tubelets:
            tubelets.append(tubelet(frame, A, 0.1))
    (tube,) = link_tubes(steps, 100, link_score=0.2)
    assert (tube.frames[0], tube.frames[-1]) == (35, 60) and tube.score == pytest.approx(0.9)
    (tube,) = link_tubes(steps, 100, link_score=0.0)  # ACT: the weak ones extend it over the whole video
    assert (tube.frames[0], tube.frames[-1]) == (1, 100)


def test_linking_and_evaluation_do_not_import_torch():
    # Deployments run exported detectors with numpy + a runtime only.
    code = ("import sys, streamact.inference.tubes, streamact.evaluation.detection, "
            "streamact.evaluation.detection_report; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_linker_refuses_a_step_whose_tubelets_have_different_key_frames():
    box = np.array([[0, 0, 10, 10]] * 2, np.float32)
    mixed = [Tubelet(0, 0.9, np.array([1, 5]), box), Tubelet(0, 0.8, np.array([2, 6]), box)]
    with pytest.raises(ValueError, match="share their key frames"):
        TubeLinker().update(6, mixed)


def _random_steps(num_steps, num_actors, seed=0, num_classes=3):
    """Steps of `num_actors` figures drifting slowly (so some link, some break), one tubelet each."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(20, 300, (num_actors, 2))
    steps = []
    for s in range(1, num_steps + 1):
        end = s * SPACING
        keys = np.maximum(end - SPACING * np.arange(K - 1, -1, -1), 1)
        centres += rng.normal(0, 4, centres.shape)
        tubelets = []
        for a in range(num_actors):
            boxes = np.tile(np.r_[centres[a] - 10, centres[a] + 10], (K, 1)).astype(np.float32)
            tubelets.append(Tubelet(int(a % num_classes), float(rng.uniform(0.05, 1)), keys, boxes))
        steps.append((end, tubelets))
    return steps


def test_popping_finished_tubes_keeps_memory_bounded_and_the_tubes_of_offline_linking():
    steps = _random_steps(60, 50)  # 50 actors at once
    linker, popped, held = TubeLinker(), [], []
    for frame, tubelets in steps:
        linker.update(frame, tubelets)
        popped += linker.pop_finished()
        held.append(len(linker._finished) + len(linker.active_tubes()))
    online = sorted(popped + linker.finish(steps[-1][0]), key=lambda t: t.tube_id)
    offline = link_tubes(steps, steps[-1][0])
    assert popped and [t.tube_id for t in online] == [t.tube_id for t in offline]
    for a, b in zip(online, offline):
        assert a.label == b.label and a.score == b.score
        np.testing.assert_array_equal(a.boxes, b.boxes)
    # Per class and step at most top_k (10) tubelets survive, and a tube that stops linking ends within K steps:
    # the linker holds at most 3 classes x 10 x K tubes however long the stream, and the count stays flat.
    assert max(held) <= 3 * 10 * K and max(held[40:]) <= max(held[:40]) + 5


def test_link_ious_of_many_tubes_at_once_equal_the_definition():
    """Tubes whose last tubelets come from different steps (some sharing key frames with the new step, one not)
    get, in one call, the mean IoU over shared key frames, or first box against last box; pairs left out (other
    classes) get 0."""
    from streamact.inference.tubes import TubeLinker

    rng = np.random.default_rng(0)

    def tubelet(keys):
        corner = rng.uniform(0, 50, (len(keys), 2))
        return Tubelet(0, 0.5, np.array(keys), np.concatenate([corner, corner + rng.uniform(20, 40, (len(keys), 2))], 1))

    pool = [tubelet([9, 13, 17]) for _ in range(4)]
    boxes = np.stack([t.boxes for t in pool])
    lasts = [tubelet([5, 9, 13]), tubelet([1, 5, 9]), tubelet([5, 9, 13]), tubelet([-3, 1, 5])]
    pairs = rng.random((4, 4)) < 0.7
    pairs[0, 0] = pairs[3, 0] = pairs[0, 1] = False  # some of each kind left out
    got = TubeLinker._link_ious(lasts, pool, boxes, pairs)
    assert got.shape == (4, 4)
    for last, row, wanted in zip(lasts, got, pairs):
        shared = [k for k in last.key_frames if k in pool[0].key_frames]
        for t, value, computed in zip(pool, row, wanted):
            if not computed:
                expected = 0.0
            elif shared:
                expected = np.mean([iou2d(last.boxes[list(last.key_frames).index(k)],
                                          t.boxes[list(t.key_frames).index(k)]) for k in shared])
            else:
                expected = iou2d(t.boxes[0], last.boxes[-1])
            assert value == pytest.approx(expected, abs=1e-12)
    assert TubeLinker._link_ious([], pool, boxes, np.zeros((0, 4), bool)).shape == (0, 4)
