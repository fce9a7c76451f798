"""Detection metrics on tiny cases worked out by hand (numbers in the comments)."""
from pathlib import Path

import numpy as np
import pytest

from streamact.data.datasets.detection import DetectionAnnotations
from streamact.evaluation.detection import (
    VIDEO_AP_THRESHOLDS,
    DirectionResult,
    direction_accuracy,
    frame_ap,
    iou3dt,
    nms3dt,
    trapezoid_ap,
    video_ap,
)
from streamact.inference.tubes import Detection, Tube

A = (0.0, 0.0, 9.0, 9.0)  # 10 x 10 pixels under the +1 convention
B = (20.0, 20.0, 29.0, 29.0)
C = (40.0, 40.0, 49.0, 49.0)


def tube(frames, box):
    return np.array([[f, *box] for f in frames], np.float32)


def annotations():
    # Video v: class 0 on frames 1-3 at A, class 1 on frames 1-2 at B. Video w: class 2 on frames 1-2 at C.
    # Class 3 has no ground truth anywhere.
    return DetectionAnnotations(
        root=Path("."),
        labels=["a", "b", "c", "d"],
        nframes={"v": 10, "w": 10},
        resolution={"v": (60, 60), "w": (60, 60)},
        gttubes={"v": {0: [tube([1, 2, 3], A)], 1: [tube([1, 2], B)]}, "w": {2: [tube([1, 2], C)]}},
        train_videos=[[]],
        test_videos=[["v", "w"]],
    )


def test_trapezoid_ap_by_hand():
    # From (r 0, p 1): 0.5 * (1 + 1) / 2 + 0 + 0.5 * (0.5 + 2/3) / 2 = 0.5 + 0.291667
    assert trapezoid_ap(np.array([1.0, 0.5, 2 / 3]), np.array([0.5, 0.5, 1.0])) == pytest.approx(0.5 + 0.875 / 3)
    # An error-rate curve starts at 0: 0.5 * (0 + 1) / 2
    assert trapezoid_ap(np.array([1.0]), np.array([0.5]), start=0.0) == pytest.approx(0.25)


def frame_detections():
    return {
        "v": {
            1: [Detection(0, 0.9, *A), Detection(0, 0.8, *A), Detection(1, 0.8, *B)],
            2: [Detection(0, 0.7, *B), Detection(0, 0.5, *A)],
            3: [Detection(1, 0.9, *A)],
            5: [Detection(0, 0.6, *A), Detection(3, 0.9, *A)],
        },
        "w": {1: [Detection(1, 0.7, 0.0, 0.0, 5.0, 5.0)]},
    }


def test_frame_ap_and_error_breakdown_by_hand():
    result = frame_ap(frame_detections(), annotations(), ["v", "w"])
    # Class 0, ranked: 0.9 TP (frame 1) | 0.8 duplicate on frame 1 -> localisation | 0.7 box B on frame 2 ->
    # localisation | 0.6 frame 5, video has class 0 but not there -> time | 0.5 TP (frame 2). 3 GT boxes.
    # precision 1, 1/2, 1/3, 1/4, 2/5; recall 1/3 x4, 2/3.
    # AP = 1/3 * (1 + 1)/2 + 1/3 * (1/4 + 2/5)/2 = 0.441667
    assert result.ap[0] == pytest.approx(1 / 3 + 0.65 / 6)
    # localisation rates 0, 1/2, 2/3, 1/2, 2/5 -> 1/3 * (1/2 + 2/5)/2 = 0.15; time 1/3 * (1/4 + 1/5)/2 = 0.075;
    # missed 1 - 2/3.
    assert result.errors["localization"][0] == pytest.approx(0.15)
    assert result.errors["time"][0] == pytest.approx(0.075)
    assert result.errors["classification"][0] == pytest.approx(0.0)
    assert result.errors["missed"][0] == pytest.approx(1 / 3)
    # Class 1: 0.9 on frame 3 (no class-1 box there, class-0 box A with IoU 1) -> classification | 0.8 TP |
    # 0.7 in video w (no class 1 there, overlaps nothing) -> other. precision 0, 1/2, 1/3; recall 0, 1/2, 1/2.
    # AP = 1/2 * (0 + 1/2)/2 = 0.125; classification 1/2 * (1 + 1/2)/2 = 0.375; missed 1/2.
    assert result.ap[1] == pytest.approx(0.125)
    assert result.errors["classification"][1] == pytest.approx(0.375)
    assert result.errors["other"][1] == pytest.approx(0.0)
    assert result.errors["missed"][1] == pytest.approx(0.5)
    # Class 2: no detections -> AP 0, all missed. Class 3: no ground truth -> NaN, left out of the mean.
    assert result.ap[2] == 0.0 and result.errors["missed"][2] == 1.0
    assert np.isnan(result.ap[3])
    assert result.map == pytest.approx((1 / 3 + 0.65 / 6 + 0.125 + 0.0) / 3)
    assert list(result.num_gt) == [3, 2, 2, 0]
    # AP plus the five error shares make 1 for every class with ground truth.
    for c in range(3):
        assert result.ap[c] + sum(result.errors[k][c] for k in result.errors) == pytest.approx(1.0)
    assert result.map + sum(result.mean_errors().values()) == pytest.approx(1.0)


