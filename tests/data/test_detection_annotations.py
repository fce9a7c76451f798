"""Detection annotations: the official Python-2 pickles, our own, validation of bad input, the box-track converter
and `streamact data check` / `convert-boxes` on them."""
import json
import pickle
import re
import struct

import numpy as np
import pytest
from PIL import Image

from streamact.cli.main import main as cli_main
from streamact.data.datasets.box_tracks import convert_box_tracks
from streamact.data.datasets.detection import (
    JHMDB_FRAME_PATTERN,
    check_detection_annotations,
    load_detection_annotations,
    read_frame,
    save_detection_annotations,
)
from streamact.errors import UserError


class Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote (protocol 2): every str and bytes as a py2 byte string (latin-1), and
    numpy's reconstructor under its old module name."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        data = obj.encode("latin-1") if isinstance(obj, str) else bytes(obj)
        if len(data) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(data)]) + data)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(data)) + data)
        self.memoize(obj)

    dispatch[str] = save_py2_str
    dispatch[bytes] = save_py2_str

    def save_global(self, obj, name=None):
        module = {"numpy._core.multiarray": "numpy.core.multiarray", "builtins": "__builtin__"}.get(
            obj.__module__, obj.__module__)
        self.write(pickle.GLOBAL + f"{module}\n{name or obj.__qualname__}\n".encode())
        self.memoize(obj)


def official_dict():
    """A tiny dataset in the official layout: JHMDB-like names, two classes, float32 tubes."""
    tube = np.array([[f, 10 + f, 20, 40 + f, 60] for f in range(1, 6)], np.float32)
    return {
        "labels": ["brush_hair", "catch"],
        "nframes": {"brush_hair/vid_a": np.int32(5), "catch/vid_b": 5},  # numpy scalars occur in the real files
        "resolution": {"brush_hair/vid_a": (80, 100), "catch/vid_b": (80, 100)},
        "gttubes": {"brush_hair/vid_a": {0: [tube]}, "catch/vid_b": {1: [tube.copy()]}},
        "train_videos": [["brush_hair/vid_a"], ["catch/vid_b"], ["brush_hair/vid_a"]],
        "test_videos": [["catch/vid_b"], ["brush_hair/vid_a"], ["catch/vid_b"]],
        "some_future_key": {"ignored": True},
    }


def write_py2(path, data):
    with open(path, "wb") as f:
        Py2Pickler(f, protocol=2).dump(data)


def test_python2_pickle_loads_with_latin1(tmp_path):
    path = tmp_path / "JHMDB-GT.pkl"
    write_py2(path, official_dict())
    raw = path.read_bytes()
    assert b"numpy.core.multiarray" in raw and pickle.SHORT_BINSTRING + bytes([6]) + b"labels" in raw
    with pytest.raises(UnicodeDecodeError):  # what a plain Python-3 load of such a file does
        pickle.loads(raw.replace(b"brush_hair", b"br\xfcsh_hair"))
    ann = load_detection_annotations(path)
    assert ann.labels == ["brush_hair", "catch"]
    assert ann.frame_pattern == JHMDB_FRAME_PATTERN  # by the file name
    assert ann.videos("test", 1) == ["brush_hair/vid_a"] and len(ann.train_videos) == 3
    tube = ann.gttubes["catch/vid_b"][1][0]
    assert tube.dtype == np.float32 and tube[2].tolist() == [3, 13, 20, 43, 60]
    assert ann.resolution["brush_hair/vid_a"] == (80, 100)
    assert ann.frame_path("catch/vid_b", 3) == tmp_path / "Frames/catch/vid_b/00003.png"


def test_python2_pickle_with_non_ascii_names(tmp_path):
    data = official_dict()
    data["labels"] = ["brüsh_hair", "catch"]
    write_py2(tmp_path / "JHMDB-GT.pkl", data)
    assert load_detection_annotations(tmp_path / "JHMDB-GT.pkl").labels[0] == "brüsh_hair"


