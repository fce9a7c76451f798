"""Synthetic gestures: determinism, reversed pairs, annotation format, decodable videos, untrimmed and stream."""
import itertools
import json
import re

import av
import numpy as np
import pytest

from streamact.data.synthetic import (
    FPS,
    GESTURE_CLASSES,
    REVERSED_PAIRS,
    generate_gestures,
    generate_stream,
    generate_untrimmed,
    gesture_trajectory,
    iter_stream_frames,
    render_clip,
)

# Trajectory columns, as documented in `gesture_trajectory`.
VISIBLE, X, Y, SCALE, ANGLE = range(5)
FINGERS = slice(6, 10)
LINE = re.compile(r"^(\d{6});([a-z_]+)$")


def decode(path):
    with av.open(str(path)) as container:
        return np.stack([frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)])


def read_split(path):
    rows = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = LINE.match(line)
        assert match, f"{path}:{number}: {line!r}"
        rows.append(match.groups())
    return rows


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("gestures")
    return out, generate_gestures(out, per_class=3, seed=5, progress=False)


def test_classes_and_pairs():
    assert len(GESTURE_CLASSES) >= 12 and len(set(GESTURE_CLASSES)) == len(GESTURE_CLASSES)
    assert len(REVERSED_PAIRS) >= 3
    paired = [name for pair in REVERSED_PAIRS for name in pair]
    assert set(paired) <= set(GESTURE_CLASSES) and len(set(paired)) == len(paired)
    assert {"no_gesture", "shake", "thumb_up", "open_palm", "fist"} <= set(GESTURE_CLASSES)


def test_render_clip_is_deterministic():
    a = render_clip("shake", np.random.default_rng((1, 2)), 96, 20)
    b = render_clip("shake", np.random.default_rng((1, 2)), 96, 20)
    c = render_clip("shake", np.random.default_rng((1, 3)), 96, 20)
    assert a.shape == (20, 96, 96, 3) and a.dtype == np.uint8
    assert a.tobytes() == b.tobytes()
    assert not np.array_equal(a, c)


@pytest.mark.parametrize("forward,backward", REVERSED_PAIRS)
@pytest.mark.parametrize("hold", [True, False])
def test_reversed_trajectories(forward, backward, hold):
    for seed in range(3):
        fwd = gesture_trajectory(forward, np.random.default_rng(seed), 30, hold=hold)
        bwd = gesture_trajectory(backward, np.random.default_rng(seed), 30, hold=hold)
        np.testing.assert_array_equal(bwd, fwd[::-1])


@pytest.mark.parametrize("forward,backward", REVERSED_PAIRS)
def test_reversed_clips_are_the_same_frames_backwards(forward, backward):
    fwd = render_clip(forward, np.random.default_rng(11), 64, 24)
    bwd = render_clip(backward, np.random.default_rng(11), 64, 24)
    assert bwd.tobytes() == fwd[::-1].tobytes()


def test_forward_classes_move_the_documented_way():
    rng = np.random.default_rng(0)
    for _ in range(5):
        # hold=False: the motion spans the clip, so first and last frames are its two ends.
        left = gesture_trajectory("swipe_left", rng, 24, hold=False)
        assert left[-1, X] < left[0, X] - 0.2  # screen left = decreasing x
        up = gesture_trajectory("swipe_up", rng, 24, hold=False)
        assert up[-1, Y] < up[0, Y] - 0.2  # screen up = decreasing y
        push = gesture_trajectory("push", rng, 24, hold=False)
        assert push[-1, SCALE] > 1.8 * push[0, SCALE]  # towards the camera = larger
        cw = gesture_trajectory("rotate_cw", rng, 24, hold=False)
        assert cw[-1, ANGLE] > cw[0, ANGLE] + 80  # positive angle = clockwise on screen
        zoom = gesture_trajectory("zoom_in", rng, 24, hold=False)
        assert zoom[-1, FINGERS].mean() > zoom[0, FINGERS].mean() + 0.4  # hand opens
        shake = gesture_trajectory("shake", rng, 24, hold=False)
        assert np.ptp(shake[:, X]) > 0.06 and abs(shake[-1, X] - shake[0, X]) < 0.03  # back and forth


