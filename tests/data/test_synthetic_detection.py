"""Synthetic detection set: determinism, boxes tight around the drawn figures, reversed motion pairs, and both
real formats readable by the loader."""
import numpy as np
import pytest

from streamact.cli.main import main as cli_main
from streamact.data.datasets.detection import (
    JHMDB_FRAME_PATTERN,
    check_detection_annotations,
    load_detection_annotations,
    read_frame,
)
from streamact.data.synthetic import DETECTION_CLASSES, MOTION_PAIRS, generate_detection
from streamact.data.synthetic.detection import _action_pose, _draw_figure, _make_actor, render_detection_video
from streamact.data.synthetic.render import _Scene

SMALL = dict(width=80, height=64, frames=(30, 40), progress=False)


def test_render_is_deterministic_and_tubes_are_well_formed():
    a_frames, a_tubes = render_detection_video(np.random.default_rng(3), labels=[0, 4], num_frames=60, num_actors=3)
    b_frames, b_tubes = render_detection_video(np.random.default_rng(3), labels=[0, 4], num_frames=60, num_actors=3)
    assert np.array_equal(a_frames, b_frames)
    assert len(a_tubes) == len(b_tubes) and all(np.array_equal(x[1], y[1]) for x, y in zip(a_tubes, b_tubes))
    assert a_frames.shape == (60, 120, 160, 3) and a_frames.dtype == np.uint8
    assert a_tubes[0][0] == 0  # the first actor performs the requested labels, in order
    for label, tube in a_tubes:
        assert 0 <= label < len(DETECTION_CLASSES)
        assert np.all(np.diff(tube[:, 0]) == 1) and tube[0, 0] >= 1 and tube[-1, 0] <= 60  # consecutive, 1-based
        assert np.all(tube[:, 3] >= tube[:, 1]) and np.all(tube[:, 4] >= tube[:, 2])
        assert np.all(tube[:, 1:] >= 0) and np.all(tube[:, [1, 3]] <= 159) and np.all(tube[:, [2, 4]] <= 119)
    other = render_detection_video(np.random.default_rng(4), labels=[0, 4], num_frames=60, num_actors=3)[0]
    assert not np.array_equal(a_frames, other)


@pytest.mark.parametrize("seed", range(6))
def test_box_is_tight_around_the_drawn_figure(seed):
    rng = np.random.default_rng(seed)
    actor = _make_actor(rng, 40, 160, 120, [seed % len(DETECTION_CLASSES)], trimmed=True)
    white = {k: np.full(3, 255.0, np.float32) for k in actor.colors}
    for t in (0, 13, 27, 39):
        canvas = np.zeros((120, 160, 3), np.float32)
        shift = tuple(rng.uniform(-4, 4, 2))
        box = _draw_figure(canvas, actor.params[t], white, actor.long_sleeves, shift)
        # Pixels whose centre lies inside a shape are painted at alpha >= 0.5 and shade >= 0.7: value >= 89.
        ys, xs = np.nonzero(canvas[..., 0] >= 0.5 * 0.7 * 255 - 1e-3)
        assert box == (xs.min(), ys.min(), xs.max(), ys.max())
        # Only the anti-aliased rim, under half strength, lies outside the box.
        ys, xs = np.nonzero(canvas[..., 0] > 0)
        assert xs.min() >= box[0] - 1 and xs.max() <= box[2] + 1 and ys.min() >= box[1] - 1 and ys.max() <= box[3] + 1


@pytest.mark.parametrize("forward, reverse", MOTION_PAIRS)
def test_reversed_classes_are_the_forward_pose_sequence_backwards(forward, reverse):
    a = _action_pose(forward, 31, np.random.default_rng(7))
    b = _action_pose(reverse, 31, np.random.default_rng(7))
    assert np.allclose(a[::-1], b)
    assert not np.allclose(a, b)  # and they differ, so only the order tells them apart


def test_actions_move_the_figure_differently():
    # Squatting lowers the head, jumping lifts the feet, raising arms puts the hands above the head.
    rng = np.random.default_rng(0)
    pose = {name: _action_pose(name, 30, rng) for name in ("squat_down", "jump", "arms_raised")}
    assert pose["squat_down"][:, 0].max() > 0.6  # crouch
    assert pose["jump"][:, 1].max() > 0.15  # lift
    assert np.all(np.abs(pose["arms_raised"][10:20, 3:]) > 140)  # arm angles near vertical up


