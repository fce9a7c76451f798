"""Corpus inference on the local process pool: list parsing, per-video outputs equal to single-video runs, error
rows, resume, a killed worker, and the command line's errors."""
from __future__ import annotations

import csv
import json
import re

import pytest
from corpus_helpers import WorkerKiller, write_video

from streamact.cli.main import main as cli_main
from streamact.errors import UserError
from streamact.inference.corpus import CorpusJob, corpus_videos, label_corpus


def rows_of(out_dir):
    with open(out_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def predictions(path):
    """The model's answers in a JSONL of predictions, without the timing fields."""
    return [(r["frame"], r["label"], r["score"], r["topk"]) for r in map(json.loads, path.read_text().splitlines())]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Two good videos (one in a subfolder), a corrupt one, and a list naming them, a missing one and duplicates."""
    root = tmp_path_factory.mktemp("corpus")
    write_video(root / "a.mp4", seed=1)
    write_video(root / "sub" / "b.mp4", seed=2, frames=36)
    (root / "broken.mp4").write_bytes((root / "a.mp4").read_bytes()[:200])  # truncated
    (root / "list.txt").write_text(f"# a corpus\na.mp4\n\nsub/b.mp4\nmissing.mp4\n./a.mp4\n{root / 'a.mp4'}\n"
                                   "broken.mp4\n")
    return root


def test_list_is_read_relative_to_itself_deduplicated_in_order(corpus, tmp_path):
    videos = corpus_videos(corpus / "list.txt")
    assert [v.source for v in videos] == [str(corpus / p) for p in ("a.mp4", "sub/b.mp4", "missing.mp4",
                                                                    "broken.mp4")]
    assert len({v.name for v in videos}) == 4 and videos[0].name.startswith("a-")
    folder = corpus_videos(corpus)  # a folder: its videos, recursively, sorted
    assert [v.source for v in folder] == [str(corpus / p) for p in ("a.mp4", "broken.mp4", "sub/b.mp4")]
    assert [v.name for v in folder] == [videos[0].name, videos[3].name, videos[1].name]  # same video, same name
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "c.mp4").write_bytes(b"")
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "c.mp4").write_bytes(b"")
    assert len({v.name for v in corpus_videos(tmp_path)}) == 2  # same file name in two folders: two outputs


@pytest.mark.parametrize("name, content, match", [
    ("nothing", None, "no such list file or folder"),
    ("", None, "no videos in this folder"),  # the empty folder itself
    ("v.mp4", b"x", "is a video, not a list"),
    ("l.txt", b"\xff\xfe\x00bin", "not a text file"),
    ("l.txt", b"# nothing\n\n", "names no videos"),
])
def test_bad_lists_are_one_clear_error(tmp_path, name, content, match):
    if content is not None:
        (tmp_path / name).write_bytes(content)
    with pytest.raises(UserError, match=match):
        corpus_videos(tmp_path / name)


def test_batch_writes_what_single_runs_write_error_rows_and_resumes(corpus, tmp_path, capsys):
    out = tmp_path / "out"
    code = cli_main(["recognize", "--batch", str(corpus / "list.txt"), "--out", str(out), "--workers", "2",
                     "--no-progress"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout is the JSON result only
    assert code == 1 and result["ok"] == 2 and result["errors"] == 2 and result["skipped"] == 0
    rows = rows_of(out)
    videos = corpus_videos(corpus / "list.txt")
    assert [r["video"] for r in rows] == [v.source for v in videos]  # input order, each once
    assert [r["status"] for r in rows] == ["ok", "ok", "error", "error"]
    assert "missing.mp4" in rows[2]["error"] and "broken.mp4" in rows[3]["error"]
    assert "error: " + rows[2]["error"] in captured.err
    assert result["frames"] == int(rows[0]["frames"]) + int(rows[1]["frames"]) == 48 + 36
    # Each video's results are exactly what `recognize VIDEO --out-jsonl` writes for it alone.
    for row, video in zip(rows[:2], videos):
        single = tmp_path / f"{video.name}.single.jsonl"
        assert cli_main(["recognize", video.source, "--out-jsonl", str(single), "--no-progress"]) == 0
        assert predictions(out / row["output"]) == predictions(single)
        assert int(row["results"]) == len(predictions(single)) > 0
    assert not list(out.glob(".*"))  # no temporary files or markers left

    # A rerun skips the done videos (their files untouched) and redoes the failed ones, now fixed.
    stamps = {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl")}
    write_video(corpus / "missing.mp4", seed=3, frames=24)
    try:
        code = cli_main(["recognize", "--batch", str(corpus / "list.txt"), "--out", str(out), "--no-progress"])
    finally:
        (corpus / "missing.mp4").unlink()
    result = json.loads(capsys.readouterr().out)
    assert code == 1 and result["skipped"] == 2 and result["ok"] == 1 and result["errors"] == 1
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("*.jsonl") if p.name in stamps} == stamps
    assert [r["status"] for r in rows_of(out)] == ["ok", "ok", "ok", "error"]
    assert rows_of(out)[2]["frames"] == "24"


def test_a_killed_worker_retries_its_video_once_then_writes_an_error_row(tmp_path):
    videos_dir = tmp_path / "videos"
    for seed in (1, 2, 3):
        write_video(videos_dir / f"v{seed}.mp4", seed=seed, frames=96)
    videos = corpus_videos(videos_dir)
    out = tmp_path / "out"
    out.mkdir()
    killer = WorkerKiller(out, {videos[0].name: 2, videos[1].name: 1})  # v1: killed on both tries; v2: once
    killer.start()
    try:
        result = label_corpus(videos, CorpusJob("recognize", "tsm_efficientnet_lite0_stream_gestures"), out,
                              workers=1, progress=False)
    finally:
        killer.stop.set()
    assert [len(killer.killed[v.name]) for v in videos[:2]] == [2, 1]
    rows = rows_of(out)
    assert [(r["status"], r["attempts"]) for r in rows] == [("error", "2"), ("ok", "2"), ("ok", "1")]
    assert "died twice" in rows[0]["error"]
    assert rows[1]["frames"] == rows[2]["frames"] == "96"  # the retry ran the whole video
    assert result["errors"] == 1 and result["ok"] == 2


@pytest.mark.parametrize("argv, match", [
    (["--batch", "LIST"], "--batch needs --out DIR"),
    (["clip.mp4", "--batch", "LIST", "--out", "o"], "either a SOURCE or --batch"),
    (["--batch", "LIST", "--out", "o", "--out-video", "v.mp4"], "--out-video is for one video"),
    (["--batch", "LIST", "--out", "o", "--workers", "0"], "--workers must be at least 1"),
    (["--batch", "LIST", "--out", "FILE/sub"], "--out /.*/FILE/sub: cannot write there"),
    (["--out", "o"], "give a SOURCE .* or --batch"),
    (["clip.mp4", "--ray"], "--out and --ray go with --batch"),
])
def test_command_line_errors_are_one_line(corpus, tmp_path, argv, match, capsys):
    (tmp_path / "FILE").write_text("a file where a folder should be")
    argv = [a.replace("LIST", str(corpus / "list.txt")).replace("FILE", str(tmp_path / "FILE")) for a in argv]
    assert cli_main(["recognize", *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert re.search(match, err), err
