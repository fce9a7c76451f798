"""Stream sets and stream annotation formats: the synthetic IPN Hand-format generator, the IPN Hand and THUMOS
loaders on fixtures in their real formats, and their bad-input behaviour."""
import logging

import numpy as np
import pytest
from PIL import Image

from streamact.data.check import check_path
from streamact.data.datasets import AnnotationError, build_records, detect_format, discover_splits, load_split
from streamact.data.records import frame_labels
from streamact.data.synthetic import GESTURE_CLASSES, generate_stream_set
from streamact.data.synthetic.streams import iter_stream_frames, stream_video_name
from streamact.io.video import open_video
from streamact.io.writer import write_video


@pytest.fixture(scope="module")
def stream_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("streams")
    summary = generate_stream_set(out, num_streams=(2, 1, 1), num_gestures=3, seed=7, size=48, progress=False)
    return out, summary


def test_stream_set_splits_use_disjoint_seeds_and_write_ipn_files(stream_set):
    out, summary = stream_set
    seeds = {name: set(split["seeds"]) for name, split in summary["splits"].items()}
    assert seeds["train"].isdisjoint(seeds["test"]) and seeds["train"].isdisjoint(seeds["val"])
    assert seeds["val"].isdisjoint(seeds["test"])
    for name in ("Annot_TrainList.txt", "Annot_ValList.txt", "Annot_TestList.txt", "classIdx.txt"):
        assert (out / name).is_file()
    assert (out / "Annot_TestList.txt").read_text().splitlines()[0] == "video,label,id,t_start,t_end,frames"
    assert (out / "classIdx.txt").read_text().splitlines()[1] == "1,no_gesture,no gesture"


def test_stream_set_annotations_match_the_rendered_stream(stream_set):
    """The IPN lines read back give, frame by frame, the labels the generator drew, and cover the whole video."""
    out, summary = stream_set
    assert detect_format(out) == "ipn"
    assert [s.split for s in discover_splits(out)] == ["train", "val", "test"]
    records, classes = load_split(out, "test")
    assert classes == GESTURE_CLASSES
    (record,) = records
    seed = summary["splits"]["test"]["seeds"][0]
    assert record.meta["id"] == stream_video_name(seed)
    truth = [label for _, label in iter_stream_frames(num_gestures=3, seed=seed, size=48)]
    with open_video(record.path) as reader:
        assert reader.num_frames == len(truth) == record.num_frames
    assert frame_labels(record) == truth
    starts = [s for s, _, _ in record.meta["segments"]]
    ends = [e for _, e, _ in record.meta["segments"]]
    assert starts[0] == 0 and ends[-1] == len(truth) and starts[1:] == ends[:-1]  # explicit gaps, no holes
    assert sum(c != 0 for _, _, c in record.meta["segments"]) == 3


def test_stream_set_is_deterministic(stream_set, tmp_path):
    out, _ = stream_set
    generate_stream_set(tmp_path, num_streams=(2, 1, 1), num_gestures=3, seed=7, size=48, progress=False)
    for name in ("Annot_TrainList.txt", "Annot_ValList.txt", "Annot_TestList.txt"):
        assert (tmp_path / name).read_text() == (out / name).read_text()


def test_stream_gaps_and_gestures_follow_the_requested_lengths():
    labels = np.array([label for _, label in iter_stream_frames(num_gestures=12, seed=3, size=32)])
    changes = np.flatnonzero(np.diff(labels)) + 1
    runs = np.split(labels, changes)
    gaps = [len(r) for r in runs if r[0] == 0]
    gestures = [len(r) for r in runs if r[0] != 0]
    assert len(gestures) == 12 and min(gaps) >= 6 and max(gaps) <= 36
    assert min(gestures) >= 12 and max(gestures) <= 30


# ---------------------------------------------------------------------------------------------------------------
# IPN Hand fixtures: real frame folders <video>/<video>_000001.jpg

IPN_CLASSES = "id,label,name\n1,D0X,Non-gesture\n2,B0A,Pointing with one finger\n3,G01,Click with one finger\n"


