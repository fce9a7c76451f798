"""Beyond one machine, measured on one: a corpus on the local process pool vs Ray Data actors, and the stream
server alone vs as 1 and 2 Ray Serve replicas.

    synthetic gesture videos (mp4 files) ──► `run_local` / `run_ray` (what `recognize --batch` runs), 1 and 2
        workers, each its own model, on one Ray started in this process ──► the time each video's row arrives
        ──► videos/s and frames/s over the whole run, time to the first video, per-video time once running
    N camera-like WebSocket streams at 15 frames/s (`streamact.serve.loadgen`) ──► `streamact serve` in its own
        process, then Ray Serve's proxy in front of 1 and 2 replicas ──► processed frames/s, drops, latency
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

SECTION = "cluster"
FPS = 15.0


def _progress(message: str) -> None:
    print(message, file=sys.stderr)  # stdout is for the result


def _write_videos(folder: Path, count: int, frames: int) -> None:
    from streamact.data.synthetic.streams import iter_stream_frames
    from streamact.io.writer import write_video

    folder.mkdir(parents=True)
    for seed in range(count):
        stream = iter_stream_frames(seed=seed)
        write_video(folder / f"v{seed:03d}.mp4", (next(stream)[0] for _ in range(frames)), fps=FPS)


def _driver_and_ray_cpu_s() -> float:
    """CPU seconds used so far by this process and the processes Ray runs for it (its control store, node manager,
    object store: started from this process by a local Ray), not counting the workers that label videos (Ray's,
    named ``ray::...``, and the pool's)."""
    ticks = os.sysconf("SC_CLK_TCK")
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:  # ended meanwhile
                continue
            procs[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks, cmdline)
    total, todo = 0.0, [os.getpid()]
    while todo:
        pid = todo.pop()
        _, cpu, cmdline = procs[pid]
        if not cmdline.startswith(b"ray::") and b"multiprocessing" not in cmdline:
            total += cpu
        todo += [child for child, (parent, _, _) in procs.items() if parent == pid]
    return total


def corpus_run(engine: str, workers: int, videos: list, job, out_dir: Path) -> dict:
    """One corpus through `engine` (``local`` or ``ray``, already connected) on `workers` workers.

    Returns:
        ``engine``, ``workers``, ``seconds`` (start to the last row), ``videos_per_s``, ``frames_per_s`` (whole
        run), ``first_s`` (start to the first row: workers starting, loading the model, one video),
        ``steady_s_per_video`` (worker seconds per video once every worker has finished its first one) and
        ``driver_ray_cpu_ms_per_video`` (CPU of this process and of Ray's own processes, per video).
    """
    from streamact.cluster.corpus import run_ray
    from streamact.inference.corpus import run_local

    arrivals: list[float] = []
    frames = []

    def on_row(video, row: dict) -> None:
        if row["status"] != "ok":
            raise RuntimeError(f"{video.source}: {row['error']}")
        arrivals.append(time.perf_counter())
        frames.append(int(row["frames"]))

    out_dir.mkdir(parents=True)
    cpu_before = _driver_and_ray_cpu_s()
    start = time.perf_counter()
    if engine == "local":
        run_local(videos, job, out_dir, workers=workers, on_row=on_row)
    else:
        run_ray(videos, job, out_dir, workers=workers, address="local", on_row=on_row)
    overhead_cpu_s = _driver_and_ray_cpu_s() - cpu_before
    seconds = arrivals[-1] - start
    # Each worker's first row carries its start-up; the rows after it come at the steady pace.
    steady = (arrivals[-1] - arrivals[workers - 1]) / (len(videos) - workers) * workers
    return {"engine": engine, "workers": workers, "videos": len(videos), "frames": sum(frames),
            "seconds": round(seconds, 2), "videos_per_s": round(len(videos) / seconds, 2),
            "frames_per_s": round(sum(frames) / seconds, 1), "first_s": round(arrivals[0] - start, 2),
            "steady_s_per_video": round(steady, 3),
            "driver_ray_cpu_ms_per_video": round(1000 * overhead_cpu_s / len(videos), 1)}


def serve_runs(server: str, base: str, frames: list[bytes], levels: tuple[int, ...], seconds: float) -> list[dict]:
    from streamact.serve.loadgen import run_streams

    runs = []
    for n in levels:
        _progress(f"  {server}: {n} streams at {FPS:g} frames/s for {seconds:g} s ...")
        runs.append({"server": server, **run_streams(base, frames, streams=n, fps=FPS, seconds=seconds)})
    return runs


def run(*, quick: bool = False, data_root: Path | None = None) -> dict:
    """Corpus on the pool and on Ray, then streams against the server and its replicas; a JSON-able dict.

    Args:
        quick: 8 videos, streams at 2 and 6 for 8 s (a few minutes); the full run takes 24 videos and streams at
            2, 4 and 8 for 20 s.
        data_root: unused (the videos are generated).
    """
    from ray import serve

    from streamact.benchmark.serve import _free_port, start_server
    from streamact.cli.recognize import DEFAULT_MODEL
    from streamact.cluster import connect
    from streamact.cluster.serve import ServerSpec, serve_replicas
    from streamact.inference.corpus import CorpusJob, corpus_videos
    from streamact.serve.limits import Limits
    from streamact.serve.loadgen import encode_video_frames

    count, frames_per_video = (8, 96) if quick else (24, 96)
    levels, seconds = ((2, 6), 8.0) if quick else ((2, 4, 8), 20.0)
    result: dict = {"quick": quick, "model": DEFAULT_MODEL, "cpus": os.cpu_count(),
                    "load_average_start": round(os.getloadavg()[0], 1)}
    with tempfile.TemporaryDirectory(prefix="streamact-cluster-") as tmp:
        workdir = Path(tmp)
        _write_videos(workdir / "videos", count, frames_per_video)
        videos = corpus_videos(workdir / "videos")
        frames = encode_video_frames(videos[0].source)
        t0 = time.perf_counter()
        connect("local", num_cpus=os.cpu_count())
        result["ray_start_s"] = round(time.perf_counter() - t0, 2)
        result["corpus"] = []
        job = CorpusJob("recognize", DEFAULT_MODEL, num_threads=1)  # one thread a worker: Ray's cost alone differs
        for workers in (1, 2):
            for engine in ("local", "ray"):
                _progress(f"corpus of {count} videos on {engine} with {workers} worker(s) ...")
                result["corpus"].append(corpus_run(engine, workers, videos, job, workdir / f"{engine}{workers}"))

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    result["serve"] = []
    _progress("streamact serve alone ...")
    server = start_server(port, max_streams=max(levels) + 8)
    try:
        result["serve"] += serve_runs("streamact serve", base, frames, levels, seconds)
    finally:
        server.terminate()
        server.wait(30)
    for replicas in (1, 2):
        _progress(f"{replicas} Ray Serve replica(s) ...")
        spec = ServerSpec(DEFAULT_MODEL, app_options={"workers": max(1, (os.cpu_count() or 1) // replicas),
                                                      "limits": Limits(max_streams=max(levels) + 8,
                                                                       idle_timeout_s=120)})
        serve_replicas(spec, address="local", replicas=replicas, host="127.0.0.1", port=port, block=False)
        try:  # serve_replicas returns once the proxy routes to the replicas
            result["serve"] += serve_runs(f"{replicas} replica{'s' if replicas > 1 else ''}", base, frames, levels,
                                          seconds)
        finally:
            serve.shutdown()
    result["load_average_end"] = round(os.getloadavg()[0], 1)
    return result


def overheads(result: dict) -> list[dict]:
    """Ray's cost against the local pool at each worker count: start-up and seconds per video once running."""
    by = {(r["engine"], r["workers"]): r for r in result["corpus"]}
    return [{"workers": w,
             "start-up (Ray − pool)": f"{by['ray', w]['first_s'] - by['local', w]['first_s']:+.2f} s",
             "per video once running (Ray − pool)":
                 f"{1000 * (by['ray', w]['steady_s_per_video'] - by['local', w]['steady_s_per_video']):+.0f} ms"}
            for w in sorted({r["workers"] for r in result["corpus"]})]


def expectations(result: dict) -> str:
    """The scaling to expect on more machines, with this run's costs of Ray in it."""
    by = {(r["engine"], r["workers"]): r for r in result["corpus"]}
    workers = sorted({r["workers"] for r in result["corpus"]})
    start_up = sum(by["ray", w]["first_s"] - by["local", w]["first_s"] for w in workers) / len(workers)
    cpu = {engine: sum(by[engine, w]["driver_ray_cpu_ms_per_video"] for w in workers) / len(workers)
           for engine in ("local", "ray")}
    slower = {w: by["ray", w]["steady_s_per_video"] - by["local", w]["steady_s_per_video"] for w in workers}
    one, most = workers[0], workers[-1]
    pool = by["local", one]
    streams = {(r["server"], r["streams"]): r for r in result["serve"]}
    n = min(r["streams"] for r in result["serve"])
    proxy_ms = streams["1 replica", n]["latency_ms"]["p50"] - streams["streamact serve", n]["latency_ms"]["p50"]
    pool_faster = all(by["local", w]["videos_per_s"] >= by["ray", w]["videos_per_s"] for w in workers)
    verdict = ("On one machine the process pool was the faster choice at every worker count." if pool_faster else
               "On one machine Ray kept up with the process pool at some worker count.")
    return (
        "**What to expect on more machines.** A corpus is independent videos: each worker decodes and infers its "
        "own, so throughput grows with the cluster's total cores (one actor per core) until what is shared "
        "saturates: the storage the videos are read from and the outputs written to, and the driver, which "
        "collects one row per video. Ray's own cost is a start-up paid once per actor "
        f"({start_up:+.1f} s against a pool process here: a Ray worker process, its imports, the model) and the "
        "CPU of the driver and of Ray's own processes (node manager, control store, object store, Ray Data's "
        f"executor): {cpu['ray']:.0f} ms per video against the pool's {cpu['local']:.0f} ms. Once running, "
        f"Ray's workers took {1000 * slower[one]:+.0f} ms per video against the pool's with {one} worker "
        f"({100 * slower[one] / pool['steady_s_per_video']:+.0f}% of a {pool['frames'] // pool['videos']}-frame "
        f"video) and {1000 * slower[most]:+.0f} ms with {most}. {verdict} On a cluster these costs come per actor "
        "and per video, none per frame: long videos and long runs amortize them. Streams stay on their replica, "
        "so a cluster holds the sum of its replicas' "
        "streams (one replica per machine, with as many inference threads as cores); what grows with streams is "
        f"every frame crossing a Serve proxy ({proxy_ms:+.1f} ms at the median with {n} streams here, "
        "1 replica against the plain server), so spread the clients over the proxies of all machines (a load "
        "balancer in front) for ingress to grow with them. On this machine two workers or replicas share 2 cores "
        "with the client, the proxy and other jobs: they cannot double anything, and the differences between "
        "rows at the higher loads carry that contention.")


def to_markdown(result: dict) -> str:
    from streamact.benchmark.common import markdown_table

    corpus = [{"engine": "local process pool" if r["engine"] == "local" else "Ray Data actors",
               "workers": r["workers"], "videos/s": f"{r['videos_per_s']:.2f}", "frames/s": f"{r['frames_per_s']:g}",
               "wall s": f"{r['seconds']:.1f}", "first video after": f"{r['first_s']:.1f} s",
               "worker s per video once running": f"{r['steady_s_per_video']:.2f}",
               "driver + Ray CPU ms per video": f"{r['driver_ray_cpu_ms_per_video']:.0f}"} for r in result["corpus"]]
    streams = [{"server": r["server"], "streams": r["streams"], "frames/s sent": f"{r['streams'] * r['fps']:g}",
                "processed frames/s": f"{r['processed_fps']:g}", "drop rate": f"{100 * r['drop_rate']:.2f}%",
                "p50 ms": f"{r['latency_ms']['p50']:g}", "p95 ms": f"{r['latency_ms']['p95']:g}"}
               for r in result["serve"]]
    first = result["corpus"][0]
    return "\n".join([
        f"## Beyond one machine: corpus on Ray Data, server replicas on Ray Serve"
        f"{' — quick run' if result['quick'] else ''}\n",
        f"All on this one machine ({result['cpus']} CPU cores; load average "
        f"{result['load_average_start']} at the start, {result['load_average_end']} at the end), so the numbers show "
        "what Ray costs, not what more machines gain; the scaling to expect on more is below.\n",
        f"**Corpus** (`recognize --batch`): {first['videos']} synthetic gesture videos of "
        f"{first['frames'] // first['videos']} frames (160×160 mp4) with {result['model']}, the same list through "
        "the local process pool (the default) and through Ray Data actors on a Ray started in the same process "
        f"(its start, {result['ray_start_s']:.1f} s, not counted). Each worker loads its own model and runs one "
        "inference thread (as `--ray` does; the pool's workers would split the cores among them), so the engines "
        "differ only by what Ray adds. \"First video after\": workers starting, loading the model and labelling one "
        "video; \"worker s per video once running\": worker seconds per video after each worker's first; "
        "\"driver + Ray CPU\": the CPU time of the command's own process and of the processes a local Ray runs "
        "beside the workers.\n",
        markdown_table(corpus, list(corpus[0])),
        "",
        markdown_table(overheads(result), ["workers", "start-up (Ray − pool)", "per video once running (Ray − pool)"]),
        "",
        f"**Streams** (`serve --ray --replicas N`): N WebSocket streams of 160×160 JPEG frames at {FPS:g} frames/s "
        f"each for {result['serve'][0]['seconds']:g} s per level, sent from this process, against `streamact serve` "
        "alone (its own process) and against Ray Serve's proxy in front of 1 and 2 replicas (2 inference threads in "
        "all: 2 in one replica, 1 in each of two). Latency: frame sent to its prediction received.\n",
        markdown_table(streams, list(streams[0])),
        "",
        expectations(result),
    ])
