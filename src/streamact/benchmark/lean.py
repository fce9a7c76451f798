"""Running without PyTorch: cold start, peak memory, and fp32 / bf16 / int8 speed and accuracy, in one run.

    640x480 mp4 ──► `streamact recognize --max-frames 1` in fresh processes, contenders in alternation
        ──► process start to the first prediction on stdout, peak RSS, CPU time of the process
    bundled model's step graph at 112² (its own size) and 224² ──► NNCF int8 on calibration videos
        ──► per-step latency of fp32 / bf16 / int8 (1 inference thread, wall and CPU time)
        ──► at 112²: clip top-1 on the test split, streamed frame by frame, and per-step agreement with fp32
    bundled detector's step graph (clip of 4 frames at 160², K-clip feature cache) ──► NNCF int8 calibrated on a
        synthetic detection set made for the run (a seed the detector was not trained on)
        ──► per-step latency of fp32 / bf16 / int8 ──► frame-mAP and video-mAP of each on that set's test split

Cold-start contenders:
    lean            the shipped OpenVINO IR, compiled model from OpenVINO's cache (what users get by default)
    lean, first run the same with an empty cache folder (the very first run on a machine)
    rebuild         the path before the shipped IR: import PyTorch, build the model from its safetensors, export
                    it, compile it with OpenVINO (bf16)
    PyTorch eager   `--runtime torch`
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SECTION = "lean"
# The deployment goals: cold start and peak RSS of the default model on a 640x480 file; int8 against bf16.
GOAL = {"cold_start_s": 1.0, "peak_rss_mb": 250.0, "int8_vs_bf16": 1.3, "top1_drop": 0.01}
DETECTOR = "amma_efficientnet_lite0_actions"
DETECTION_SEED = 7  # the bundled detector was trained on the videos of seeds 0 and 2

# The path before the shipped IR, as a script: PyTorch builds the model, exports and compiles it.
_REBUILD = """
import sys
from streamact.cli.recognize import run_recognition
from streamact.inference.predictor import to_streaming
from streamact.inference.runtimes import load_runtime
from streamact.inference.streaming import StreamingEngine
from streamact.io.sources import open_source
from streamact.models import create_model
runtime = load_runtime(to_streaming(create_model(sys.argv[1], pretrained=True)), runtime="openvino")
with open_source(sys.argv[2]) as source:
    run_recognition(source, StreamingEngine(runtime), jsonl=sys.stdout, max_frames=1, progress=False)
"""


def _progress(message: str) -> None:
    print(message, file=sys.stderr)  # stdout is for the result


def _write_video(path: Path, num_frames: int = 30) -> Path:
    """A 640x480 mp4 with a moving square."""
    from streamact.io.writer import write_video

    frames = []
    for i in range(num_frames):
        frame = np.full((480, 640, 3), 70, np.uint8)
        frame[180:300, 100 + 12 * i:220 + 12 * i] = 230
        frames.append(frame)
    return write_video(path, frames, fps=30)


def _first_prediction(argv: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds from process start to the first prediction line on stdout, the process's peak RSS (MB) up to that
    line, and the CPU seconds it used in all (user + system; unlike wall time, not inflated by a busy machine)."""
    t0 = time.perf_counter()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               env=env, text=True)
    line = process.stdout.readline()
    seconds = time.perf_counter() - t0
    # The peak of the program's own memory (VmHWM, kB). Not the rusage maxrss: Linux counts into it the memory of
    # this process, which the child was forked from, so a benchmark that has imported PyTorch would inflate it.
    status_text = Path(f"/proc/{process.pid}/status").read_text()
    peak_kb = next((int(row.split()[1]) for row in status_text.splitlines() if row.startswith("VmHWM:")), None)
    process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    if status != 0 or not line.startswith("{") or peak_kb is None:
        raise RuntimeError(f"{' '.join(argv)} failed (status {status}) or exited before its memory was read")
    return seconds, peak_kb / 1024, usage.ru_utime + usage.ru_stime


