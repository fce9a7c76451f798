"""Synthetic detection set and the evaluation pipeline without a model: generation speed, linking speed and the
ceilings that AMMA-style tubelets (5 key frames spaced 5 apart, one step every 5 frames) reach on the set.

Two reference detectors read their tubelets off the ground truth:

* oracle: exact boxes and the true class on the key frames of every step whose whole window (21 frames) lies
  inside a true tube (the steps AMMA trains on);
* direction-blind oracle: the same, but a class of a direction-reversed pair is replaced by either class of its
  pair at random (per tube), which is the best a model that ignores the order of frames can do.

    python bench/detection_data.py [--out data/detection] [--workers 2]

Writes the section "Spatio-temporal detection: synthetic set and evaluation" of docs/RESULTS.md.
"""
from __future__ import annotations

import argparse
import platform
import re
import time
from pathlib import Path

import numpy as np

from streamact.data.datasets.detection import load_detection_annotations
from streamact.data.synthetic import generate_detection
from streamact.evaluation.detection import evaluate_detections
from streamact.inference.tubes import Tubelet, TubeLinker

HEADING = "## Spatio-temporal detection: synthetic set and evaluation"


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def oracle_steps(ann, videos, *, blind: bool, seed: int = 0):
    rng = np.random.default_rng(seed)
    partner = {a: b for a, b in ann.motion_pairs} | {b: a for a, b in ann.motion_pairs}
    steps = {}
    for video in videos:
        labels = [label if not blind or label not in partner else int(rng.choice([label, partner[label]]))
                  for label, _ in ann.tubes(video)]
        steps[video] = []
        for frame in range(5, ann.nframes[video] + 1, 5):
            keys = np.maximum(1, frame - 5 * np.arange(4, -1, -1))
            step = []
            for label, (_, tube) in zip(labels, ann.tubes(video)):
                if tube[0, 0] <= keys[0] and frame <= tube[-1, 0]:  # the whole window inside the tube
                    boxes = np.stack([np.interp(keys, tube[:, 0], tube[:, c]) for c in range(1, 5)], axis=1)
                    step.append(Tubelet(label, 0.9, keys, boxes))
            steps[video].append((frame, step))
    return steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default="data/detection")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--results", default="docs/RESULTS.md")
    args = parser.parse_args()

    start = time.perf_counter()
    summary = generate_detection(args.out, num_workers=args.workers)
    gen_seconds = time.perf_counter() - start
    ann = load_detection_annotations(Path(args.out) / "UCF101v2-GT.pkl")
    videos = ann.videos("test")

    rows = []
    for name, blind in (("oracle", False), ("direction-blind oracle", True)):
        steps = oracle_steps(ann, videos, blind=blind)
        start = time.perf_counter()
        result = evaluate_detections(steps, ann, videos).summary()
        rows.append((name, result, time.perf_counter() - start))

    # Linking alone, one update per step, as a streaming engine would call it.
    steps = oracle_steps(ann, videos, blind=False)
    linker, calls = TubeLinker(), 0
    start = time.perf_counter()
    for _ in range(5):
        for video in videos:
            for frame, tubelets in steps[video]:
                linker.update(frame, tubelets)
                calls += 1
            linker.finish(ann.nframes[video])
    link_us = (time.perf_counter() - start) / calls * 1e6

    lines = [
        HEADING,
        "",
        f"Machine: {_cpu()}, {args.workers} worker processes. Command: "
        f"`python bench/detection_data.py --out {args.out} --workers {args.workers}`.",
        "",
        f"Generation (`streamact data synth detection --out {args.out} --workers {args.workers}`, defaults): "
        f"{summary['num_videos']} videos, {summary['num_frames']} frames of {summary['size']} in "
        f"{gen_seconds:.1f} s ({summary['num_frames'] / gen_seconds:.0f} frames/s, JPEG writing included); "
        f"{sum(summary['tubes_per_class'].values())} action tubes, {summary['splits'][0]}.",
        "",
        f"Ceilings of AMMA-style tubelets on its test split ({len(videos)} videos): tubelets of 5 key frames spaced "
        "5 apart, one step every 5 frames, emitted when the whole 21-frame window lies inside a true tube, boxes "
        "read off the ground truth, linked online, scored by the ACT "
        "protocol. The direction-blind oracle swaps a direction-reversed class for either class of its pair at "
        "random: what a model that ignores frame order can reach at best. Values in %.",
        "",
        "| detector | frame-mAP@0.5 | frame-mAP@0.5 trimmed | video-mAP@0.2 | @0.5 | @0.75 | @0.5:0.95 | "
        "time errors | missed | evaluation (s) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, r, seconds in rows:
        pct = lambda x: f"{100 * x:.1f}"  # noqa: E731
        lines.append(f"| {name} | {pct(r['frame_map@0.5'])} | {pct(r['frame_map@0.5_trimmed'])} | "
                     f"{pct(r['video_map@0.2'])} | {pct(r['video_map@0.5'])} | {pct(r['video_map@0.75'])} | "
                     f"{pct(r['video_map@0.5:0.95'])} | {pct(r['frame_errors']['time'])} | "
                     f"{pct(r['frame_errors']['missed'])} | {seconds:.2f} |")
    lines += [
        "",
        f"Online linking (`TubeLinker.update`, one call per detection step, these tubelets): {link_us:.0f} µs per "
        "step.",
        "",
    ]
    section = "\n".join(lines)
    path = Path(args.results)
    text = path.read_text()
    pattern = re.compile(re.escape(HEADING) + r".*?(?=\n## |\Z)", re.S)
    if pattern.search(text):
        text = pattern.sub(section.rstrip("\n") + "\n", text)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)
    print(section)


if __name__ == "__main__":
    main()
