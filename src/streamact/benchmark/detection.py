"""`streamact bench --task detection`: online action detection speed (AMMA), every comparison side by side in one run.

All four backbones (AMMA_18, AMMA_M, AMMA_S and the EfficientNet-Lite0 variant) at the paper's 288² input, K = 5
clips of t = 4 frames, 24 classes (UCF101-24's), random weights (speed does not depend on them; see "linking" for
the one place where it does). Latencies are medians of repeated calls after warm-up, batch 1; the contenders of a
comparison are called in alternation (`interleaved_ms`) so that load from other work hits them alike.

- per frame, on 1 thread (CPU time: the cost): the cached step (the newest clip embedded, the other K - 1 clip
  features read from the cache, the head) spread over its t frames, against recomputing all K clips at every step
  (a detector without the cache) and against the MOC-style baseline ("Actions as Moving Points": the same network
  without micro-motion, a step every frame that runs the backbone on that frame and the head over the cached
  features of the last K frames); PyTorch eager fp32 and OpenVINO bf16;
- runtimes, on both cores: the cached step on PyTorch eager vs ONNX Runtime vs OpenVINO fp32 / bf16;
- end to end, on both cores: decode + preprocess + model + tubelet decoding + online tube linking (`DetectionEngine`,
  zero-delay mode) on a 640×480 mp4 of the synthetic detection scene, OpenVINO bf16, with the share of each part;
- linking: `TubeLinker.update` per step against K and against the number of actors, on synthetic tubelets (PNG);
- memory: process RSS along a long stream through `DetectionEngine`, as a live stream (no ended tube kept) and as
  a file run (ended tubes kept for `finish`).
"""
from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from streamact.benchmark.streaming import _ov_clip_timer, _rss_mb, _torch_clip_timer, interleaved_ms, step_timer

__all__ = ["run", "to_markdown", "goals", "write_artifacts", "SECTION", "VARIANTS"]

SECTION = "detection"  # its section of docs/RESULTS.md
VARIANTS = {"amma_resnet18": "AMMA_18", "amma_mobilenetv2": "AMMA_M", "amma_shufflenetv2": "AMMA_S",
            "amma_efficientnet_lite0": "AMMA EfficientNet-Lite0"}
E2E_GOAL = {"amma_resnet18": 30}  # frames/s end to end on OpenVINO; 100 for the others
SIZE, NUM_CLIPS, CLIP_LEN, NUM_CLASSES = 288, 5, 4, 24
LINK_PLOT = "bench_detection_linking.png"
# The long memory stream runs AMMA_M at 96²: what could grow is the engine's bookkeeping (feature cache, running
# tubes, ended tubes), which the input size does not change; at 288² 100k frames take hours on a shared 2-core box.
MEMORY_MODEL = ("amma_mobilenetv2", 96)


def _model(name: str, *, motion: str = "convdiff", clip_len: int = CLIP_LEN, size: int = SIZE):
    from streamact import create_model

    torch.manual_seed(0)
    return create_model(name, num_classes=NUM_CLASSES, num_clips=NUM_CLIPS, clip_len=clip_len, motion=motion,
                        img_size=size).eval()


def _moc_model(name: str):
    """The MOC-style baseline on the same backbone: RGB only, a 'clip' of one frame, so it steps on every frame."""
    return _model(name, motion="none", clip_len=1)


class _Exports:
    """The graphs of one variant, exported once per run into `workdir`: cached step (ONNX, IR), whole-tubelet clip
    graph (IR) and the MOC-style baseline's step (IR)."""

    def __init__(self, name: str, workdir: Path) -> None:
        from streamact.export.onnx import export_onnx
        from streamact.export.openvino import export_openvino

        self.name, self.model, self.moc = name, _model(name), _moc_model(name)
        self.step_onnx = export_onnx(self.model, workdir / f"{name}_step.onnx", streaming=True)
        self.step_xml = export_openvino(self.model, workdir / f"{name}_step.xml", streaming=True)
        self.moc_xml = export_openvino(self.moc, workdir / f"{name}_moc.xml", streaming=True)
        self.clip_xml = workdir / f"{name}_clip.xml"  # exported by `_ov_clip_timer` on first use

    def openvino(self, xml: Path, precision: str = "bf16", threads: int | None = None):
        from streamact.inference.runtimes import OpenVINORuntime

        return OpenVINORuntime(xml, precision=precision, num_threads=threads)