def cold_start(model: str, video: Path, repeats: int, workdir: Path) -> list[dict]:
    """Cold start and peak RSS of each contender (module docstring), `repeats` fresh processes each, in turn."""
    python = sys.executable
    cli = [python, "-m", "streamact", "recognize", str(video), "--max-frames", "1", "--out-jsonl", "-",
           "--no-progress"]
    base = {**os.environ, "OMP_NUM_THREADS": "1"}
    cached = {**base, "STREAMACT_CACHE_DIR": str(workdir / "cache")}
    contenders = {
        "lean (shipped IR, cached compile)": (cli, cached),
        "lean, first run (empty cache)": (cli, None),  # a new cache folder each time
        "rebuild from PyTorch (before)": ([python, "-c", _REBUILD, model, str(video)], base),
        "PyTorch eager (--runtime torch)": (cli + ["--runtime", "torch"], base),
    }
    _first_prediction(cli, cached)  # fills the cache
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in contenders}
    for r in range(repeats):
        for name, (argv, env) in contenders.items():
            env = env or {**base, "STREAMACT_CACHE_DIR": str(workdir / f"empty{r}")}
            runs[name].append(_first_prediction(argv, env))
            seconds, rss, cpu = runs[name][-1]
            _progress(f"  {name}: {seconds:.2f} s, {rss:.0f} MB, {cpu:.2f} s CPU")
    return [{"path": name, "cold_start_s": statistics.median(r[0] for r in times),
             "cold_start_min_s": min(r[0] for r in times), "peak_rss_mb": max(r[1] for r in times),
             "cpu_s": statistics.median(r[2] for r in times)} for name, times in runs.items()]


def _step_graph(model: str, size: int, workdir: Path) -> Path:
    """The bundled model's step graph at size²: the shipped IR at its own size, else exported at that size."""
    from streamact import create_model
    from streamact.export.bundle import bundled_export
    from streamact.export.openvino import export_openvino
    from streamact.inference.predictor import to_streaming

    if create_model(model, pretrained=True).pretrained_cfg.input_size[-1] == size:
        return bundled_export(model)
    return export_openvino(to_streaming(create_model(model, pretrained=True, img_size=size)),
                           workdir / f"step_{size}.xml", streaming=True, model_name=model)


def step_latencies(paths: dict[str, Path], repeats: int) -> dict[str, float]:
    """Per streaming step (1 inference thread) of fp32, bf16 and int8, called in alternation: the median wall ms
    and the median CPU ms of blocks of 20 steps.

    On a shared machine a 2 ms step is often preempted, so its wall time measures the neighbours; the CPU time the
    process spends per step (all its threads) is the cost that preemption does not inflate.
    """
    from streamact.inference.runtimes import OpenVINORuntime

    runtimes = {"fp32": OpenVINORuntime(paths["fp32"], precision="fp32", num_threads=1),
                "bf16": OpenVINORuntime(paths["fp32"], precision="bf16", num_threads=1),
                "int8": OpenVINORuntime(paths["int8"], precision="bf16", num_threads=1)}
    shape = runtimes["fp32"].sidecar["inputs"][0]["shape"]  # a frame, or a detector's clip
    frame = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    states = {name: r.init_state() for name, r in runtimes.items()}
    wall: dict[str, list[float]] = {name: [] for name in runtimes}
    cpu: dict[str, list[float]] = {name: [] for name in runtimes}
    for _ in range(repeats):
        for name, runtime in runtimes.items():
            for _ in range(5):  # the first calls after a switch pay for the other runtime's cache eviction
                runtime.step(frame, states[name])
            t0, c0 = time.perf_counter(), time.process_time()
            for _ in range(20):
                runtime.step(frame, states[name])
            wall[name].append((time.perf_counter() - t0) * 1e3 / 20)
            cpu[name].append((time.process_time() - c0) * 1e3 / 20)
    return {**{f"{name}_ms": statistics.median(t) for name, t in wall.items()},
            **{f"{name}_cpu_ms": statistics.median(t) for name, t in cpu.items()}}


