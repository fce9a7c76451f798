"""Gesture events on synthetic probability sequences: one report per gesture, hysteresis, touching gestures."""
import json

import numpy as np
import pytest

from streamact.errors import UserError
from streamact.inference.events import EventCfg, EventCfgError, EventDetector, detect_events
from streamact.models._pretrained import PretrainedCfg

LABELS = ["no_gesture", "a", "b", "c"]
# Fixed settings (the defaults are tuned for the bundled model and may change): no extra smoothing, two steps to
# start and to end a gesture, a new class must hold three steps.
CFG = EventCfg(alpha=1.0, on_threshold=0.6, min_frames=2, off_threshold=0.4, release_frames=2, early_margin=0.5,
               late_threshold=0.4, switch_frames=3)


def step(background: float, shares: dict[str, float] | None = None) -> np.ndarray:
    """Probabilities: `background` for no_gesture, the rest split by `shares` (default: evenly)."""
    shares = shares or {n: 1.0 for n in LABELS[1:]}
    total = sum(shares.values())
    p = np.array([background] + [(1 - background) * shares.get(n, 0.0) / total for n in LABELS[1:]])
    return p


IDLE = step(0.95)
A = step(0.1, {"a": 0.9, "b": 0.05, "c": 0.05})
B = step(0.1, {"a": 0.05, "b": 0.9, "c": 0.05})
UNSURE_A = step(0.1, {"a": 0.5, "b": 0.4, "c": 0.1})  # leads, but not by the early margin
UNCLEAR = step(0.1)  # no class stands out


def test_clear_gesture_reported_once_early():
    events = detect_events([IDLE] * 5 + [A] * 8 + [IDLE] * 5, LABELS, CFG)
    assert len(events) == 1
    e = events[0]
    assert (e.label, e.label_index, e.trigger) == ("a", 1, "early")
    # starts at the first gesture step (5); min_frames=2 steps of evidence -> emitted at step 6
    assert (e.start_frame, e.end_frame, e.emitted_at_frame) == (5, 6, 6)
    assert e.score == pytest.approx(0.9)
    assert json.loads(json.dumps(e.to_json()))["emitted_at_frame"] == 6


def test_flicker_neither_splits_nor_invents_gestures():
    seq = ([IDLE] * 3 + [A] + [IDLE] * 3  # a one-step blip: below min_frames, no gesture
           + [A] * 4 + [IDLE] + [A] * 4  # a one-step dip: below release_frames, one gesture
           + [A] * 2 + [B] + [A] * 2  # one step led by another class: below switch_frames
           + [IDLE] * 4)
    events = detect_events(seq, LABELS, CFG)
    assert [(e.label, e.start_frame) for e in events] == [("a", 7)]
    # without hysteresis steps the same sequence reports the blip and splits at the dip
    loose = CFG.replace(min_frames=1, release_frames=1, switch_frames=1)
    assert len(detect_events(seq, LABELS, loose)) > 2


def test_detector_smoothing_removes_one_step_flickers():
    seq = [IDLE] * 3 + [A] + [IDLE] * 3 + [A] * 6 + [IDLE] * 6
    eager = CFG.replace(min_frames=1)
    assert [e.start_frame for e in detect_events(seq, LABELS, eager)] == [3, 7]  # the blip is a gesture
    # averaged with weight 0.3 for the newest step, the blip's gesture score is 0.3 * 0.9 + 0.7 * 0.05 < 0.6;
    # the real gesture's reaches 0.3, 0.48, 0.61 on its steps 7, 8, 9: it is seen two steps later
    events = detect_events(seq, LABELS, eager.replace(alpha=0.3))
    assert [(e.label, e.start_frame) for e in events] == [("a", 9)]


def test_touching_gestures_are_two_events():
    events = detect_events([IDLE] * 3 + [A] * 6 + [B] * 6 + [IDLE] * 3, LABELS, CFG)
    assert [(e.label, e.start_frame) for e in events] == [("a", 3), ("b", 9)]
    assert events[1].emitted_at_frame == 9 + CFG.switch_frames - 1  # b held switch_frames steps


