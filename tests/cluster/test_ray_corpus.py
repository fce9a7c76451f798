"""Corpus inference on Ray Data, on a two-node cluster of this machine: the same rows and outputs as the local
pool, an actor killed mid-video (retried once, then an error row), and addresses that do not answer."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
import time

import pytest
from corpus_helpers import WorkerKiller, write_video

from streamact.inference.corpus import CorpusJob, corpus_videos, label_corpus

MODEL = "tsm_efficientnet_lite0_stream_gestures"


def rows_of(out_dir):
    with open(out_dir / "summary.csv", newline="") as f:
        return list(csv.DictReader(f))


def answers(path):
    return [(r["frame"], r["label"], r["score"]) for r in map(json.loads, path.read_text().splitlines())]


@pytest.mark.slow  # a Ray cluster (about 15 s to start, once per session) and actors loading the model
def test_ray_gives_the_rows_and_outputs_of_the_local_pool(ray_cluster, tmp_path):
    for seed in (1, 2, 3):
        write_video(tmp_path / "videos" / f"v{seed}.mp4", seed=seed, frames=40)
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"not a video")
    (tmp_path / "list.txt").write_text("videos/v1.mp4\nvideos/v2.mp4\nvideos/v1.mp4\nvideos/nope.mp4\n"
                                       "videos/broken.mp4\nvideos/v3.mp4\n")
    videos = corpus_videos(tmp_path / "list.txt")
    job = CorpusJob("recognize", MODEL, num_threads=1)
    on_ray = label_corpus(videos, job, tmp_path / "ray", workers=2, ray_address=ray_cluster, progress=False)
    local = label_corpus(videos, job, tmp_path / "local", workers=1, progress=False)
    assert on_ray["engine"] == "ray" and (on_ray["ok"], on_ray["errors"]) == (local["ok"], local["errors"]) == (3, 2)
    ray_rows, local_rows = rows_of(tmp_path / "ray"), rows_of(tmp_path / "local")
    keys = ("video", "output", "status", "frames", "results", "events")
    assert [[r[k] for k in keys] for r in ray_rows] == [[r[k] for k in keys] for r in local_rows]
    for row in ray_rows:
        if row["status"] == "ok":
            assert answers(tmp_path / "ray" / row["output"]) == answers(tmp_path / "local" / row["output"])
    assert len({r["worker"] for r in ray_rows}) == 2  # both actors (one per node) took videos
    # A rerun on Ray skips everything done.
    again = label_corpus(videos, job, tmp_path / "ray", workers=2, ray_address=ray_cluster, progress=False)
    assert again["skipped"] == 3 and again["ok"] == 0 and again["errors"] == 2


@pytest.mark.slow  # actors are killed and restarted by Ray, each loading the model again
def test_a_killed_actor_retries_its_video_once_then_writes_an_error_row(ray_cluster, tmp_path):
    for seed in (1, 2, 3):
        write_video(tmp_path / "videos" / f"v{seed}.mp4", seed=seed, frames=96)
    videos = corpus_videos(tmp_path / "videos")
    out = tmp_path / "out"
    out.mkdir()
    killer = WorkerKiller(out, {videos[0].name: 2, videos[1].name: 1})
    killer.start()
    try:
        result = label_corpus(videos, CorpusJob("recognize", MODEL, num_threads=1), out, workers=2,
                              ray_address=ray_cluster, progress=False)
    finally:
        killer.stop.set()
    assert [len(killer.killed[v.name]) for v in videos[:2]] == [2, 1]
    rows = rows_of(out)
    assert [(r["status"], r["attempts"]) for r in rows] == [("error", "2"), ("ok", "2"), ("ok", "1")]
    assert "died twice" in rows[0]["error"] and rows[1]["frames"] == "96"
    assert result["errors"] == 1


@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-port-here"])
def test_an_address_without_a_cluster_is_a_clear_error_in_seconds(address, tmp_path):
    write_video(tmp_path / "v.mp4", seed=1, frames=8)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streamact", "recognize", "--batch", str(tmp_path), "--out",
                           str(tmp_path / "out"), "--ray", address, "--no-progress"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=120)
    assert time.monotonic() - start < 60  # a hang guard, not a timing: Ray alone retries for a minute or more
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith(f"error: --ray {address}: ") and proc.stderr.count("\n") == 1, proc.stderr