def test_direction_accuracy_by_hand():
    ann = annotations()
    ann.motion_pairs = [(0, 1)]  # "a" and "b" differ only by the direction of a movement
    detections = {"v": {
        1: [Detection(0, 0.9, *A), Detection(1, 0.95, *A),  # A (true a): the best of the pair says b -> wrong
            Detection(1, 0.8, *B)],  # B (true b): right
        2: [Detection(0, 0.7, *A), Detection(2, 0.99, *A),  # A: class c is not of the pair, so a decides -> right
            Detection(0, 0.6, *C)],  # B: no detection overlaps it -> not found
    }}  # frame 3: A not found
    (result,) = direction_accuracy(detections, ann, ["v", "w"])
    assert result.pair == (0, 1)
    assert result.boxes.tolist() == [3, 2]
    assert result.found.tolist() == [[2, 1], [0, 0]] and result.right.tolist() == [[1, 1], [0, 0]]  # per video
    assert result.accuracy.tolist() == [0.5, 1.0] and result.balanced == pytest.approx(0.75)
    # Resampling videos: a draw finds both classes only when it holds v, and then scores exactly 0.75.
    assert result.interval() == pytest.approx((0.75, 0.75))
    # Nothing found of one class: its accuracy is unknown, and so is the balance.
    (only_a,) = direction_accuracy({"v": {1: [Detection(0, 0.9, *A)]}}, ann, ["v"])
    assert only_a.accuracy[0] == 1.0 and np.isnan(only_a.accuracy[1]) and np.isnan(only_a.balanced)
    assert np.isnan(only_a.interval()).all()
    assert direction_accuracy(detections, annotations(), ["v"]) == []  # no motion pairs, nothing to report


def test_direction_interval_widens_when_videos_disagree():
    # Two videos of 10 found boxes per class: one always right, one always wrong on class a.
    result = DirectionResult((0, 1), np.array([20, 20]), np.array([[10, 10], [10, 10]]),
                             np.array([[10, 10], [0, 10]]))
    assert result.balanced == pytest.approx(0.75)
    low, high = result.interval()
    assert low == pytest.approx(0.5) and high == pytest.approx(1.0)  # draws of w twice, of v twice
    assert result.interval(seed=1) == result.interval(seed=1)


def test_trimmed_mode_ignores_unannotated_frames_of_videos_with_the_class():
    result = frame_ap(frame_detections(), annotations(), ["v", "w"], trimmed=True)
    # Class 0 without the time error at frame 5: TP, L, L, TP -> precision 1, 1/2, 1/3, 1/2; recall 1/3 x3, 2/3.
    # AP = 1/3 + 1/3 * (1/3 + 1/2)/2 = 0.472222
    assert result.ap[0] == pytest.approx(1 / 3 + (5 / 6) / 6)
    assert result.trimmed and result.num_detections[0] == 4
    # Class 1: the detection on frame 3 of v (v has class 1, not on frame 3) is ignored too; the one in video w
    # (no class 1 there) still counts: TP, other -> AP = 1/2 * (1 + 1)/2.
    assert result.num_detections[1] == 2
    assert result.ap[1] == pytest.approx(0.5)


