"""Annotation parsers on tiny fixtures in each real format, format detection, and `data check`."""
import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from streamact.data.check import check_dataset, check_path
from streamact.data.datasets import (
    AnnotationError,
    build_records,
    detect_format,
    discover_splits,
    load_split,
    parse_jester,
    parse_kinetics,
    parse_rawframe_list,
    parse_ssv2,
    parse_ucf101,
    parse_video_list,
    scan_video_folder,
)
from streamact.data.records import VideoRecord
from streamact.errors import UserError
from streamact.io.video import open_video
from streamact.io.writer import write_video


def tiny_video(path, n=4):
    return write_video(path, [np.full((16, 16, 3), 40 * i % 256, np.uint8) for i in range(n)], fps=10)


def tiny_frames(folder, n=3):
    folder.mkdir(parents=True)
    for i in range(n):
        Image.fromarray(np.full((12, 16, 3), 50 * i, np.uint8)).save(folder / f"{i + 1:05d}.jpg")
    return folder


# ---------------------------------------------------------------- Jester


@pytest.fixture
def jester(tmp_path):
    """Jester-v1 layout: jester-v1-*.csv next to 20bn-jester-v1/<id>/00001.jpg."""
    root = tmp_path / "jester"
    root.mkdir()
    (root / "jester-v1-labels.csv").write_text("Swiping Left\nSwiping Right\nDoing other things\n")
    (root / "jester-v1-train.csv").write_text("34870;Swiping Left\n56557;Doing other things\n")
    (root / "jester-v1-validation.csv").write_text("9223;Swiping Right\n")
    (root / "jester-v1-test.csv").write_text("100\n")
    for video_id in ("34870", "56557", "9223", "100"):
        tiny_frames(root / "20bn-jester-v1" / video_id)
    return root


def test_parse_jester(jester):
    records, classes = parse_jester(jester / "jester-v1-train.csv", jester / "jester-v1-labels.csv",
                                    jester / "20bn-jester-v1")
    assert classes == ["Swiping Left", "Swiping Right", "Doing other things"]
    assert [(r.path.name, r.label) for r in records] == [("34870", 0), ("56557", 2)]
    assert records[0].path == jester / "20bn-jester-v1" / "34870"
    assert records[0].meta["label_name"] == "Swiping Left"
    with open_video(records[0].path) as reader:
        assert reader.get_frames([0, 2]).shape == (2, 12, 16, 3)


def test_parse_jester_test_split_is_unlabelled(tmp_path):
    (tmp_path / "labels.csv").write_text("A\nB\n")
    (tmp_path / "test.csv").write_text("7\n8;\n")  # a trailing separator also means unlabelled
    records, _ = parse_jester(tmp_path / "test.csv", tmp_path / "labels.csv", tmp_path)
    assert [(r.meta["id"], r.label) for r in records] == [("7", -1), ("8", -1)]


def test_parse_jester_labelled_split_refuses_lines_without_a_label(tmp_path):
    # Training on them would hand the loss a label of -1; `data check` and `train` name each such line instead.
    (tmp_path / "labels.csv").write_text("A\nB\n")
    (tmp_path / "train.csv").write_text("1;A\n2\n3;B\n4;\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: no label for '2' while the other lines have one; "
                                              r"write 'id;label' \(and 1 more bad line") as info:
        parse_jester(tmp_path / "train.csv", tmp_path / "labels.csv", tmp_path)
    assert [e.line for e in info.value.errors] == [2, 4]
    assert [r.meta["id"] for r in info.value.records] == ["1", "3"]


def test_parse_jester_resolves_mp4_videos(tmp_path):
    # The synthetic gesture generator's layout: labels.csv, train.csv and videos/<id>.mp4.
    (tmp_path / "labels.csv").write_text("Swiping Left\nSwiping Right\n")
    (tmp_path / "train.csv").write_text("000001;Swiping Right\n")
    tiny_video(tmp_path / "videos" / "000001.mp4")
    assert detect_format(tmp_path) == "jester"
    [spec] = discover_splits(tmp_path)
    assert spec.paths["frames_root"] == tmp_path / "videos"
    records, _ = spec.build()
    assert records[0].path == tmp_path / "videos" / "000001.mp4" and records[0].label == 1


