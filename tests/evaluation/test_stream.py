"""Online stream metrics on hand-computed cases."""
import numpy as np
import pytest

from streamact.evaluation.stream import (StreamMetrics, edit_distance, event_scores, frame_accuracy,
                                         levenshtein_accuracy, match_events, per_frame_map)
from streamact.inference.events import Event

# 4 frames, classes (background, 1, 2); argmax per frame: 0, 1, 2, 1
SCORES = np.array([[0.7, 0.1, 0.2], [0.05, 0.9, 0.05], [0.1, 0.3, 0.6], [0.1, 0.5, 0.4]])
TRUE = np.array([0, 1, 1, 2])

# fps 10: an event may come up to 5 frames after its gesture's last frame
SEGMENTS = [{"label": "a", "start": 10, "end": 20}, {"label": "b", "start": 30, "end": 40},
            {"label": "a", "start": 50, "end": 60}]
EVENTS = [
    {"label": "a", "start_frame": 12, "end_frame": 15, "emitted_at_frame": 15},  # seg 0, 0.4 s early
    {"label": "a", "start_frame": 12, "end_frame": 19, "emitted_at_frame": 22},  # seg 0 again: double report
    {"label": "b", "start_frame": 31, "end_frame": 39, "emitted_at_frame": 45},  # 6 frames after seg 1: too late
    {"label": "a", "start_frame": 52, "end_frame": 59, "emitted_at_frame": 64},  # seg 2, exactly 0.5 s late
]


def test_frame_accuracy():
    assert frame_accuracy(SCORES.argmax(1), TRUE) == pytest.approx(0.5)
    assert frame_accuracy(SCORES.argmax(1), TRUE, valid=[False, True, True, False]) == pytest.approx(0.5)
    assert frame_accuracy(SCORES.argmax(1), TRUE, valid=[True, True, False, False]) == pytest.approx(1.0)
    assert np.isnan(frame_accuracy([], []))


def test_per_frame_map_excludes_background():
    # class 1 ranks frames 1 (pos), 3, 2 (pos), 0 -> AP (1 + 2/3) / 2 = 5/6; class 2 ranks 2, 3 (pos) -> AP 1/2
    assert per_frame_map(SCORES, TRUE) == pytest.approx((5 / 6 + 1 / 2) / 2)
    # background frames are not a class of their own, whatever its scores
    worse_background = SCORES.copy()
    worse_background[:, 0] = [0.0, 1.0, 1.0, 1.0]
    assert per_frame_map(worse_background, TRUE) == pytest.approx(2 / 3)
    # with background counted as a class (AP 1 here: frame 0 ranks first)
    assert per_frame_map(SCORES, TRUE, background=None) == pytest.approx((1 + 5 / 6 + 1 / 2) / 3)
    assert np.isnan(per_frame_map(SCORES[:1], TRUE[:1]))  # only background: no action class


def test_edit_distance_and_levenshtein_accuracy():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a", "b"]) == 2
    assert edit_distance(["a", "b"], ["a", "b"]) == 0
    assert levenshtein_accuracy(["a", "b", "b", "c"], ["a", "c"]) == pytest.approx(0.0)  # two extra reports
    assert levenshtein_accuracy(["a", "c", "a", "c", "b"], ["a"]) == pytest.approx(-3.0)  # can go below 0
    assert levenshtein_accuracy(["b"], ["a", "b"]) == pytest.approx(0.5)  # one miss
    assert np.isnan(levenshtein_accuracy(["a"], []))


def test_event_matching_rules():
    assert match_events(EVENTS, SEGMENTS, fps=10) == [(0, 0), (3, 2)]
    # a wrong label that overlaps is no match; an event that overlaps nothing is no match
    assert match_events([{"label": "b", "start_frame": 12, "end_frame": 15, "emitted_at_frame": 15}],
                        SEGMENTS, fps=10) == []
    assert match_events([{"label": "a", "start_frame": 21, "end_frame": 25, "emitted_at_frame": 25}],
                        SEGMENTS, fps=10) == []
    # a longer tolerance admits the late report
    assert (2, 1) in match_events(EVENTS, SEGMENTS, fps=10, tolerance=0.6)
    # Event objects work like their JSON dicts
    obj = [Event("a", 1, 12, 15, 15, 0.9, "early")]
    assert match_events(obj, SEGMENTS, fps=10) == [(0, 0)]


def test_event_scores_hand_computed():
    r = event_scores(EVENTS, SEGMENTS, fps=10)
    assert (r["true_positives"], r["events"], r["gestures"]) == (2, 4, 3)
    assert r["precision"] == pytest.approx(0.5)
    assert r["recall"] == pytest.approx(2 / 3)
    assert r["f1"] == pytest.approx(4 / 7)
    assert r["delays_s"] == pytest.approx([-0.4, 0.5])


def test_accumulator_pools_frames_and_sums_counts():
    m = StreamMetrics()
    m.update(SCORES, TRUE, EVENTS, SEGMENTS, fps=10, valid=[False, True, True, True])
    second_scores = np.array([[0.1, 0.2, 0.7], [0.8, 0.1, 0.1]])
    m.update(second_scores, [2, 0], [], [{"label": "c", "start": 0, "end": 1}], fps=10)
    r = m.compute()
    assert (r["streams"], r["frames"]) == (2, 5)
    assert r["frame_accuracy"] == pytest.approx(3 / 5)  # frames 1, 4, 5 of 2..5 scored frames
    # pooled: class 1 ranks 0.9 (pos), 0.5, 0.3 (pos) ... -> 5/6; class 2 ranks 0.7 (pos), 0.6, 0.4 (pos) -> 5/6
    assert r["per_frame_map"] == pytest.approx(5 / 6)
    # edits: [a, a, b, a] -> [a, b, a] is 1, [] -> [c] is 1; 4 true gestures
    assert r["levenshtein_accuracy"] == pytest.approx(0.5)
    assert (r["true_positives"], r["events"], r["gestures"]) == (2, 4, 4)
    assert (r["precision"], r["recall"], r["f1"]) == pytest.approx((0.5, 0.5, 0.5))
    assert r["delay_median_s"] == pytest.approx(0.05)
    assert r["delay_p90_s"] == pytest.approx(-0.4 + 0.9 * 0.9)
    m.reset()
    empty = m.compute()
    assert empty["streams"] == 0 and empty["delay_median_s"] is None and np.isnan(empty["f1"])


def test_accumulator_rejects_mismatched_scores():
    with pytest.raises(ValueError, match="scores must be"):
        StreamMetrics().update(SCORES[:3], TRUE, [], [], fps=10)


def test_module_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys; import streamact.evaluation.stream, streamact.inference.events; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True).returncode == 0