def test_own_pickle_round_trip_keeps_extras(tmp_path):
    ann = load_detection_annotations(_write_official(tmp_path))
    ann.motion_pairs = [(0, 1)]
    ann.frame_pattern = "frames/{video}/{frame:04d}.jpg"
    save_detection_annotations(ann, tmp_path / "own.pkl")
    again = load_detection_annotations(tmp_path / "own.pkl", root=tmp_path / "elsewhere")
    assert again.motion_pairs == [(0, 1)] and again.frame_pattern == ann.frame_pattern
    assert again.root == tmp_path / "elsewhere"
    assert np.array_equal(again.gttubes["catch/vid_b"][1][0], ann.gttubes["catch/vid_b"][1][0])


def _write_official(tmp_path, mutate=None):
    data = official_dict()
    if mutate:
        mutate(data)
    path = tmp_path / "UCF101v2-GT.pkl"
    write_py2(path, data)
    return path


def _tube(data, video="catch/vid_b", label=1):
    return data["gttubes"][video][label][0]


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: _tube(d).__setitem__((4, 0), 9), r"video catch/vid_b frame 9 \(label 1\): frame outside 1\.\.5"),
        (lambda d: _tube(d)[1].__setitem__(slice(1, 5), (110, 20, 120, 60)),
         r"video catch/vid_b frame 2 .*\(110, 20, 120, 60\) lies outside the 100x80 frame"),
        (lambda d: _tube(d).__setitem__((2, 3), 5), r"video catch/vid_b frame 3 .*x2 < x1"),
        (lambda d: d["gttubes"].__setitem__("catch/vid_b", {}), r"video catch/vid_b: no ground-truth tubes"),
        (lambda d: d["nframes"].pop("catch/vid_b"), r"video catch/vid_b: listed in a split but has no nframes"),
        (lambda d: _tube(d).__setitem__((3, 0), 2), r"video catch/vid_b frame 2 .*not strictly increasing"),
    ],
)
def test_bad_tubes_raise_one_line_naming_video_and_frame_or_are_skipped(tmp_path, mutate, message):
    path = _write_official(tmp_path, mutate)
    with pytest.raises(UserError, match=message) as info:
        load_detection_annotations(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)
    ann = load_detection_annotations(path, on_error="skip")
    assert re.search(message, ann.skipped[0])  # then, as its only tube is gone: "no ground-truth tubes"
    assert ann.skipped[-1] in (ann.skipped[0], "video catch/vid_b: no ground-truth tubes")
    assert "catch/vid_b" not in ann.videos("train", 1)  # its only tube was bad: the video leaves the splits
    assert ann.videos("train", 0) == ["brush_hair/vid_a"]  # the good video stays


def test_boxes_partly_outside_the_frame_are_clipped_and_counted(tmp_path):
    def stick_out(d):
        _tube(d)[1, 3] = 130  # x2 beyond the 100-pixel width
        _tube(d)[2, 1] = -4  # x1 left of the frame

    path = _write_official(tmp_path, stick_out)
    ann = load_detection_annotations(path)
    tube = ann.gttubes["catch/vid_b"][1][0]
    assert tube[1, 1:].tolist() == [12, 20, 100, 60] and tube[2, 1:].tolist() == [0, 20, 43, 60]
    assert ann.clipped_boxes == 2 and ann.skipped == []
    assert check_detection_annotations(path)["clipped_boxes"] == 2


def test_structural_problems_and_unsafe_pickles(tmp_path):
    (tmp_path / "list.pkl").write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(UserError, match="expected a dict"):
        load_detection_annotations(tmp_path / "list.pkl")
    (tmp_path / "partial.pkl").write_bytes(pickle.dumps({"labels": []}))
    with pytest.raises(UserError, match="missing key.*nframes"):
        load_detection_annotations(tmp_path / "partial.pkl")
    with pytest.raises(UserError, match="not found"):
        load_detection_annotations(tmp_path / "absent.pkl")
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "UCF101v2-GT.pkl").write_bytes(b"")
    with pytest.raises(UserError, match=r"set: a folder, not an annotation file; .*\(UCF101v2-GT.pkl\)"):
        load_detection_annotations(tmp_path / "set")

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, ("echo pwned",))

    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"labels": Evil()}))
    with pytest.raises(UserError, match="system.*never needs"):
        load_detection_annotations(tmp_path / "evil.pkl")