def detector_int8(workdir: Path, *, num_videos: int, samples: int, repeats: int) -> dict:
    """int8 of the bundled detector: calibrated on the train split of a synthetic detection set made here (seed
    `DETECTION_SEED`, which its training set did not use), per-step latency of fp32 / bf16 / int8 and frame- and
    video-mAP of each on the test split."""
    from streamact.data.synthetic import generate_detection
    from streamact.export.bundle import bundled_export
    from streamact.export.int8 import detection_accuracy, quantize_int8
    from streamact.export.sidecar import load_sidecar
    from streamact.inference.runtimes import OpenVINORuntime

    data = workdir / "detection"
    generate_detection(data, num_videos=num_videos, seed=DETECTION_SEED, progress=False)
    fp32 = bundled_export(DETECTOR)
    int8 = quantize_int8(fp32, workdir / "detector_int8.xml", data, num_samples=samples)
    accuracy = detection_accuracy({"fp32": OpenVINORuntime(fp32, precision="fp32"),
                                   "bf16": OpenVINORuntime(fp32, precision="bf16"),
                                   "int8": OpenVINORuntime(int8, precision="bf16")}, data)
    return {"model": DETECTOR, "clip": load_sidecar(fp32)["inputs"][0]["shape"][1:],
            "made_with": f"streamact data synth detection --out DIR --num-videos {num_videos} --seed {DETECTION_SEED}",
            **step_latencies({"fp32": fp32, "int8": int8}, repeats * 4), "accuracy": accuracy}


def run(*, quick: bool = False, data_root: Path | None = None) -> dict:
    """Measure cold start and memory, then int8 against fp32 / bf16; returns a JSON-able dict.

    Args:
        quick: one cold start per contender, 100 calibration steps, 112² only, 20 test videos and a detection set
            of 16 videos (a few minutes); the full run takes 5 cold starts per contender, 300 calibration steps
            (NNCF's default), 112² and 224², the whole test split and a detection set of 100 videos.
        data_root: a gesture set (`streamact data synth gestures`) held out from the model's training: int8
            calibrates on its train split and accuracy is scored on its test split. Without one, int8 calibrates
            on a generated gesture stream and accuracy is not measured.
    """
    from streamact.cli.recognize import DEFAULT_MODEL
    from streamact.export.int8 import MIN_SAMPLES, quantize_int8, streaming_accuracy
    from streamact.inference.runtimes import OpenVINORuntime

    has_data = data_root is not None and (Path(data_root) / "test.csv").exists()
    calib = str(data_root) if has_data else "synthetic:gestures?num=40"
    repeats, samples, sizes = (1, MIN_SAMPLES, (112,)) if quick else (5, 300, (112, 224))
    result: dict = {"quick": quick, "model": DEFAULT_MODEL, "load_average": round(os.getloadavg()[0], 1),
                    "repeats": repeats, "calibration": {"data": calib, "samples": samples}}
    generation = Path(calib) / "generation.json"  # how `streamact data synth` made the set, to report it
    if generation.is_file():
        made = json.loads(generation.read_text())
        result["calibration"]["made_with"] = (f"streamact data synth gestures --out {calib} --per-class "
                                              f"{made['per_class']} --size {made['size']} --seed {made['seed']}")
    with tempfile.TemporaryDirectory(prefix="streamact-lean-") as tmp:
        workdir = Path(tmp)
        _progress("cold start and peak RSS ...")
        result["cold_start"] = cold_start(DEFAULT_MODEL, _write_video(workdir / "640x480.mp4"), repeats, workdir)
        result["precision"] = []
        for size in sizes:
            _progress(f"int8 at {size}² ...")
            fp32 = _step_graph(DEFAULT_MODEL, size, workdir)
            int8 = quantize_int8(fp32, workdir / f"step_{size}_int8.xml", calib, num_samples=samples)
            row = {"size": size, **step_latencies({"fp32": fp32, "int8": int8}, repeats * 4)}
            if has_data and size == sizes[0]:  # the model's own size: what its accuracy was measured at
                row["accuracy"] = streaming_accuracy(
                    {"fp32": OpenVINORuntime(fp32, precision="fp32"), "bf16": OpenVINORuntime(fp32, precision="bf16"),
                     "int8": OpenVINORuntime(int8, precision="bf16")},
                    data_root, reference="fp32", max_videos=20 if quick else None)
            result["precision"].append(row)
        _progress("the bundled detector in int8 ...")
        result["detector"] = detector_int8(workdir, num_videos=16 if quick else 100, samples=samples, repeats=repeats)
    return result