def per_frame_costs(exports: _Exports, repeats: int) -> list[dict]:
    """Cached step vs recomputing K clips vs the MOC-style baseline, ms per frame on 1 thread."""
    from streamact.inference.runtimes import TorchRuntime

    torch.set_num_threads(1)
    tubelet = torch.randn(1, 3, NUM_CLIPS * CLIP_LEN, SIZE, SIZE)
    contenders = {
        "torch eager fp32": (step_timer(TorchRuntime(exports.model), SIZE, CLIP_LEN),
                             _torch_clip_timer(exports.model, tubelet),
                             step_timer(TorchRuntime(exports.moc), SIZE, 1), max(2, repeats // 10)),
        "openvino bf16": (step_timer(exports.openvino(exports.step_xml, threads=1), SIZE, CLIP_LEN),
                          _ov_clip_timer(exports.model, exports.clip_xml, tubelet, 1),
                          step_timer(exports.openvino(exports.moc_xml, threads=1), SIZE, 1), max(3, repeats // 4)),
    }
    rows = []
    for runtime, (step, recompute, moc, rounds) in contenders.items():
        step_ms, recompute_ms, moc_ms = interleaved_ms([step, recompute, moc], rounds=rounds)
        cached = step_ms / CLIP_LEN  # one step answers t frames
        for what, ms in (("cached step / t", cached), (f"recompute {NUM_CLIPS} clips / t", recompute_ms / CLIP_LEN),
                         ("MOC-style: backbone on every frame + head", moc_ms)):
            rows.append({"variant": exports.name, "runtime": runtime, "what": what, "ms_per_frame": ms,
                         "vs_cached": ms / cached})
    torch.set_num_threads(2)
    return rows


def runtime_costs(exports: _Exports, repeats: int) -> list[dict]:
    """The cached step on every runtime and precision, on both cores."""
    from streamact.inference.runtimes import OnnxRuntime, TorchRuntime

    runtimes = {"torch eager fp32": TorchRuntime(exports.model), "onnxruntime fp32": OnnxRuntime(exports.step_onnx),
                "openvino fp32": exports.openvino(exports.step_xml, "fp32"),
                "openvino bf16": exports.openvino(exports.step_xml, "bf16")}
    times = interleaved_ms([step_timer(rt, SIZE, CLIP_LEN) for rt in runtimes.values()], rounds=max(3, repeats // 4))
    return [{"variant": exports.name, "runtime": name, "ms_per_step": ms, "frames_per_s": CLIP_LEN * 1e3 / ms,
             "speedup_vs_torch": times[0] / ms} for name, ms in zip(runtimes, times)]


class _TimedRuntime:
    """A runtime that adds up the time its steps take (the model's share of the end-to-end time)."""

    def __init__(self, runtime) -> None:
        self.runtime, self.seconds, self.steps = runtime, 0.0, 0
        self.pretrained_cfg, self.detection = runtime.pretrained_cfg, runtime.detection

    def init_state(self):
        return self.runtime.init_state()

    def step(self, clip, state):
        t0 = time.perf_counter()
        out = self.runtime.step(clip, state)
        self.seconds += time.perf_counter() - t0
        self.steps += 1
        return out


def scene_video(path: Path, num_frames: int) -> Path:
    """A 640×480 mp4 of the synthetic detection scene (3 actors), written once per run."""
    from streamact.io.sources import open_source
    from streamact.io.writer import write_video

    source = open_source(f"synthetic:detection?seed=1&frames={num_frames}&size=640&actors=3")
    return write_video(path, (frame for frame, _ in tqdm(source, total=num_frames, desc="scene video", leave=False)),
                       fps=25)


def end_to_end(runtime, video: Path) -> dict:
    """Frames/s of `DetectionEngine` on `video`, and where the time goes: reading and decoding the video, the model
    steps, linking, and the rest of `push` (resizing and normalising frames, tubelet decoding)."""
    from streamact.inference.detection import DetectionEngine
    from streamact.io.sources import open_source

    timed = _TimedRuntime(runtime)
    engine = DetectionEngine(timed)
    linking = 0.0
    update = engine.linker.update

    def timed_update(*args, **kwargs):
        nonlocal linking
        t0 = time.perf_counter()
        linked = update(*args, **kwargs)
        linking += time.perf_counter() - t0
        return linked

    engine.linker.update = timed_update
    pushing, frames = 0.0, 0
    start = time.perf_counter()
    with open_source(video) as source:
        for frame, _ in source:
            t0 = time.perf_counter()
            engine.push(frame)
            pushing += time.perf_counter() - t0
            frames += 1
    t0 = time.perf_counter()
    engine.finish()
    pushing += time.perf_counter() - t0
    seconds = time.perf_counter() - start
    return {"frames": frames, "frames_per_s": frames / seconds, "steps": timed.steps,
            "share": {"decode video": (seconds - pushing) / seconds, "model": timed.seconds / seconds,
                      "linking": linking / seconds,
                      "preprocess + tubelet decoding": (pushing - timed.seconds - linking) / seconds}}


# -- linking ---------------------------------------------------------------------------------------------------------
def synthetic_tubelets(rng: np.random.Generator, actors: np.ndarray, velocity: np.ndarray, *, end_frame: int,
                       num_clips: int, top_k: int = 100, background: int = 20) -> list:
    """One detector step's tubelets for actors moving at constant `velocity` (N, 2) pixels per frame from boxes
    `actors` (N, 4) at frame 1, shaped like `decode_tubelets` output for a scene: per actor a tubelet of its class
    (actor index mod the number of classes), two jittered weaker duplicates and a weak one of another class, plus
    `background` low-scoring random tubelets; the best `top_k` of them, best first."""
    from streamact.inference.detection_decode import key_frames
    from streamact.inference.tubes import Tubelet

    frames = key_frames(end_frame, num_clips, CLIP_LEN)  # (K,)
    shift = np.concatenate([velocity, velocity], axis=1)  # (N, 4): both corners move
    boxes = actors[:, None] + shift[:, None] * (frames[None, :, None] - 1)  # (N, K, 4)
    tubelets = []
    for i, tube in enumerate(boxes):
        label, score = i % NUM_CLASSES, rng.uniform(0.5, 0.95)
        tubelets.append(Tubelet(label, score, frames, tube))
        tubelets += [Tubelet(label, score * rng.uniform(0.3, 0.9), frames, tube + rng.normal(0, 4, tube.shape))
                     for _ in range(2)]
        tubelets.append(Tubelet((label + 1) % NUM_CLASSES, score * 0.3, frames, tube))
    for _ in range(background):
        corner, size = rng.uniform(0, [560, 400]), rng.uniform(20, 80, 2)
        box = np.tile(np.concatenate([corner, corner + size]), (num_clips, 1))
        tubelets.append(Tubelet(int(rng.integers(NUM_CLASSES)), rng.uniform(0.01, 0.1), frames, box))
    return sorted(tubelets, key=lambda t: -t.score)[:top_k]


def linking_ms(num_clips: int, num_actors: int, num_steps: int, seed: int = 0) -> float:
    """Mean ms of `TubeLinker.update` per step over a stream of `num_steps` steps (the first tenth is warm-up)."""
    from streamact.inference.tubes import TubeLinker

    rng = np.random.default_rng(seed)
    corners = rng.uniform(0, [520, 360], (num_actors, 2))
    actors = np.concatenate([corners, corners + rng.uniform(40, 120, (num_actors, 2))], axis=1)
    velocity = rng.uniform(-1.5, 1.5, (num_actors, 2))
    linker = TubeLinker()
    times = []
    for step in range(1, num_steps + 1):
        tubelets = synthetic_tubelets(rng, actors, velocity, end_frame=step * CLIP_LEN, num_clips=num_clips)
        t0 = time.perf_counter()
        linker.update(step * CLIP_LEN, tubelets)
        linker.pop_finished()
        times.append(time.perf_counter() - t0)
    return statistics.fmean(times[num_steps // 10:]) * 1e3


def linking_costs(num_steps: int) -> dict:
    """Linking ms per step against K (3 actors) and against the number of actors (K = 5)."""
    return {"steps": num_steps,
            "vs_num_clips": [{"num_clips": k, "actors": 3, "ms_per_step": linking_ms(k, 3, num_steps)}
                             for k in (1, 2, 3, 5, 7, 10)],
            "vs_actors": [{"num_clips": NUM_CLIPS, "actors": n, "ms_per_step": linking_ms(NUM_CLIPS, n, num_steps)}
                          for n in (1, 2, 5, 10, 20, 50)]}


def _memory_runtime(workdir: Path):
    """OpenVINO bf16 step of the memory stream's model (`MEMORY_MODEL`)."""
    from streamact.export.openvino import export_openvino
    from streamact.inference.runtimes import OpenVINORuntime

    name, size = MEMORY_MODEL
    xml = export_openvino(_model(name, size=size), workdir / f"{name}_{size}_step.xml", streaming=True)
    return OpenVINORuntime(xml, precision="bf16")


def memory_flatness(runtime, num_frames: int, *, keep_tubes: bool) -> dict:
    """RSS along a stream of `num_frames` frames (a 200-frame 160×120 scene on repeat) through `DetectionEngine`,
    keeping the tubes that end for `finish` (`detect` on a file) or not (a live stream of `serve`)."""
    from streamact.inference.detection import DetectionEngine
    from streamact.io.sources import open_source

    engine = DetectionEngine(runtime, keep_tubes=keep_tubes)
    frames = [frame for frame, _ in open_source("synthetic:detection?seed=2&frames=200&size=160&actors=3")]
    warm = min(1000, num_frames // 10)  # after allocator warm-up
    samples = []
    for i in tqdm(range(num_frames), desc="memory", leave=False, mininterval=2.0):
        engine.push(frames[i % len(frames)])
        if i >= warm and (i - warm) % max(1, (num_frames - warm) // 10) == 0:
            samples.append(round(_rss_mb(), 1))
    end = _rss_mb()
    return {"engine": "live stream (keep_tubes=False, as serve)" if not keep_tubes else
            "file (keeps ended tubes for finish, as detect)", "frames": num_frames, "rss_start_mb": samples[0],
            "rss_end_mb": end, "growth_mb": end - samples[0], "rss_samples_mb": samples}


def _progress(message: str) -> None:
    print(message, file=sys.stderr)  # stdout is for the result (JSON with --format json)


def run(*, quick: bool = False, data_root: Path | None = None) -> dict:
    """Run every measurement; returns a JSON-able dict (see the module docstring).

    Args:
        quick: fewer repeats, frames and linking steps, and a short memory stream (a few minutes).
        data_root: unused (the detection benchmark makes its own scene).
    """
    torch.set_num_threads(2)
    repeats = 10 if quick else 40
    result: dict = {"quick": quick, "size": SIZE, "num_clips": NUM_CLIPS, "clip_len": CLIP_LEN,
                    "num_classes": NUM_CLASSES, "per_frame": [], "runtimes": [], "end_to_end": []}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        _progress("scene video ...")
        video = scene_video(workdir / "scene_640x480.mp4", 120 if quick else 300)
        exports = {}
        for name in VARIANTS:
            _progress(f"{name}: export, per-frame cost, runtimes, end to end ...")
            exports[name] = _Exports(name, workdir)
            result["per_frame"] += per_frame_costs(exports[name], repeats)
            result["runtimes"] += runtime_costs(exports[name], repeats)
            result["end_to_end"].append({"variant": name, "runtime": "openvino bf16",
                                         **end_to_end(exports[name].openvino(exports[name].step_xml), video)})
        _progress("linking ...")
        result["linking"] = linking_costs(50 if quick else 200)
        _progress("memory ...")
        runtime = _memory_runtime(workdir)
        result["memory"] = {"variant": MEMORY_MODEL[0], "size": MEMORY_MODEL[1], "runtime": "openvino bf16",
                            "streams": [memory_flatness(runtime, 3_000 if quick else 100_000, keep_tubes=keep)
                                        for keep in (False, True)]}
    return result


def write_artifacts(result: dict, out_dir: Path) -> list[Path]:
    """The linking plot (PNG) next to the report."""
    from streamact.viz import _pyplot

    plt = _pyplot()
    link = result["linking"]
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, rows, key, label in ((left, link["vs_num_clips"], "num_clips", "clips per tubelet K (3 actors)"),
                                 (right, link["vs_actors"], "actors", f"actors in the scene (K = {NUM_CLIPS})")):
        ax.plot([r[key] for r in rows], [r["ms_per_step"] for r in rows], "o-")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    left.set_ylabel("linking, ms per step")
    left.set_ylim(bottom=0)
    fig.suptitle(f"Online tube linking per detection step (one step every {CLIP_LEN} frames)")
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / LINK_PLOT
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return [path]


def to_markdown(result: dict) -> str:
    from streamact.benchmark.common import markdown_table

    def named(rows: list[dict]) -> list[dict]:
        return [{**r, "variant": VARIANTS[r["variant"]]} for r in rows]

    e2e = [{"variant": VARIANTS[r["variant"]], "runtime": r["runtime"], "frames": r["frames"],
            "frames_per_s": r["frames_per_s"], "without_linking": r["frames_per_s"] / (1 - r["share"]["linking"]),
            **{k: f"{v:.0%}" for k, v in r["share"].items()}} for r in result["end_to_end"]]
    link, mem = result["linking"], result["memory"]
    k, t, size = result["num_clips"], result["clip_len"], result["size"]
    parts = [
        f"## Online action detection speed{' — quick run' if result['quick'] else ''}\n",
        f"AMMA at {size}×{size}, K = {k} clips of t = {t} frames, {result['num_classes']} classes, random weights, "
        "batch 1. The cached step embeds the newest clip and reads the other K - 1 clip features from the state; "
        "it answers t frames.\n",
        "### Per frame: cached step vs recomputing the K clips vs the MOC-style baseline (1 thread)\n",
        "The MOC-style baseline is our reproduction of the method of \"Actions as Moving Points\" on the same "
        "network: RGB only, a step on every frame (the backbone on that frame, the head over the cached features of "
        "the last K frames). `vs_cached` is its cost over the cached step's.\n",
        markdown_table(named(result["per_frame"]), ["variant", "runtime", "what", "ms_per_frame", "vs_cached"]),
        "\n### Runtimes (cached step, both cores)\n",
        markdown_table(named(result["runtimes"]), ["variant", "runtime", "ms_per_step", "frames_per_s",
                                                   "speedup_vs_torch"]),
        "\n### End to end on a 640×480 mp4 (both cores)\n\nDecode + resize and normalise + model + tubelet decoding "
        "+ online linking (`DetectionEngine`, zero-delay), and the share of the time each part takes. With random "
        "weights every step decodes the full 100 candidates (scores near the heatmap's prior 0.1), the most work "
        "decoding and linking can get: a trained detector on a scene with a few actors passes far fewer candidates, "
        "and the linking table below gives its cost per step for a given number of actors. `without_linking` is "
        "frames/s with the linking share taken out.\n",
        markdown_table(e2e, ["variant", "runtime", "frames", "frames_per_s", "without_linking", "decode video",
                             "model", "linking", "preprocess + tubelet decoding"]),
        f"\n### Linking against K and the number of actors\n\n`TubeLinker.update` per step (mean over {link['steps']} "
        "steps, synthetic tubelets: per actor one of its class, two jittered weaker duplicates and one of another "
        "class, plus 20 weak background tubelets; at most the decoder's 100 per step).\n",
        markdown_table(link["vs_num_clips"], ["num_clips", "actors", "ms_per_step"]),
        "",
        markdown_table(link["vs_actors"], ["num_clips", "actors", "ms_per_step"]),
        f"\n![linking time against K and against the number of actors]({LINK_PLOT})\n",
        f"### Memory\n\n{VARIANTS[mem['variant']]} at {mem['size']}² on {mem['runtime']} (the bookkeeping that could "
        f"grow does not depend on the input size), one engine after the other in one process:\n",
        *(f"- {m['engine']}: RSS {m['rss_start_mb']:.1f} MB → {m['rss_end_mb']:.1f} MB over {m['frames']} streamed "
          f"frames ({m['growth_mb']:+.1f} MB; samples {', '.join(map(str, m['rss_samples_mb']))})."
          for m in mem["streams"]),
        "",
        "### Against the goals\n",
        markdown_table(goals(result), ["goal", "measured", "met"]),
    ]
    return "\n".join(parts)


def goals(result: dict) -> list[dict]:
    """The detection speed goals next to this run's numbers."""
    k = result["num_clips"]
    recompute = {(r["variant"], r["runtime"]): r["vs_cached"] for r in result["per_frame"]
                 if r["what"].startswith("recompute")}
    rows = [{"goal": f"cached >= {0.8 * k:.1f}x cheaper per frame than recomputing {k} clips ({VARIANTS[v]}, "
                     f"{runtime}, 1 thread)", "measured": f"{ratio:.2f}x", "met": ratio >= 0.8 * k}
            for (v, runtime), ratio in recompute.items()]
    rows += [{"goal": f">= {E2E_GOAL.get(r['variant'], 100)} frames/s end to end on 640×480 "
                      f"({VARIANTS[r['variant']]}, {r['runtime']})",
              "measured": f"{r['frames_per_s']:.0f}", "met": r["frames_per_s"] >= E2E_GOAL.get(r["variant"], 100)}
             for r in result["end_to_end"]]
    return [{**r, "met": "yes" if r["met"] else "**no**"} for r in rows]