def _write_frames(root, pattern, video, n, size=(100, 80), skip=()):
    for f in range(1, n + 1):
        if f in skip:
            continue
        path = root / pattern.format(video=video, frame=f)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((size[1], size[0], 3), f * 10, np.uint8)).save(path)


def test_read_frame_and_check_report_missing_frames(tmp_path):
    path = _write_official(tmp_path)
    (tmp_path / "Frames").mkdir()
    _write_frames(tmp_path, JHMDB_FRAME_PATTERN, "brush_hair/vid_a", 5)
    _write_frames(tmp_path, JHMDB_FRAME_PATTERN, "catch/vid_b", 5, skip=(3, 4))
    ann = load_detection_annotations(path)
    assert ann.frame_pattern == JHMDB_FRAME_PATTERN  # found the Frames/ folder
    frame = read_frame(ann, "brush_hair/vid_a", 2)
    assert frame.shape == (80, 100, 3) and frame.dtype == np.uint8 and frame[0, 0, 0] == 20
    with pytest.raises(UserError, match=r"video catch/vid_b frame 3: frame file .*00003.png is missing"):
        read_frame(ann, "catch/vid_b", 3)
    report = check_detection_annotations(path)
    assert report["problems"] == []
    assert report["missing_frames"] == [
        f"video catch/vid_b frame 3: 2 of 5 frame files missing (first: {tmp_path}/Frames/catch/vid_b/00003.png)"]
    assert (report["num_videos"], report["num_tubes"], report["num_frames"]) == (2, 2, 10)


def test_data_check_cli_lists_every_problem(tmp_path, capsys):
    def break_two(d):
        _tube(d).__setitem__((0, 3), 5)
        _tube(d, "brush_hair/vid_a", 0).__setitem__((4, 0), 7)

    path = _write_official(tmp_path, break_two)
    (tmp_path / "Frames").mkdir()
    for video in ("brush_hair/vid_a", "catch/vid_b"):
        _write_frames(tmp_path, JHMDB_FRAME_PATTERN, video, 5)
    assert cli_main(["data", "check", str(path), "--json", str(tmp_path / "report.json")]) == 1
    out = capsys.readouterr().out
    assert "2 videos, 0 tubes, 10 frames: 4 annotation problem(s)" in out  # each video lost its only tube
    assert "video catch/vid_b frame 1 (label 1)" in out and "video brush_hair/vid_a frame 7 (label 0)" in out
    assert len(json.loads((tmp_path / "report.json").read_text())["problems"]) == 4


# --------------------------------------------------------------------------------------------------------------------
# Box-track converter.

CSV_HEADER = "video,frame,actor_id,label,x1,y1,x2,y2\n"


def _csv_rows(video, actor, label, frames, x=10):
    return "".join(f"{video},{f},{actor},{label},{x + f},20,{x + 30 + f},70\n" for f in frames)


def test_convert_box_tracks_csv(tmp_path):
    for video in ("cam1", "cam2", "cam3"):
        _write_frames(tmp_path, "rgb-images/{video}/{frame:05d}.jpg", video, 12)
    csv_text = (CSV_HEADER + _csv_rows("cam1", "p1", "wave", range(1, 6)) + _csv_rows("cam1", "p1", "jump", range(6, 9))
                + _csv_rows("cam1", "p2", "wave", range(3, 13), x=50) + _csv_rows("cam2", "p1", "jump", range(2, 5))
                + _csv_rows("cam3", "a", "wave", range(1, 4)))
    (tmp_path / "boxes.csv").write_text(csv_text)
    ann = convert_box_tracks(tmp_path / "boxes.csv", tmp_path / "mine-GT.pkl", test_fraction=0.34)
    assert ann.labels == ["wave", "jump"]
    assert ann.nframes == {"cam1": 12, "cam2": 12, "cam3": 12}
    assert ann.resolution["cam1"] == (80, 100)
    assert [len(ann.gttubes["cam1"][label]) for label in (0, 1)] == [2, 1]  # p1's label change starts a new tube
    wave = ann.gttubes["cam1"][0][0]
    assert wave[:, 0].tolist() == [1, 2, 3, 4, 5] and wave[0, 1:].tolist() == [11, 20, 41, 70]
    assert ann.test_videos == [["cam3"]] and ann.train_videos == [["cam1", "cam2"]]
    loaded = load_detection_annotations(tmp_path / "mine-GT.pkl")
    assert loaded.labels == ann.labels and loaded.videos("test") == ["cam3"]