def test_parse_jester_bad_line_names_file_and_line(jester):
    bad = jester / "jester-v1-train.csv"
    bad.write_text("34870;Swiping Left\n56557;Doing other things;extra\n")
    with pytest.raises(AnnotationError, match=r"jester-v1-train\.csv:2:"):
        parse_jester(bad, jester / "jester-v1-labels.csv", jester)


def test_parse_jester_unknown_class(jester):
    bad = jester / "jester-v1-train.csv"
    bad.write_text("1;Swiping Left\n\n3;Swiping Sideways\n")
    with pytest.raises(AnnotationError, match=r"jester-v1-train\.csv:3: unknown class name 'Swiping Sideways'"):
        parse_jester(bad, jester / "jester-v1-labels.csv", jester)


def test_jester_discovery(jester):
    specs = discover_splits(jester)
    assert [s.split for s in specs] == ["train", "validation", "test"]
    assert {s.format for s in specs} == {"jester"}
    assert all(s.paths["frames_root"] == jester / "20bn-jester-v1" for s in specs)
    assert detect_format(jester / "jester-v1-validation.csv") == "jester"


# ---------------------------------------------------------------- Something-Something v2


@pytest.fixture
def ssv2(tmp_path):
    root = tmp_path / "ssv2"
    root.mkdir()
    labels = {"Approaching something with your camera": "0", "Holding something next to something": "1"}
    (root / "something-something-v2-labels.json").write_text(json.dumps(labels, indent=1))
    train = [
        {"id": "78687", "label": "holding potato next to vicks vaporub bottle",
         "template": "Holding [something] next to [something]", "placeholders": ["potato", "vicks vaporub bottle"]},
        {"id": "42326", "label": "approaching a cup with your camera",
         "template": "Approaching [something] with your camera", "placeholders": ["a cup"]},
    ]
    # One entry per line, as in the released files.
    (root / "something-something-v2-train.json").write_text("[\n" + ",\n".join(json.dumps(e) for e in train) + "\n]\n")
    (root / "something-something-v2-test.json").write_text('[{"id": "1420"}]')
    videos = root / "20bn-something-something-v2"
    videos.mkdir()
    for video_id in ("78687", "42326", "1420"):
        path = videos / f"{video_id}.webm"
        if "libvpx-vp9" not in av.codecs_available:
            path.touch()  # parsing does not decode
            continue
        with av.open(str(path), "w") as container:
            stream = container.add_stream("libvpx-vp9", rate=12)
            stream.width, stream.height, stream.pix_fmt = 16, 16, "yuv420p"
            for i in range(3):
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.full((16, 16, 3), 60 * i, np.uint8))))
            container.mux(stream.encode())
    return root


def test_parse_ssv2(ssv2):
    records, classes = parse_ssv2(ssv2 / "something-something-v2-train.json",
                                  ssv2 / "something-something-v2-labels.json", ssv2 / "20bn-something-something-v2")
    assert classes == ["Approaching something with your camera", "Holding something next to something"]
    assert [(r.path.name, r.label) for r in records] == [("78687.webm", 1), ("42326.webm", 0)]
    assert records[0].meta["placeholders"] == ["potato", "vicks vaporub bottle"]
    if "libvpx-vp9" in av.codecs_available:
        with open_video(records[0].path) as reader:
            assert reader.num_frames == 3
    test, _ = parse_ssv2(ssv2 / "something-something-v2-test.json", ssv2 / "something-something-v2-labels.json",
                         ssv2 / "20bn-something-something-v2")
    assert [(r.path.name, r.label) for r in test] == [("1420.webm", -1)]