def goals(result: dict) -> list[dict]:
    """The deployment goals next to this run's numbers."""
    lean = result["cold_start"][0]  # the default path: shipped IR, cached compile
    own = result["precision"][0]  # the model's own size
    speedup = own["bf16_cpu_ms"] / own["int8_cpu_ms"]
    rows = [("cold start <= 1.0 s (default model, 640x480 file)", f"{lean['cold_start_s']:.2f} s",
             lean["cold_start_s"] <= GOAL["cold_start_s"]),
            ("peak RSS <= 250 MB", f"{lean['peak_rss_mb']:.0f} MB", lean["peak_rss_mb"] <= GOAL["peak_rss_mb"]),
            (f"int8 >= 1.3x faster than bf16 per step ({own['size']}², CPU time)", f"{speedup:.2f}x",
             speedup >= GOAL["int8_vs_bf16"])]
    accuracy = own.get("accuracy")
    if accuracy is not None:
        change = accuracy["int8"]["top1"] - accuracy["fp32"]["top1"]
        rows.append(("int8 loses <= 1 point of top-1 against fp32", f"{100 * change:+.1f} points (int8 - fp32)",
                     -change <= GOAL["top1_drop"]))
    return [{"goal": goal, "measured": measured, "met": "yes" if met else "**no**"} for goal, measured, met in rows]