def test_trimmed_gestures_have_random_onset_and_speed():
    onsets, durations = set(), set()
    for seed in range(20):
        x = gesture_trajectory("swipe_left", np.random.default_rng(seed), 36)[:, X]
        travelled = (x[0] - x) / (x[0] - x[-1])  # 0 at rest before the swipe, 1 at rest after it
        onset = int(np.argmax(travelled > 0.1))
        offset = int(np.nonzero(travelled < 0.9)[0][-1])
        assert 0 < offset - onset + 1 <= 0.8 * 36
        onsets.add(onset)
        durations.add(offset - onset)
    assert len(onsets) > 5 and len(durations) > 5


def test_static_poses_differ_only_in_shape():
    poses = {}
    for name in ("thumb_up", "open_palm", "fist"):
        traj = gesture_trajectory(name, np.random.default_rng(3), 30)
        assert traj[:, X].std() < 0.01 and traj[:, Y].std() < 0.01 and traj[:, ANGLE].std() < 4
        assert np.ptp(traj[:, SCALE]) == 0 and np.ptp(traj[:, 6:], axis=0).max() == 0
        poses[name] = tuple(traj[0, 6:])
    assert len(set(poses.values())) == 3


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="unknown gesture class"):
        render_clip("wave", np.random.default_rng(0), 64, 8)
    with pytest.raises(ValueError, match="splits"):
        generate_gestures(tmp_path, per_class=2, splits=(0.5, 0.5, 0.5), progress=False)
    with pytest.raises(ValueError, match="per_class"):
        generate_gestures(tmp_path, per_class=0, progress=False)


def test_annotations_parse_and_cover_every_class(dataset):
    out, summary = dataset
    assert (out / "labels.csv").read_text().splitlines() == GESTURE_CLASSES
    splits = {name: read_split(out / f"{name}.csv") for name in ("train", "val", "test")}
    assert {label for _, label in splits["train"]} == set(GESTURE_CLASSES)
    ids = [vid for rows in splits.values() for vid, _ in rows]
    assert len(ids) == len(set(ids)) == 3 * len(GESTURE_CLASSES) == summary["num_videos"]
    assert summary["splits"] == {name: len(rows) for name, rows in splits.items()}
    for name, rows in splits.items():
        assert [(r.meta["id"], r.meta["label_name"]) for r in summary["records"][name]] == rows
        assert all(GESTURE_CLASSES[r.label] == r.meta["label_name"] for r in summary["records"][name])
    assert json.loads((out / "generation.json").read_text())["num_videos"] == summary["num_videos"]


def test_videos_decode_to_their_frame_count(dataset):
    out, summary = dataset
    records = [r for recs in summary["records"].values() for r in recs]
    for record in records:
        assert record.path == out / "videos" / f"{record.meta['id']}.mp4"
        frames = decode(record.path)
        assert frames.shape == (record.num_frames, 160, 160, 3)
        assert 24 <= record.num_frames <= 36
    with av.open(str(records[0].path)) as container:
        assert container.streams.video[0].average_rate == FPS
    assert summary["num_frames"] == sum(r.num_frames for r in records)