def test_convert_box_tracks_json_with_splits(tmp_path):
    _write_frames(tmp_path, "frames/{video}/{frame:04d}.png", "clip", 4)
    rows = [{"video": "clip", "frame": f, "actor_id": 1, "label": "run", "x1": 1, "y1": 2, "x2": 30, "y2": 40,
             "split": "test"} for f in (1, 2, 3)]
    (tmp_path / "boxes.json").write_text(json.dumps(rows))
    ann = convert_box_tracks(tmp_path / "boxes.json", tmp_path / "out" / "x-GT.pkl", root=tmp_path,
                             frame_pattern="frames/{video}/{frame:04d}.png")
    assert ann.test_videos == [["clip"]] and ann.train_videos == [[]]
    assert load_detection_annotations(tmp_path / "out" / "x-GT.pkl", root=tmp_path).nframes == {"clip": 4}


@pytest.mark.parametrize(
    "rows, message",
    [
        (_csv_rows("cam1", "p1", "wave", [1, 2, 5, 6]),
         r"boxes.csv:4: video cam1 actor p1: frame 5 follows frame 2 .*own actor_id"),
        ("cam1,1,p1,wave,50,20,10,70\n", r"video cam1 frame 1 \(label 0\): box .* x2 < x1"),
        ("cam1,1,p1,wave,120,20,150,70\n", r"video cam1 frame 1 \(label 0\): box .* outside the 100x80 frame"),
        ("cam1,20,p1,wave,5,5,10,10\n", r"video cam1 frame 20 \(label 0\): frame outside 1\.\.12"),
        ("cam1,x,p1,wave,5,5,10,10\n", r"boxes.csv:2: expected video,frame"),
        ("nope,1,p1,wave,5,5,10,10\n", r"video nope frame 1: frame file .* not found"),
        (_csv_rows("cam1", "p1", "wave", [1, 1]), r"boxes.csv:3: video cam1 actor p1 frame 1 already has a box"),
    ],
)
def test_convert_box_tracks_bad_input(tmp_path, rows, message):
    _write_frames(tmp_path, "rgb-images/{video}/{frame:05d}.jpg", "cam1", 12)
    (tmp_path / "boxes.csv").write_text(CSV_HEADER + rows)
    with pytest.raises(UserError, match=message) as info:
        convert_box_tracks(tmp_path / "boxes.csv", tmp_path / "x-GT.pkl")
    assert "\n" not in str(info.value)
    assert not (tmp_path / "x-GT.pkl").exists()


def test_convert_boxes_cli(tmp_path, capsys):
    _write_frames(tmp_path / "data", "rgb-images/{video}/{frame:05d}.jpg", "cam1", 6)
    (tmp_path / "boxes.csv").write_text(CSV_HEADER + _csv_rows("cam1", "p1", "wave", range(1, 6)))
    out = tmp_path / "data" / "mine-GT.pkl"
    assert cli_main(["data", "convert-boxes", str(tmp_path / "boxes.csv"), "--out", str(out),
                     "--test-fraction", "0"]) == 0
    assert "1 videos (1 train, 0 test), 1 classes, 1 tubes" in capsys.readouterr().out
    assert cli_main(["data", "check", str(out)]) == 0
    assert cli_main(["data", "check", str(tmp_path / "data")]) == 0  # a folder with one *-GT.pkl
    assert "1 videos, 1 tubes, 6 frames" in capsys.readouterr().out