def test_touching_unsure_gestures_end_late_at_the_switch():
    cfg = CFG.replace(early_margin=1.0)  # early activation off: both are reported when they end
    events = detect_events([IDLE] * 2 + [A] * 5 + [B] * 5 + [IDLE] * 3, LABELS, cfg)
    assert [(e.label, e.trigger, e.start_frame, e.end_frame) for e in events] == [
        ("a", "late", 2, 6), ("b", "late", 7, 11)]
    assert events[0].emitted_at_frame == 7 + cfg.switch_frames - 1  # decided when b had held
    assert events[1].emitted_at_frame == 12 + cfg.release_frames - 1  # decided when the release held


def test_late_activation_and_unclear_gestures():
    events = detect_events([IDLE] * 2 + [UNSURE_A] * 6 + [IDLE] * 4, LABELS, CFG)
    assert [(e.label, e.trigger, e.start_frame, e.end_frame, e.emitted_at_frame) for e in events] == [
        ("a", "late", 2, 7, 9)]
    assert events[0].score == pytest.approx(0.5)
    assert detect_events([IDLE] * 2 + [UNCLEAR] * 6 + [IDLE] * 4, LABELS, CFG) == []  # best 1/3 < late_threshold


def test_later_steps_weigh_more():
    # step 1 leans b (0.8), step 2 leans a (0.8): weights 1 and 2 -> a = (0.2 + 2 * 0.8) / 3 = 0.6
    early = step(0.0, {"a": 0.2, "b": 0.8})
    later = step(0.0, {"a": 0.8, "b": 0.2})
    events = detect_events([early, later], LABELS, CFG.replace(early_margin=1.0))
    assert [(e.label, e.trigger) for e in events] == [("a", "late")]
    assert events[0].score == pytest.approx(0.6)


def test_stream_shorter_than_the_window_still_reports():
    assert [(e.label, e.trigger) for e in detect_events([A] * 3, LABELS, CFG)] == [("a", "early")]
    assert [(e.label, e.trigger) for e in detect_events([UNSURE_A] * 3, LABELS, CFG)] == [("a", "late")]
    assert detect_events([A], LABELS, CFG) == []  # one step: below min_frames
    assert detect_events(np.zeros((0, 4)), LABELS, CFG) == []


def test_source_frame_indices_and_reset():
    # every 2nd source frame is a model step (frame_interval 2)
    seq = [IDLE] * 3 + [A] * 4 + [IDLE] * 3
    events = detect_events(seq, LABELS, frame_indices=range(0, 2 * len(seq), 2), cfg=CFG)
    assert [(e.start_frame, e.emitted_at_frame) for e in events] == [(6, 8)]
    detector = EventDetector(LABELS, CFG)
    detector.update(0, A)
    detector.reset()  # the half-seen gesture is forgotten
    assert detector.update(1, A) == [] and detector.finish() == []


@pytest.mark.parametrize("change", [dict(on_threshold=0.0), dict(alpha=0), dict(off_threshold=1.5),
                                    dict(early_margin=-0.1),
                                    dict(late_threshold=0), dict(on_threshold=0.3, off_threshold=0.5),
                                    dict(min_frames=0), dict(switch_frames=1.5), dict(smoothing="median")])
def test_settings_out_of_range_are_one_line_user_errors(change):
    with pytest.raises(EventCfgError) as info:
        EventCfg().replace(**change)
    assert isinstance(info.value, UserError) and isinstance(info.value, ValueError)
    assert "\n" not in str(info.value) and next(iter(change)) in str(info.value)


def test_model_without_background_is_refused():
    with pytest.raises(EventCfgError, match="no_gesture"):
        EventDetector(["a", "b"])


def test_settings_travel_in_the_pretrained_cfg():
    cfg = PretrainedCfg(label_names=tuple(LABELS), num_classes=4,
                        events=EventCfg(smoothing="ema", on_threshold=0.7, switch_frames=4))
    restored = PretrainedCfg.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert restored == cfg and restored.events.on_threshold == 0.7
    old_sidecar = {k: v for k, v in cfg.to_dict().items() if k != "events"}
    assert PretrainedCfg.from_dict(old_sidecar).events == EventCfg()  # exports from before keep the defaults
    bad = cfg.to_dict()
    bad["events"]["on_threshold"] = 2
    with pytest.raises(EventCfgError, match="on_threshold"):
        PretrainedCfg.from_dict(bad)
    bad["events"] = {"on_treshold": 0.5}
    with pytest.raises(EventCfgError, match="on_treshold"):
        PretrainedCfg.from_dict(bad)