def test_ucf24_variant_in_the_real_format(tmp_path):
    summary = generate_detection(tmp_path, num_videos=8, seed=1, **SMALL)
    ann = load_detection_annotations(tmp_path / "UCF101v2-GT.pkl")  # validates every tube
    assert ann.labels == DETECTION_CLASSES
    assert ann.motion_pairs == [(0, 1), (2, 3)]
    assert len(ann.train_videos) == 1 and ann.videos("test") and ann.videos("train")
    assert set(ann.videos("train")).isdisjoint(ann.videos("test"))
    assert sorted(ann.videos("train") + ann.videos("test")) == sorted(ann.nframes)
    video = ann.videos("train")[0]
    assert (tmp_path / "rgb-images" / video / "00001.jpg").is_file()
    assert read_frame(ann, video, ann.nframes[video]).shape == (64, 80, 3)
    assert ann.resolution[video] == (64, 80)
    report = check_detection_annotations(tmp_path / "UCF101v2-GT.pkl")
    assert report["problems"] == [] and report["missing_frames"] == []
    assert summary["num_videos"] == 8 and sum(summary["tubes_per_class"].values()) == report["num_tubes"]
    # Untrimmed: at least one tube leaves frames of its video unlabelled.
    assert any(len(t) < ann.nframes[v] for v in ann.nframes for _, t in ann.tubes(v))


def test_jhmdb_variant_in_the_real_format(tmp_path):
    generate_detection(tmp_path, variant="jhmdb", num_videos=14, seed=2, **SMALL)
    ann = load_detection_annotations(tmp_path / "JHMDB-GT.pkl")
    assert ann.frame_pattern == JHMDB_FRAME_PATTERN
    assert len(ann.train_videos) == len(ann.test_videos) == 3
    assert ann.videos("test", 0) != ann.videos("test", 1)
    for video in ann.nframes:
        (label, tube), = ann.tubes(video)  # one tube per video, over the whole clip
        assert video.startswith(DETECTION_CLASSES[label] + "/")
        assert tube[:, 0].tolist() == list(range(1, ann.nframes[video] + 1))
        assert (tmp_path / "Frames" / video / "00001.png").is_file()


def test_camera_shake_scales_the_jitter_alone():
    def offsets(shake):
        scene = _Scene(np.random.default_rng(2), 160, shake=shake)
        rng = np.random.default_rng(3)
        moves = []
        for _ in range(20):
            scene.render_with(lambda frame, offset: None, rng)
            moves.append(scene.offset.copy())
        return np.array(moves)

    assert np.abs(offsets(1.0)).max() >= 1 and not offsets(0.0).any()  # a still camera never moves
    # The same video with and without shake: the same actions on the same frames, boxes moved by the shake only.
    still = render_detection_video(np.random.default_rng(5), labels=[0, 2], num_frames=50, num_actors=2,
                                   camera_shake=0.0)[1]
    shaken = render_detection_video(np.random.default_rng(5), labels=[0, 2], num_frames=50, num_actors=2)[1]
    assert [label for label, _ in still] == [label for label, _ in shaken]
    assert all(np.array_equal(a[:, 0], b[:, 0]) for (_, a), (_, b) in zip(still, shaken))
    shifts = np.concatenate([np.abs(a[:, 1:] - b[:, 1:]).ravel() for (_, a), (_, b) in zip(still, shaken)])
    assert 0 < shifts.max() <= 8  # within the scene's jitter margin (5% of the frame)
    with pytest.raises(ValueError, match="camera_shake"):
        generate_detection("unused", num_videos=2, camera_shake=-1.0, **SMALL)


def test_output_does_not_depend_on_workers_or_set_size(tmp_path):
    generate_detection(tmp_path / "one", num_videos=3, seed=5, num_workers=1, **SMALL)
    generate_detection(tmp_path / "two", num_videos=4, seed=5, num_workers=2, **SMALL)
    one = load_detection_annotations(tmp_path / "one" / "UCF101v2-GT.pkl")
    two = load_detection_annotations(tmp_path / "two" / "UCF101v2-GT.pkl")
    for video in one.nframes:
        assert one.nframes[video] == two.nframes[video]
        assert np.array_equal(read_frame(one, video, 5), read_frame(two, video, 5))
        assert all(np.array_equal(a[1], b[1]) for a, b in zip(one.tubes(video), two.tubes(video)))


def test_cli_synth_detection_prints_a_short_summary(tmp_path, capsys):
    code = cli_main(["data", "synth", "detection", "--out", str(tmp_path), "--num-videos", "3", "--variant", "jhmdb",
                     "--width", "64", "--height", "48", "--frames", "20", "24", "--camera-shake", "0"])
    assert code == 0
    out = capsys.readouterr().out
    assert '"annotations"' in out and "JHMDB-GT.pkl" in out and len(out.splitlines()) < 40
    assert '"camera_shake": 0.0' in out
    assert load_detection_annotations(tmp_path / "JHMDB-GT.pkl").resolution