def _ipn(tmp_path, rows, frames_per_video):
    (tmp_path / "classIdx.txt").write_text(IPN_CLASSES)
    (tmp_path / "Annot_TestList.txt").write_text("video,label,id,t_start,t_end,frames\n" + "".join(r + "\n" for r in rows))
    for video, count in frames_per_video.items():
        folder = tmp_path / "frames" / video
        folder.mkdir(parents=True)
        for f in range(1, count + 1):
            Image.fromarray(np.full((8, 8, 3), f, np.uint8)).save(folder / f"{video}_{f:06d}.jpg")
    return tmp_path


def test_ipn_frame_folders(tmp_path):
    root = _ipn(tmp_path, ["1CM1_1_R_#217,D0X,1,1,4,4", "1CM1_1_R_#217,B0A,2,5,9,5", "1CM1_1_R_#217,D0X,1,10,12,3",
                           "1CM1_2_R_#3,G01,3,1,6,6"], {"1CM1_1_R_#217": 12, "1CM1_2_R_#3": 7})
    records, classes = load_split(root, "test")
    assert detect_format(root / "Annot_TestList.txt") == "ipn"
    assert classes == ["D0X", "B0A", "G01"]
    assert [r.meta["id"] for r in records] == ["1CM1_1_R_#217", "1CM1_2_R_#3"]
    assert frame_labels(records[0]) == [0] * 4 + [1] * 5 + [0] * 3
    assert frame_labels(records[1]) == [2] * 6 + [0]  # a frame no line covers is non-gesture
    with open_video(records[0].path) as reader:
        assert reader.get_frames([4])[0, 0, 0, 0] in (4, 5, 6)  # 1-based frame 5 (JPEG rounding)


def test_ipn_missing_frames_are_skipped_and_counted(tmp_path, caplog):
    root = _ipn(tmp_path, ["a,B0A,2,1,5,5", "b,G01,3,1,5,5", "c,B0A,2,1,3,3"], {"a": 5, "b": 5})
    (root / "frames" / "b" / "b_000003.jpg").unlink()
    with caplog.at_level(logging.WARNING):
        records, _ = load_split(root, "test")
    assert [r.meta["id"] for r in records] == ["a"]
    assert "skipped 2 of 3 videos" in caplog.text


@pytest.mark.parametrize("rows, message", [
    (["a,B0A,2,1,6,6", "a,G01,3,6,8,3"], "overlap"),
    (["a,B0A,2,1,4,4", "a,G01,3,5,12,8"], "the video has 10 frames"),
    (["a,B0A,2,3,2,0"], "t_start <= t_end"),
    (["a,B0A,3,1,2,2"], "disagrees"),
    (["a,XYZ,2,1,2,2"], "unknown label"),
])
def test_ipn_bad_annotations_name_file_and_line(tmp_path, rows, message):
    root = _ipn(tmp_path, rows, {"a": 10})
    (root / "frames" / "a").rename(root / "a_folder")  # an mp4 this time: its length is known without frames
    with open_video(root / "a_folder") as reader:
        write_video(root / "frames" / "a.mp4", list(reader.iter_frames()), fps=12)
    with pytest.raises(AnnotationError, match=message) as info:
        load_split(root, "test")
    assert f"Annot_TestList.txt:{len(rows) + 1}" in str(info.value)


def test_ipn_reports_every_bad_line_in_one_pass_and_keeps_the_good_videos(tmp_path):
    rows = ["a,B0A,2,1,4,4", "a,G01,3,4,6,3",  # line 3 overlaps line 2
            "b,B0A,2,1,3,3", "b,G01,3,5,14,10",  # line 5 runs past b's 10 frames
            "c,B0A,2,1,3,3", "c,XYZ,2,4,5,2", "c,B0A,2,x,5,2",  # unknown label, not a number
            "d,G01,3,2,5,4"]  # good
    root = _ipn(tmp_path, rows, {})
    for video in "abcd":
        write_video(root / "frames" / f"{video}.mp4", [np.full((8, 8, 3), 9 * i, np.uint8) for i in range(10)], fps=12)
    with pytest.raises(AnnotationError, match=r"Annot_TestList\.txt:3: a: frames 4-6 overlaps frames 1-4.*"
                                              r"and 3 more bad lines in this file") as info:
        load_split(root, "test")
    error = info.value
    assert [e.line for e in error.errors] == [3, 5, 7, 8]
    assert "the video has 10 frames" in error.errors[1].reason and "unknown label" in error.errors[2].reason
    assert [r.meta["id"] for r in error.records] == ["c", "d"]  # c's good line still makes a stream
    report = check_path(root, progress=False)
    assert [(b["line"], b["reason"][:2]) for b in report["bad_lines"]] == [(3, "a:"), (5, "b:"), (7, "un"),
                                                                         (8, "ex")]
    assert report["num_videos"] == 2 and report["num_bad"] == 0