def test_frame_ap_iou_threshold_uses_plus_one_convention():
    ann = annotations()
    # (0,0,9,9) vs (5,0,14,9): intersection 5 x 10 = 50, union 150 -> IoU 1/3 (without +1 it would be 45/117).
    dets = {"v": {1: [Detection(0, 0.9, 5.0, 0.0, 14.0, 9.0)]}}
    assert frame_ap(dets, ann, ["v"], iou_threshold=0.33).ap[0] > 0
    assert frame_ap(dets, ann, ["v"], iou_threshold=0.34).ap[0] == 0


def test_iou3dt_by_hand():
    a = tube([1, 2, 3, 4], A)
    b = tube([3, 4, 5, 6], A)
    assert iou3dt(a, b) == pytest.approx(2 / 6)  # temporal 2/6, spatial 1
    shifted = tube([1, 2, 3, 4], (5.0, 0.0, 14.0, 9.0))
    assert iou3dt(a, shifted) == pytest.approx(1 / 3)  # temporal 1, spatial 1/3
    assert iou3dt(a, tube([7, 8], A)) == 0.0
    # A missing frame inside the intersection counts as IoU 0: (1 + 0 + 1 + 1) / 4
    gap = np.delete(tube([1, 2, 3, 4], A), 1, axis=0)
    assert iou3dt(a, gap) == pytest.approx(0.75)


def test_nms3dt_keeps_best_and_drops_overlapping():
    t1 = Tube(0, 0.9, np.arange(1, 6), np.tile(A, (5, 1)))
    t2 = Tube(0, 0.8, np.arange(1, 11), np.tile((5.0, 0.0, 14.0, 9.0), (10, 1)))  # iou3dt with t1 = 1/2 * 1/3
    t3 = Tube(0, 0.7, np.arange(1, 6), np.tile(A, (5, 1)))  # copy of t1
    kept = nms3dt([t3, t2, t1], overlap=0.3)
    assert [t.score for t in kept] == [0.9, 0.8]


def test_video_ap_by_hand():
    ann = DetectionAnnotations(
        root=Path("."), labels=["a", "b"], nframes={"v": 10}, resolution={"v": (60, 60)},
        gttubes={"v": {0: [tube(range(1, 11), A)]}}, train_videos=[[]], test_videos=[["v"]],
    )
    half = Tube(0, 0.8, np.arange(1, 6), np.tile(A, (5, 1)))  # st-IoU 5/10 * 1 = 0.5
    shifted = Tube(0, 0.9, np.arange(1, 11), np.tile((5.0, 0.0, 14.0, 9.0), (10, 1)))  # st-IoU 1/3
    result = video_ap({"v": [shifted, half]}, ann, ["v"])
    # At 0.5: 0.9 FP, 0.8 TP -> precision 0, 1/2; recall 0, 1 -> AP = 1 * (0 + 1/2)/2 = 0.25
    assert result.map(0.5) == pytest.approx(0.25)
    # At 0.2: 0.9 TP -> AP = 1 (the second is an FP after full recall)
    assert result.map(0.2) == pytest.approx(1.0)
    assert result.map(0.75) == 0.0
    # 0.5:0.95: only 0.5 has a hit -> 0.25 / 10
    assert result.map_range() == pytest.approx(0.025)
    assert np.isnan(result.ap[0.5][1])  # class without ground truth
    assert set(VIDEO_AP_THRESHOLDS) >= {0.2, 0.5, 0.75, 0.95}
    with pytest.raises(ValueError, match="0.5:0.05:0.95"):
        video_ap({"v": [half]}, ann, ["v"], thresholds=(0.5,)).map_range()