def to_markdown(result: dict) -> str:
    from streamact.benchmark.common import markdown_table

    cold = [{"path": r["path"], "cold start (median)": f"{r['cold_start_s']:.2f} s",
             "cold start (best)": f"{r['cold_start_min_s']:.2f} s", "CPU time of the process": f"{r['cpu_s']:.2f} s",
             "peak RSS": f"{r['peak_rss_mb']:.0f} MB"} for r in result["cold_start"]]
    speed = []
    for row in result["precision"]:
        acc = row.get("accuracy")
        speed.append({
            "input": f"{row['size']}²",
            **{f"{k} ms: wall / CPU": f"{row[f'{k}_ms']:.2f} / {row[f'{k}_cpu_ms']:.2f}"
               for k in ("fp32", "bf16", "int8")},
            "int8 vs bf16 (CPU)": f"{row['bf16_cpu_ms'] / row['int8_cpu_ms']:.2f}x",
            "top-1 fp32 / bf16 / int8": " / ".join(f"{acc[k]['top1']:.3f}" for k in ("fp32", "bf16", "int8"))
                                        if acc else "n/a",
            "step agreement with fp32 (bf16 / int8)": " / ".join(f"{acc[k]['step_agreement']:.3f}"
                                                                 for k in ("bf16", "int8")) if acc else "n/a"})
    accuracy = result["precision"][0].get("accuracy")
    scored = (f"at {result['precision'][0]['size']}² clip top-1 on the {accuracy['fp32']['videos']} test videos of "
              f"{result['calibration']['data']} (streamed frame by frame; the prediction after a video's last frame "
              f"is its answer; one standard error of such a top-1 is about "
              f"{(0.25 / accuracy['fp32']['videos']) ** 0.5:.3f}) with the share of the {accuracy['fp32']['steps']} "
              "steps whose top class equals fp32's" if accuracy else "no accuracy (no held-out gesture set given: "
              "`--data DIR`)")
    calib = result["calibration"]
    made = f" (made with `{calib['made_with']}`)" if "made_with" in calib else ""
    return "\n".join([
        f"## Running without PyTorch: cold start, memory, int8{' — quick run' if result['quick'] else ''}\n",
        f"`streamact recognize` on a 640×480 mp4 with the default bundled model (`{result['model']}`, OpenVINO bf16), "
        f"each run a fresh process, runs per path: {result['repeats']}, in alternation; cold start is process start "
        "to the first prediction line on stdout, peak RSS the process's own high-water mark up to that line. "
        "\"lean\" runs the shipped OpenVINO IR and imports no PyTorch; "
        "\"rebuild\" is the path before it (import PyTorch, build the model from its safetensors, export it, compile "
        "it), \"PyTorch eager\" is `--runtime torch`. Load average at the start: "
        f"{result['load_average']} (the machine is shared; the CPU time of each process is what load does not "
        "inflate).\n",
        markdown_table(cold, list(cold[0])),
        "",
        f"Per streaming step of the same model, 1 inference thread, fp32 / bf16 / int8 (NNCF post-training "
        f"quantization on {calib['samples']} streamed steps of {calib['data']}{made}; the int8 graph runs with "
        f"OpenVINO's bf16 hint for the layers it leaves in floating point), and {scored}. At sizes other than the "
        "model's own the same weights run on larger frames (a speed measurement only).\n",
        markdown_table(speed, list(speed[0])),
        "",
        markdown_table(goals(result), ["goal", "measured", "met"]),
        "",
        _detector_markdown(result["detector"], calib["samples"]),
        "",
        "Where int8 gains little: only the convolutions run as int8 kernels (OpenVINO's per-node profile, "
        "`OpenVINORuntime(..., config={\"PERF_COUNT\": True})`); EfficientNet-Lite0's depthwise convolutions and "
        "small late feature maps are limited by memory rather than arithmetic, a CPU without AMX multiplies bf16 at "
        "half the int8 rate at best, and the per-step work int8 does not shrink (the Python call, input conversion, "
        "the state variables, which stay in floating point: see `streamact.export.int8`) is a larger share of a "
        "2 ms step than of a 6 ms one.",
    ])



def _detector_markdown(det: dict, samples: int) -> str:
    from streamact.benchmark.common import markdown_table

    acc = det["accuracy"]
    c, t, h, w = det["clip"]
    row = {"step input": f"{t} frames at {h}x{w}",
           **{f"{k} ms: wall / CPU": f"{det[f'{k}_ms']:.2f} / {det[f'{k}_cpu_ms']:.2f}"
              for k in ("fp32", "bf16", "int8")},
           "int8 vs bf16 (CPU)": f"{det['bf16_cpu_ms'] / det['int8_cpu_ms']:.2f}x",
           **{f"{label} fp32 / bf16 / int8": " / ".join(f"{100 * acc[k][key]:.1f}" for k in ("fp32", "bf16", "int8"))
              for label, key in (("frame-mAP@0.5", "frame_map@0.5"), ("video-mAP@0.2", "video_map@0.2"),
                                 ("video-mAP@0.5", "video_map@0.5"))}}
    return "\n".join([
        f"The bundled detector (`{det['model']}`) the same way: its step graph (a clip of {t} frames and the K-clip "
        f"feature cache) in int8 calibrated on {samples} streamed steps of the train split of a synthetic detection "
        f"set made for the run (`{det['made_with']}`; the detector was trained on other seeds' videos), per step on 1 "
        f"inference thread, and frame-mAP / video-mAP (percent) of each on the {acc['fp32']['videos']} test videos, "
        "streamed as `streamact eval` streams them.\n",
        markdown_table([row], list(row)),
    ])