def test_generation_is_deterministic_and_worker_independent(tmp_path):
    kwargs = dict(per_class=1, seed=9, size=64, num_frames=(6, 9), progress=False)
    first = generate_gestures(tmp_path / "a", **kwargs)
    second = generate_gestures(tmp_path / "b", **kwargs, num_workers=2)
    for name in ("labels.csv", "train.csv", "val.csv", "test.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    lengths = [[r.num_frames for r in first["records"][s]] for s in ("train", "val", "test")]
    assert lengths == [[r.num_frames for r in second["records"][s]] for s in ("train", "val", "test")]
    # Clip i is drawn from rng((seed, i)) alone: rendering it directly gives the same clip length.
    rng = np.random.default_rng((9, 4))
    assert first["records"]["train"][4].num_frames == int(rng.integers(6, 10))


def test_untrimmed(tmp_path):
    summary = generate_untrimmed(
        tmp_path, per_class=1, seed=2, size=64, length=(40, 60), gesture_fraction=(0.2, 0.3), progress=False
    )
    segments = json.loads((tmp_path / "segments.json").read_text())
    rows = dict(read_split(tmp_path / "train.csv"))
    assert set(rows) == set(segments) and len(segments) == len(GESTURE_CLASSES)
    for vid, seg in segments.items():
        assert seg["label"] == rows[vid]
        assert 40 <= seg["num_frames"] <= 60
        assert 0 <= seg["start"] < seg["end"] <= seg["num_frames"]
        fraction = (seg["end"] - seg["start"]) / seg["num_frames"]
        if seg["label"] == "no_gesture":
            assert (seg["start"], seg["end"]) == (0, seg["num_frames"])
        else:
            # The gesture length is rounded to whole frames.
            assert 0.2 - 1 / seg["num_frames"] <= fraction <= 0.3 + 1 / seg["num_frames"]
        assert len(decode(tmp_path / "videos" / f"{vid}.mp4")) == seg["num_frames"]
    assert summary["records"]["train"][1].meta["segment"] == [segments["000001"]["start"], segments["000001"]["end"]]


def test_untrimmed_subjects_share_a_scene_across_classes(tmp_path):
    def first_frames(out, subjects):
        generate_untrimmed(out, per_class=2, seed=3, size=48, length=(20, 24), subjects=subjects, progress=False)
        return [decode(out / "videos" / f"{i:06d}.mp4")[0].astype(np.float32) for i in range(len(GESTURE_CLASSES) * 2)]

    shared, own = first_frames(tmp_path / "shared", 1), first_frames(tmp_path / "own", None)
    classes = len(GESTURE_CLASSES)
    # video 1 and video 0 show different classes (and video `classes` is take 1 of class 0): one subject -> one
    # scene, differing only by noise, camera shake and the hand
    for other in (1, classes):
        assert np.abs(shared[0] - shared[other]).mean() < 0.5 * np.abs(own[0] - own[other]).mean()
    with pytest.raises(ValueError, match="subjects"):
        generate_untrimmed(tmp_path / "bad", per_class=1, subjects=0, progress=False)


def test_stream_timeline_matches_video(tmp_path):
    timeline = generate_stream(tmp_path / "stream.mp4", num_gestures=5, seed=4, size=64, gap=(0, 3))
    saved = json.loads((tmp_path / "stream.timeline.json").read_text())
    assert saved == timeline
    frames = decode(tmp_path / "stream.mp4")
    assert len(frames) == len(timeline["labels"]) == timeline["num_frames"]
    assert timeline["classes"] == GESTURE_CLASSES and timeline["fps"] == FPS
    labels = np.array(timeline["labels"])
    assert len(timeline["segments"]) == 5
    covered = np.zeros(len(labels), bool)
    for seg in timeline["segments"]:
        assert seg["label"] != "no_gesture" and 12 <= seg["end"] - seg["start"] <= 30  # default DURATION
        assert (labels[seg["start"] : seg["end"]] == GESTURE_CLASSES.index(seg["label"])).all()
        covered[seg["start"] : seg["end"]] = True
    assert (labels[~covered] == 0).all()
    # The in-memory stream yields the very frames and labels that were written.
    streamed = list(iter_stream_frames(num_gestures=5, seed=4, size=64, gap=(0, 3)))
    assert [label for _, label in streamed] == timeline["labels"]
    again = iter_stream_frames(num_gestures=5, seed=4, size=64, gap=(0, 3))
    assert all(a.tobytes() == b.tobytes() for (a, _), (b, _) in zip(streamed, again))
    # H.264 is lossy: compare the decoded video loosely.
    assert np.abs(np.stack([f for f, _ in streamed]).astype(np.float32) - frames).mean() < 15


def test_endless_stream_keeps_going():
    labels = [label for _, label in itertools.islice(iter_stream_frames(seed=1, size=48), 400)]
    assert len(labels) == 400 and len(set(labels)) > 5


@pytest.mark.parametrize("per_class,expected", [(1, (1, 0, 0)), (2, (1, 1, 0)), (3, (1, 1, 1)), (4, (2, 1, 1)),
                                                (5, (3, 1, 1)), (20, (14, 3, 3))])
def test_every_split_gets_a_clip_of_every_class_when_it_can(per_class, expected):
    from streamact.data.synthetic.gestures import _split_sizes

    assert _split_sizes(per_class, (0.7, 0.15, 0.15)) == expected
    assert _split_sizes(per_class, (0.8, 0.2, 0.0))[2] == 0  # a split asked to be empty stays empty


def test_an_empty_split_is_announced(tmp_path, caplog):
    summary = generate_gestures(tmp_path, per_class=2, seed=0, size=32, num_frames=(4, 4), progress=False)
    assert summary["splits"]["test"] == 0
    assert "the test split is empty" in caplog.text and "3 or more per class" in caplog.text