def test_parse_ssv2_unknown_template_names_line(ssv2):
    bad = ssv2 / "something-something-v2-train.json"
    bad.write_text('[\n{"id": "1", "template": "Holding [something] next to [something]"},\n'
                   '{"id": "2", "template": "Juggling [something]"}\n]')
    with pytest.raises(AnnotationError, match=r"train\.json:3: unknown class name 'Juggling something'"):
        parse_ssv2(bad, ssv2 / "something-something-v2-labels.json", ssv2)


def test_parse_ssv2_invalid_json_names_line(ssv2):
    bad = ssv2 / "something-something-v2-train.json"
    bad.write_text('[\n{"id": "1", "template": "Holding [something] next to [something]"},\n{"id": "2", }\n]')
    with pytest.raises(AnnotationError, match=r"train\.json:3: invalid JSON"):
        parse_ssv2(bad, ssv2 / "something-something-v2-labels.json", ssv2)
    bad.write_text('[{"template": "Holding [something] next to [something]"}]')
    with pytest.raises(AnnotationError, match=r"train\.json:1: expected an object with an 'id'"):
        parse_ssv2(bad, ssv2 / "something-something-v2-labels.json", ssv2)


def test_ssv2_discovery(ssv2):
    specs = discover_splits(ssv2)
    assert [(s.format, s.split) for s in specs] == [("ssv2", "train"), ("ssv2", "test")]
    assert specs[0].paths["videos_root"] == ssv2 / "20bn-something-something-v2"
    assert detect_format(ssv2 / "something-something-v2-train.json") == "ssv2"


# ---------------------------------------------------------------- Kinetics


@pytest.fixture
def kinetics(tmp_path):
    root = tmp_path / "kinetics"
    root.mkdir()
    (root / "train.csv").write_text(
        "label,youtube_id,time_start,time_end,split\n"
        "abseiling,--07WQ2iBlw,1,11,train\n"
        '"passing American football (in game)",-5kRE1-HPuE,26,36,train\n'
        "abseiling,zzyxZvHjSqI,300,310,train\n"
    )
    (root / "test.csv").write_text("youtube_id,time_start,time_end,split\nabcdefghijk,0,10,test\n")
    tiny_video(root / "train" / "abseiling" / "--07WQ2iBlw_000001_000011.mp4")
    # Many download scripts replace spaces with underscores in class folders.
    tiny_video(root / "train" / "passing_American_football_(in_game)" / "-5kRE1-HPuE_000026_000036.mp4")
    return root


def test_parse_kinetics(kinetics):
    records, classes = parse_kinetics(kinetics / "train.csv", kinetics / "train")
    assert classes == ["abseiling", "passing American football (in game)"]
    assert [r.label for r in records] == [0, 1, 0]
    assert records[0].path == kinetics / "train" / "abseiling" / "--07WQ2iBlw_000001_000011.mp4"
    assert records[1].path == (kinetics / "train" / "passing_American_football_(in_game)"
                               / "-5kRE1-HPuE_000026_000036.mp4")
    assert records[2].path.name == "zzyxZvHjSqI_000300_000310.mp4"  # missing on disk: kept, skipped at load
    assert records[1].meta["time_start"] == 26
    test, _ = parse_kinetics(kinetics / "test.csv", kinetics / "test", class_names=classes)
    assert test[0].label == -1 and test[0].path == kinetics / "test" / "abcdefghijk_000000_000010.mp4"


def test_parse_kinetics_errors_name_file_and_line(kinetics):
    bad = kinetics / "train.csv"
    bad.write_text("label,youtube_id,time_start,time_end,split\nabseiling,x,1,11,train\nabseiling,y,1\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:3: expected 5 fields"):
        parse_kinetics(bad, kinetics)
    bad.write_text("label,youtube_id,time_start,time_end,split\nabseiling,x,one,11,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:2: time_start"):
        parse_kinetics(bad, kinetics)
    bad.write_text("label,youtube_id,time_start,time_end,split\nabseiling,x,1,11,train\nbaking,y,1,11,train\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:3: unknown class name 'baking'"):
        parse_kinetics(bad, kinetics, class_names=["abseiling"])
    bad.write_text("label,id,start,end\nabseiling,x,1,11\n")
    with pytest.raises(AnnotationError, match=r"train\.csv:1: header lacks"):
        parse_kinetics(bad, kinetics)