# ---------------------------------------------------------------------------------------------------------------
# THUMOS fixtures: <Class>_<split>.txt with "video start_s end_s", videos/<video>.mp4 at 12 fps


def _thumos(tmp_path, files, videos):
    ann = tmp_path / "annotations"
    ann.mkdir()
    for name, text in files.items():
        (ann / name).write_text(text)
    for video, count in videos.items():
        write_video(tmp_path / "videos" / f"{video}.mp4", [np.full((16, 16, 3), 8 * i % 256, np.uint8)
                                                           for i in range(count)], fps=12)
    return ann


def test_thumos_segments_in_seconds(tmp_path, caplog):
    ann = _thumos(tmp_path, {"Diving_test.txt": "v1 0.5 1.0\nv2 0.0 0.25\n", "BaseballPitch_test.txt": "v1 1.5 2.0\n",
                             "Ambiguous_test.txt": "v1 1.0 1.5\n", "Diving_val.txt": "missing 0.0 1.0\n"},
                  {"v1": 30, "v2": 6})
    assert detect_format(ann) == "thumos"
    records, classes = load_split(ann, "test")
    assert classes == ["background", "BaseballPitch", "Diving"]
    labels = frame_labels(records[0])
    assert labels == [0] * 6 + [2] * 6 + [0] * 6 + [1] * 6 + [0] * 6
    assert frame_labels(records[1]) == [2] * 3 + [0] * 3
    with caplog.at_level(logging.WARNING):
        val, _ = load_split(ann, "val")
    assert val == [] and "skipped 1 of 1" in caplog.text


@pytest.mark.parametrize("files, message, where", [
    ({"Diving_test.txt": "v1 0.5 1.0\n", "Run_test.txt": "v1 2.0 2.5\nv1 0.8 1.2\n"}, "overlap", "Run_test.txt:2"),
    ({"Diving_test.txt": "v1 0.5 1.0\nv1 2.0 3.0\n"}, "the video has 30 frames", "Diving_test.txt:2"),
    ({"Diving_test.txt": "v1 1.0 0.5\n"}, "before end", "Diving_test.txt:1"),
    ({"Diving_test.txt": "v1 0.5\n"}, "expected", "Diving_test.txt:1"),
])
def test_thumos_bad_annotations_name_file_and_line(tmp_path, files, message, where):
    ann = _thumos(tmp_path, files, {"v1": 30})
    with pytest.raises(AnnotationError, match=message) as info:
        build_records("thumos", annotation_files=sorted(ann.glob("*_test.txt")), videos_root=tmp_path / "videos")
    assert where in str(info.value)


def test_thumos_reports_every_bad_line_of_the_split_in_one_pass(tmp_path):
    ann = _thumos(tmp_path, {"Diving_test.txt": "v1 0.5 1.0\nv1 2.0 3.0\nv2 0.1\n",
                             "Run_test.txt": "v1 0.8 1.2\nv2 0.0 0.5\nv1 1.5 1.8\n"}, {"v1": 30, "v2": 30})
    with pytest.raises(AnnotationError, match="and 2 more bad lines in these annotations") as info:
        build_records("thumos", annotation_files=sorted(ann.glob("*_test.txt")), videos_root=tmp_path / "videos")
    where = [(e.path.name, e.line) for e in info.value.errors]
    # Past the video's end, malformed, overlapping a segment of another class (file).
    assert where == [("Diving_test.txt", 2), ("Diving_test.txt", 3), ("Run_test.txt", 1)]
    assert [r.meta["id"] for r in info.value.records] == ["v2"]
    assert frame_labels(info.value.records[0])[:6] == [2] * 6
