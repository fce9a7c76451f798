"""Label a corpus: every video of a list or folder through one model, on workers that each hold it compiled.

    LIST file | DIR ──► corpus_videos (deduplicated, in order) ──► skip the done ones (an ``ok`` row in
        OUT/summary.csv whose output file is there)
        ──► workers, each loading the model once: a local process pool (`run_local`, the default) or Ray Data
            actors (`streamact.cluster.corpus.run_ray`) ──► `VideoLabeler`, the one path for one video:
            OUT/<name>.jsonl (+ <name>.events.jsonl | <name>.tubes.json), written under a temporary name and
            renamed when complete
        ──► one row per video ──► OUT/summary.csv (appended as videos finish; rewritten in input order at the end)

A video that is missing or does not decode becomes an error row, never a failed run. A worker that dies mid-video
(killed, out of memory, a crash in a decoder or runtime) is replaced and its video retried once; a second death
makes an error row (`VideoLabeler` keeps the count next to the outputs, so the local pool and Ray follow the same
rule). The local pool is a few processes with one pipe each rather than
`concurrent.futures.ProcessPoolExecutor`, which fails every pending task when one worker dies and cannot tell which
task killed it. Nothing here imports PyTorch unless the model needs it.
"""
from __future__ import annotations

import csv
import hashlib
import json
import multiprocessing
import os
import re
import signal
import socket
import sys
import time
from collections import deque
from collections.abc import Callable
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from pathlib import Path

from streamact.errors import UserError

__all__ = ["CorpusVideo", "CorpusJob", "VideoLabeler", "corpus_videos", "label_corpus", "run_local", "died_row",
           "COLUMNS", "SUMMARY", "VIDEO_SUFFIXES"]

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts")
SUMMARY = "summary.csv"
# One row per video. results: predictions (recognize) or boxes (detect); events: gesture events or tubes.
COLUMNS = ("video", "output", "status", "frames", "results", "events", "seconds", "fps", "attempts", "worker",
           "error")
_NOT_A_FILE = re.compile(r"^(synthetic:|[a-z][a-z0-9+.-]*://)", re.I)  # sources open_source takes that are no path
RowCallback = Callable[["CorpusVideo", dict], None]


@dataclass(frozen=True)
class CorpusVideo:
    """One video of a corpus.

    Attributes:
        source: what `streamact.io.sources.open_source` opens (a path, URL or ``synthetic:`` spec).
        name: stem of its output files, unique in the corpus: the file's stem and a hash of its full path.
    """

    source: str
    name: str


@dataclass
class CorpusJob:
    """What every worker runs; it travels to worker processes and Ray actors, so it holds only plain values.

    Attributes:
        task: ``recognize`` or ``detect``.
        model: as the single-video command takes it (checkpoint, exported model, registered name).
        runtime: inference engine (None: the command's default).
        precision: fp32 or bf16 (None: the runtime's); recognition only.
        options: engine options: recognize ``stride``, ``smoothing``, ``topk``, ``allow_untrained``; detect
            ``mode``, ``min_score``.
        max_frames: read at most this many frames of each video.
        num_threads: inference threads per worker (None: the runtime's choice).
    """

    task: str
    model: str
    runtime: str | None = None
    precision: str | None = None
    options: dict = field(default_factory=dict)
    max_frames: int | None = None
    num_threads: int | None = None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._")[:60] or "video"