def test_kinetics_discovery(kinetics):
    specs = discover_splits(kinetics)
    assert [(s.format, s.split) for s in specs] == [("kinetics", "train"), ("kinetics", "test")]
    assert specs[0].paths["videos_root"] == kinetics / "train"


# ---------------------------------------------------------------- UCF-101


@pytest.fixture
def ucf101(tmp_path):
    root = tmp_path / "ucf101"
    lists = root / "ucfTrainTestlist"
    lists.mkdir(parents=True)
    # The official files use Windows line endings.
    (lists / "classInd.txt").write_bytes(b"1 ApplyEyeMakeup\r\n2 ApplyLipstick\r\n3 HandstandPushups\r\n")
    (lists / "trainlist01.txt").write_bytes(
        b"ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1\r\nHandstandPushups/v_HandStandPushups_g08_c01.avi 3\r\n"
    )
    (lists / "testlist01.txt").write_bytes(b"ApplyLipstick/v_ApplyLipstick_g01_c01.avi\r\n")
    tiny_video(root / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    return root


def test_parse_ucf101(ucf101):
    lists = ucf101 / "ucfTrainTestlist"
    records, classes = parse_ucf101(lists / "trainlist01.txt", lists / "classInd.txt", ucf101 / "UCF-101")
    assert classes == ["ApplyEyeMakeup", "ApplyLipstick", "HandstandPushups"]
    assert [r.label for r in records] == [0, 2]
    assert records[0].path == ucf101 / "UCF-101" / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi"
    test, _ = parse_ucf101(lists / "testlist01.txt", lists / "classInd.txt", ucf101 / "UCF-101")
    assert [(r.path.name, r.label) for r in test] == [("v_ApplyLipstick_g01_c01.avi", 1)]


@pytest.mark.parametrize(
    "line,message",
    [
        (b"ApplyEyeMakeup/v_a.avi 7", "label '7' is not in 1..3"),
        (b"ApplyEyeMakeup/v_a.avi 1 extra", "expected"),
        (b"ApplyEyeMakeup/v_a.avi 2", "contradicts folder"),
        (b"Juggling/v_Juggling_g01_c01.avi", "unknown class name 'Juggling'"),
    ],
)
def test_parse_ucf101_errors(ucf101, line, message):
    lists = ucf101 / "ucfTrainTestlist"
    (lists / "trainlist02.txt").write_bytes(b"ApplyEyeMakeup/v_ok.avi 1\r\n" + line + b"\r\n")
    with pytest.raises(AnnotationError, match=rf"trainlist02\.txt:2: .*{message}"):
        parse_ucf101(lists / "trainlist02.txt", lists / "classInd.txt", ucf101)


def test_ucf101_discovery(ucf101):
    specs = discover_splits(ucf101)
    assert [(s.format, s.split) for s in specs] == [("ucf101", "testlist01"), ("ucf101", "trainlist01")]
    assert all(s.paths["videos_root"] == ucf101 / "UCF-101" for s in specs)
    assert detect_format(ucf101 / "ucfTrainTestlist" / "trainlist01.txt") == "ucf101"


# ---------------------------------------------------------------- generic lists


def test_parse_video_list(tmp_path):
    (tmp_path / "list.txt").write_text("a/clip 1.mp4 2\nb/clip2.mp4 0\n/abs/clip3.mp4\n")
    records, classes = parse_video_list(tmp_path / "list.txt")
    assert [(str(r.path), r.label) for r in records] == [
        (str(tmp_path / "a" / "clip 1.mp4"), 2), (str(tmp_path / "b" / "clip2.mp4"), 0), ("/abs/clip3.mp4", -1)
    ]
    assert classes == ["0", "1", "2"]
    (tmp_path / "named.txt").write_text("x.mp4 swing\ny.mp4 1\n")
    records, classes = parse_video_list(tmp_path / "named.txt", root="/data", class_names=["run", "swing"])
    assert [r.label for r in records] == [1, 1] and str(records[0].path) == "/data/x.mp4"


def test_parse_video_list_errors(tmp_path):
    (tmp_path / "list.txt").write_text("x.mp4 0\ny.mp4 swing\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:2: label 'swing' is not an integer"):
        parse_video_list(tmp_path / "list.txt")
    (tmp_path / "classes.txt").write_text("run\njump\n")
    (tmp_path / "list.txt").write_text("x.mp4 run\n\ny.mp4 swing\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:3: unknown class name 'swing'"):
        parse_video_list(tmp_path / "list.txt", class_names=tmp_path / "classes.txt")
    (tmp_path / "list.txt").write_text("x.mp4 5\n")
    with pytest.raises(AnnotationError, match=r"list\.txt:1: label 5 is outside 0..1"):
        parse_video_list(tmp_path / "list.txt", class_names=["run", "jump"])


def test_parse_rawframe_list(tmp_path):
    (tmp_path / "rawframes.txt").write_text("frames/v1 120 3\nframes/v2 45 0\nframes/v3 10\n")
    records, classes = parse_rawframe_list(tmp_path / "rawframes.txt", root=tmp_path / "data")
    assert [(r.path, r.num_frames, r.label) for r in records] == [
        (tmp_path / "data" / "frames" / "v1", 120, 3), (tmp_path / "data" / "frames" / "v2", 45, 0),
        (tmp_path / "data" / "frames" / "v3", 10, -1),
    ]
    assert len(classes) == 4
    (tmp_path / "rawframes.txt").write_text("frames/v1 120 3\nframes/v2 many 0\n")
    with pytest.raises(AnnotationError, match=r"rawframes\.txt:2: expected 'frame_dir num_frames"):
        parse_rawframe_list(tmp_path / "rawframes.txt")


def test_list_and_folder_detection(tmp_path):
    tiny_video(tmp_path / "videos" / "a.mp4")
    tiny_frames(tmp_path / "videos" / "b")
    (tmp_path / "videos" / "notes.txt").write_text("not a video")
    (tmp_path / "list.txt").write_text("videos/a.mp4 0\n")
    (tmp_path / "raw.txt").write_text("videos/b 3 0\n")
    assert detect_format(tmp_path / "list.txt") == "videolist"
    assert detect_format(tmp_path / "raw.txt") == "rawframes"
    assert detect_format(tmp_path / "videos") == "folder"
    records, _ = scan_video_folder(tmp_path / "videos")
    assert [r.path.name for r in records] == ["a.mp4", "b"]


def test_build_records_dispatch(jester):
    records, classes = build_records("jester", annotation_csv=jester / "jester-v1-train.csv",
                                     labels_csv=jester / "jester-v1-labels.csv", frames_root=jester / "20bn-jester-v1")
    assert len(records) == 2 and len(classes) == 3
    with pytest.raises(ValueError, match="unknown dataset format 'hmdb'"):
        build_records("hmdb")


def test_build_records_by_split_name(jester, kinetics):
    records, classes = build_records("jester", root=jester, split="val")  # "val" finds jester-v1-validation.csv
    assert [(r.meta["id"], r.label) for r in records] == [("9223", 1)] and len(classes) == 3
    assert len(load_split(jester, "jester-v1-train")[0]) == 2  # or the annotation file's stem
    with pytest.raises(ValueError, match="no split 'dev'; found train, validation, test"):
        build_records("jester", root=jester, split="dev")
    with pytest.raises(ValueError, match="holds a jester dataset, not ssv2"):
        build_records("ssv2", root=jester, split="train")
    # A Kinetics split lacking some classes keeps the training split's indices.
    (kinetics / "val.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                      '"passing American football (in game)",q,0,10,val\n')
    records, classes = load_split(kinetics, "val", format="kinetics")
    assert classes == ["abseiling", "passing American football (in game)"] and records[0].label == 1


# ---------------------------------------------------------------- data check


def test_check_dataset_reports_unreadable_videos(tmp_path):
    good = tiny_video(tmp_path / "good.mp4", n=5)
    (tmp_path / "empty.mp4").touch()
    (tmp_path / "text.mp4").write_text("hello\n" * 40)
    cut = tiny_video(tmp_path / "cut.mp4", n=30)
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    frames = tiny_frames(tmp_path / "frames", n=3)
    records = [VideoRecord(good, 0), VideoRecord(tmp_path / "empty.mp4", 0), VideoRecord(tmp_path / "text.mp4", 0),
               VideoRecord(cut, 0), VideoRecord(tmp_path / "missing.mp4", 0), VideoRecord(frames, 1, num_frames=4),
               VideoRecord(good, 1)]  # a duplicate path is checked once
    report = check_dataset(records, progress=False)
    assert (report["num_videos"], report["num_ok"], report["num_bad"]) == (6, 2, 4)
    assert report["num_frames"] == 5 + 3
    bad = {entry["path"]: entry["reason"] for entry in report["bad"]}
    assert set(bad) == {str(tmp_path / n) for n in ("empty.mp4", "text.mp4", "cut.mp4", "missing.mp4")}
    assert all(path in reason for path, reason in bad.items())
    assert report["mismatched"] == [{"path": str(frames), "expected": 4, "found": 3}]
    json.dumps(report)  # machine-readable as is


def test_check_path_on_a_dataset_folder(jester):
    (jester / "20bn-jester-v1" / "9223" / "00002.jpg").write_bytes(b"not a jpeg")
    report = check_path(jester, progress=False)
    assert report["format"] == "jester"
    assert report["splits"] == {"train": 2, "validation": 1, "test": 1}
    assert (report["num_videos"], report["num_bad"]) == (4, 1)
    assert "00002.jpg" in report["bad"][0]["reason"]


def test_check_path_reports_every_bad_line_and_every_unreadable_video_in_one_pass(jester):
    (jester / "jester-v1-train.csv").write_text(
        "34870;Swiping Left\n1;2;3\n56557;Doing other things\n77;Swiping Sideways\n")
    (jester / "jester-v1-test.csv").write_text(";\n100\n")
    (jester / "20bn-jester-v1" / "9223" / "00002.jpg").write_bytes(b"not a jpeg")
    report = check_path(jester, progress=False)
    lines = [(Path(b["path"]).name, b["line"]) for b in report["bad_lines"]]
    assert lines == [("jester-v1-train.csv", 2), ("jester-v1-train.csv", 4), ("jester-v1-test.csv", 1)]
    assert "unknown class name 'Swiping Sideways'" in report["bad_lines"][1]["reason"]
    assert report["num_bad_lines"] == 3
    # The good lines' videos are still checked, in the same pass.
    assert report["splits"] == {"train": 2, "validation": 1, "test": 1}
    assert (report["num_videos"], report["num_bad"]) == (4, 1)
    json.dumps(report)


def test_parser_raises_one_error_for_all_bad_lines(jester):
    (jester / "jester-v1-train.csv").write_text("34870;Swiping Left\n1;2;3\n77;Swiping Sideways\n;x\n")
    with pytest.raises(AnnotationError, match=r"jester-v1-train\.csv:2: .*and 2 more bad lines.*data check") as info:
        load_split(jester, "train")
    error = info.value
    assert isinstance(error, UserError)
    assert [e.line for e in error.errors] == [2, 3, 4]
    assert [r.meta["id"] for r in error.records] == ["34870"]


def test_dataset_problems_are_user_errors(jester, tmp_path):
    for call in (lambda: load_split(jester, "dev"), lambda: build_records("hmdb", root=jester, split="train"),
                 lambda: discover_splits(tmp_path / "missing")):
        with pytest.raises(UserError):
            call()