def corpus_videos(spec: str | Path) -> list[CorpusVideo]:
    """The videos of a list file or folder, in order, each once.

    Args:
        spec: a folder (its video files, recursively, sorted) or a text file with one video per line (a path,
            relative to the list's folder unless absolute, a URL or a ``synthetic:`` spec; blank lines and lines
            starting with ``#`` are skipped).

    Returns:
        The videos; a path listed twice (also as another spelling of the same file) appears once.

    Raises:
        UserError: no such list or folder, a folder without videos, a video file given as the list, or a list
            that is not text.
    """
    path = Path(spec)
    if path.is_dir():
        sources = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
        if not sources:
            raise UserError(f"{path}: no videos in this folder (looked for {', '.join(VIDEO_SUFFIXES)} files in it "
                            "and its subfolders)")
    elif path.is_file():
        if path.suffix.lower() in VIDEO_SUFFIXES:
            raise UserError(f"{path} is a video, not a list: give a text file with one video per line or a folder "
                            "of videos (or drop --batch to run this one video)")
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            raise UserError(f"{path}: not a text file; give a text file with one video per line") from None
        sources = [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
        sources = [s if _NOT_A_FILE.match(s) else str(path.parent / s) for s in sources]
        if not sources:
            raise UserError(f"{path}: the list names no videos (one path per line)")
    else:
        raise UserError(f"{spec}: no such list file or folder (give a text file with one video per line, or a "
                        "folder of videos)")
    videos, seen = [], set()
    for source in sources:
        key = source if _NOT_A_FILE.match(source) else str(Path(source).resolve())
        if key in seen:
            continue
        seen.add(key)
        stem = source.rpartition("/")[2] if _NOT_A_FILE.match(source) else Path(source).stem
        videos.append(CorpusVideo(source, f"{_slug(stem)}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"))
    return videos


@contextmanager
def _atomic_text(path: Path):
    """A text file written under a temporary name and renamed to `path` when closed, also after an error (what
    was written before it stays); a reader never sees a half-written file under the final name."""
    part = path.with_name(f".{path.name}.part")
    file = open(part, "w", encoding="utf-8")
    try:
        yield file
    finally:
        file.close()
        os.replace(part, path)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"


class VideoLabeler:
    """One worker's model and the one path that runs one video through it (local pool and Ray actors alike).

    Args:
        job: the task, the model and its options; the model is loaded here, once.
        out_dir: where each video's outputs go (every worker must be able to write it: on several machines, a
            shared folder).

    Raises:
        UserError: the model cannot be loaded (as the single-video commands report it).
    """

    def __init__(self, job: CorpusJob, out_dir: str | Path) -> None:
        self.job, self.out_dir = job, Path(out_dir)
        self.worker = f"{socket.gethostname()}:{os.getpid()}"
        if job.task == "recognize":
            from streamact.cli.recognize import load_runtime_or_fallback

            self.runtime, _ = load_runtime_or_fallback(
                job.model, runtime=job.runtime, precision=job.precision, num_threads=job.num_threads,
                allow_untrained=job.options.get("allow_untrained", False))
        elif job.task == "detect":
            from streamact.cli.detect import load_detector

            self.runtime = load_detector(job.model, job.runtime or "torch")
        else:
            raise ValueError(f"task must be recognize or detect, got {job.task!r}")

    def __call__(self, video: CorpusVideo) -> dict:
        """Run `video` and write its outputs; returns its summary row (`COLUMNS`). Never raises for a bad video.

        While it runs, ``OUT/.<name>.running`` names the workers (``host:pid``) that started it, one a line: a
        marker left behind means the workers before died on it. The second attempt runs; a third does not (the
        video killed two workers) and returns `died_row` instead, so any pool or cluster that retries the work of
        a dead worker retries a video once.
        """
        marker = self.out_dir / f".{video.name}.running"
        died = marker.read_text().splitlines() if marker.exists() else []
        if len(died) >= 2:
            marker.unlink()
            return died_row(video, self.worker)
        with open(marker, "a") as f:
            f.write(self.worker + "\n")
        row = {"video": video.source, "output": f"{video.name}.jsonl", "status": "ok", "attempts": len(died) + 1,
               "worker": self.worker, "error": None}
        try:
            row.update(self._run(video))
            if row["error"] is not None:  # the source failed mid-stream: the outputs hold the frames before it
                row["status"] = "error"
        except Exception as e:  # noqa: BLE001 -- whatever one video does, the corpus goes on; the row says why
            row.update(status="error", error=_one_line(e))
        finally:
            marker.unlink(missing_ok=True)
        return row

    def _run(self, video: CorpusVideo) -> dict:
        from streamact.io.sources import open_source

        jsonl_path = self.out_dir / f"{video.name}.jsonl"
        with open_source(video.source) as source:
            if self.job.task == "recognize":
                from streamact.cli.recognize import run_recognition
                from streamact.inference.events import EventDetector
                from streamact.inference.streaming import StreamingEngine

                options = self.job.options
                engine = StreamingEngine(self.runtime, stride=options.get("stride", 1),
                                         smoothing=options.get("smoothing"), topk=options.get("topk", 3))
                events_cfg = self.runtime.pretrained_cfg.events
                detector = EventDetector(engine.labels, events_cfg) if events_cfg.background in engine.labels else None
                with _atomic_text(jsonl_path) as jsonl:
                    if detector is None:
                        s = run_recognition(source, engine, jsonl=jsonl, max_frames=self.job.max_frames,
                                            progress=False)
                    else:
                        with _atomic_text(self.out_dir / f"{video.name}.events.jsonl") as events:
                            s = run_recognition(source, engine, detector=detector, jsonl=jsonl, events=events,
                                                max_frames=self.job.max_frames, progress=False)
                results, events_count = s["predictions"], s["events"]
            else:
                from streamact.cli.detect import _tube_summary, run_detection
                from streamact.inference.detection import DetectionEngine

                engine = DetectionEngine(self.runtime, mode=self.job.options.get("mode", "zero-delay"),
                                         min_display_score=self.job.options.get("min_score", 0.3))
                with _atomic_text(jsonl_path) as jsonl:
                    s, tubes = run_detection(source, engine, jsonl=jsonl, max_frames=self.job.max_frames,
                                             progress=False)
                with _atomic_text(self.out_dir / f"{video.name}.tubes.json") as f:
                    json.dump(_tube_summary(tubes, engine.labels, s["source"], source.fps), f)
                results, events_count = s["detections"], s["tubes"]
        return {"frames": s["frames"], "results": results, "events": events_count, "seconds": s["seconds"],
                "fps": s["fps"], "error": s["error"]}


def died_row(video: CorpusVideo, worker: str | None = None) -> dict:
    """The row of a video whose worker died on both attempts."""
    return {"video": video.source, "output": f"{video.name}.jsonl", "status": "error", "attempts": 2,
            "worker": worker, "error": "the worker running it died twice (killed, out of memory, or a crash in the decoder or "
                     "runtime); run it alone to see why"}


# ---- the local process pool ------------------------------------------------------------------------------------

def _worker_main(job: CorpusJob, out_dir: str, conn) -> None:
    """A pool process: load the model once, then label each video sent until None comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops the workers
    labeler = VideoLabeler(job, out_dir)
    while (video := conn.recv()) is not None:
        conn.send(labeler(video))


@dataclass(eq=False)
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: object
    video: CorpusVideo | None = None  # the one it is running


def run_local(videos: list[CorpusVideo], job: CorpusJob, out_dir: Path, *, workers: int,
              on_row: RowCallback) -> None:
    """Label `videos` on `workers` local processes; calls ``on_row(video, row)`` as each finishes.

    A worker that dies is replaced and its video sent again (`VideoLabeler` runs it once more, then answers
    `died_row`).
    """
    context = multiprocessing.get_context("spawn")  # OpenVINO's and torch's threads do not survive a fork

    def start() -> _Worker:
        parent, child = context.Pipe()
        process = context.Process(target=_worker_main, args=(job, str(out_dir), child), daemon=True,
                                  name="streamact-corpus")
        process.start()
        child.close()
        return _Worker(process, parent)

    queue, deaths = deque(videos), {}
    pool = [start() for _ in range(min(workers, len(videos)))]
    try:
        while queue or any(w.video for w in pool):
            for worker in pool:
                if worker.video is None and queue:
                    worker.video = queue.popleft()
                    worker.conn.send(worker.video)
            busy = [w for w in pool if w.video is not None]
            wait([w.conn for w in busy] + [w.process.sentinel for w in busy])
            for i, worker in enumerate(pool):
                if worker.video is None:
                    continue
                try:
                    row = worker.conn.recv() if worker.conn.poll() else None
                except (EOFError, OSError):
                    row = None
                if row is not None:
                    video, worker.video = worker.video, None
                    on_row(video, row)
                elif not worker.process.is_alive():
                    video = worker.video
                    worker.conn.close()
                    pool[i] = start()
                    deaths[video.name] = deaths.get(video.name, 0) + 1
                    if deaths[video.name] > 2:  # workers died before they could even start it
                        on_row(video, died_row(video))
                    else:
                        queue.appendleft(video)
    finally:
        for worker in pool:
            if worker.process.is_alive() and worker.video is None:
                with suppress(OSError):  # a worker that died took its pipe with it
                    worker.conn.send(None)
        for worker in pool:
            worker.process.join(timeout=5)
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()


# ---- the driver ------------------------------------------------------------------------------------------------

def _prepare_out_dir(out_dir: Path) -> None:
    """Create `out_dir` and check that it can be written.

    Raises:
        UserError: naming the folder, when it cannot be created or written.
    """
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise UserError(f"--out {out_dir}: cannot write there ({e.strerror or e}); choose a folder you can "
                        "write") from None


def _read_rows(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _write_rows(path: Path, rows: list[dict]) -> None:
    with _atomic_text(path) as f:
        writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def label_corpus(videos: list[CorpusVideo], job: CorpusJob, out_dir: str | Path, *, workers: int = 1,
                 ray_address: str | None = None, progress: bool = True) -> dict:
    """Label every video not done yet, on local processes or a Ray cluster; write OUT/summary.csv.

    Args:
        videos: from `corpus_videos`.
        job: the task, model and options.
        out_dir: the output folder; created if missing. A rerun into it skips the videos already done.
        workers: worker processes (local) or actors (Ray), each holding one model.
        ray_address: run on Ray (`streamact.cluster.connect`: ``local``, ``auto`` or HOST:PORT); None: locally.
        progress: a progress bar on stderr (videos, with the frames done so far).

    Returns:
        ``videos``, ``skipped`` (done before), ``ok``, ``errors``, ``frames`` (this run), ``seconds``,
        ``videos_per_s``, ``frames_per_s``, ``workers``, ``engine`` (local or ray) and ``summary`` (its path).

    Raises:
        UserError: an output folder that cannot be written, a model that cannot be loaded, an unreachable Ray
            cluster.
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    _prepare_out_dir(out_dir)
    summary_path = out_dir / SUMMARY
    names = {v.name for v in videos}
    done = {}
    for row in _read_rows(summary_path):
        name = row["output"].removesuffix(".jsonl")
        if row["status"] == "ok" and name in names and (out_dir / row["output"]).is_file():
            done[name] = row
    todo = [v for v in videos if v.name not in done]
    rows: dict[str, dict] = dict(done)
    _write_rows(summary_path, list(done.values()))  # stale rows (to be redone, or of other videos) go
    counts = {"frames": 0, "errors": 0}
    start = time.perf_counter()
    if todo:
        if ray_address is not None:  # an address that does not answer fails first, in seconds
            from streamact.cluster import connect

            connect(ray_address, num_cpus=workers)
        VideoLabeler(job, out_dir)  # the model loads here first, so a bad one is one clear error, not one per video
        bar = tqdm(total=len(todo), desc=job.task, unit="video", disable=not progress, file=sys.stderr)
        with open(summary_path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, COLUMNS, extrasaction="ignore")

            def on_row(video: CorpusVideo, row: dict) -> None:
                rows[video.name] = row
                writer.writerow(row)
                f.flush()  # a crash keeps every finished video's row
                counts["frames"] += int(row.get("frames") or 0)
                counts["errors"] += row["status"] != "ok"
                if row["status"] != "ok":  # the message names the video, unless it came from deeper down
                    message = row["error"] if video.source in row["error"] else f"{video.source}: {row['error']}"
                    tqdm.write(f"error: {message}", file=sys.stderr)
                bar.update(1)
                bar.set_postfix(frames=counts["frames"], errors=counts["errors"], refresh=False)

            try:
                if ray_address is None:
                    run_local(todo, job, out_dir, workers=workers, on_row=on_row)
                else:
                    from streamact.cluster.corpus import run_ray

                    run_ray(todo, job, out_dir, workers=workers, address=ray_address, on_row=on_row)
            finally:
                bar.close()
    seconds = time.perf_counter() - start
    _write_rows(summary_path, [rows[v.name] for v in videos if v.name in rows])  # in input order
    return {"videos": len(videos), "skipped": len(done), "ok": len(todo) - counts["errors"],
            "errors": counts["errors"], "frames": counts["frames"], "seconds": round(seconds, 3),
            "videos_per_s": round(len(todo) / seconds, 3) if todo and seconds > 0 else None,
            "frames_per_s": round(counts["frames"] / seconds, 1) if todo and seconds > 0 else None,
            "workers": workers, "engine": "local" if ray_address is None else "ray", "summary": str(summary_path)}
