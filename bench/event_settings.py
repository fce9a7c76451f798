"""Choose a model's gesture-event settings on validation streams, and show what engine smoothing costs.

    bundled model on synthetic streams (seeds 1-6, 12 gestures each; the demo's stream is seed 0, held out)
        ──► per-step probabilities (OpenVINO, no engine smoothing) ──► grid over `EventCfg`
        ──► best Levenshtein accuracy, then event F1, then the earliest median emission ──► printed as a table

Usage: PYTHONPATH=src python bench/event_settings.py [--model NAME] [--seeds 1,2,3,4,5,6] [--out DIR]
                                                     [--runtime openvino|torch|onnxruntime] [--precision bf16|fp32]
The chosen settings belong in the model's `PretrainedCfg.events`; `EventCfg`'s defaults came from this run with
the bundled model (docs/RESULTS.md, "Gesture events on a live stream").
"""
from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
from tqdm import tqdm

from streamact.cli.recognize import DEFAULT_MODEL, load_runtime_or_fallback
from streamact.data.synthetic import generate_stream
from streamact.evaluation.stream import StreamMetrics
from streamact.inference.events import EventCfg, detect_events
from streamact.inference.streaming import StreamingEngine
from streamact.io.sources import open_source

GRID = dict(alpha=[1.0, 0.5, 0.3], on_threshold=[0.5, 0.6, 0.7], off_threshold=[0.4, 0.5], min_frames=[1, 2],
            release_frames=[1, 2], early_margin=[0.3, 0.5, 1.0], late_threshold=[0.3, 0.5], switch_frames=[3, 4])


def record_streams(model: str, seeds: list[int], out: Path, runtime: str | None = None,
                   precision: str | None = None):
    """Per stream: the model's probabilities at each step, their source frame indices, and the timeline."""
    runtime, _ = load_runtime_or_fallback(model, runtime=runtime, precision=precision)
    streams = []
    for seed in tqdm(seeds, desc="streams"):
        timeline = generate_stream(out / f"stream_{seed}.mp4", num_gestures=12, seed=seed, size=160)
        engine = StreamingEngine(runtime, smoothing="none")
        probs, steps = [], []
        with open_source(out / f"stream_{seed}.mp4") as source:
            for frame, _ in source:
                if (p := engine.push(frame, source.index)) is not None:
                    probs.append(p.probs)
                    steps.append(p.frame_index)
        streams.append((np.array(probs), np.array(steps), timeline, engine))
    return runtime.pretrained_cfg, streams


def score(streams, cfg: EventCfg, labels, smoothing_alpha: float | None = None) -> dict:
    """Online metrics of `cfg` over the streams (frames after the warm-up, as `streamact demo` scores them);
    `smoothing_alpha` applies the engine's EMA to the per-frame scores first."""
    metrics = StreamMetrics(background=labels.index(cfg.background))
    for probs, steps, timeline, engine in streams:
        if smoothing_alpha is not None:  # the engine's EMA, as `StreamingEngine(smoothing="ema")` applies it
            probs = probs.copy()
            for k in range(1, len(probs)):
                probs[k] = smoothing_alpha * probs[k] + (1 - smoothing_alpha) * probs[k - 1]
        events = detect_events(probs, labels, cfg, frame_indices=steps)
        n = timeline["num_frames"]
        step_of_frame = np.searchsorted(steps, np.arange(n), side="right") - 1
        warmup = engine.runtime.pretrained_cfg.clip_len * engine.frame_interval
        metrics.update(probs[np.maximum(step_of_frame, 0)], timeline["labels"], events, timeline["segments"],
                       fps=timeline["fps"], valid=(step_of_frame >= 0) & (np.arange(n) >= warmup))
    return metrics.compute()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seeds", default="1,2,3,4,5,6")
    parser.add_argument("--out", default="runs/event_settings")
    parser.add_argument("--runtime", help="default: as `streamact recognize` (OpenVINO, falling back to torch)")
    parser.add_argument("--precision", help="default: the runtime's")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pcfg, streams = record_streams(args.model, [int(s) for s in args.seeds.split(",")], out, args.runtime,
                                   args.precision)
    labels = list(pcfg.label_names)
    results = []
    names = list(GRID)
    for values in tqdm(list(itertools.product(*GRID.values())), desc="settings"):
        change = dict(zip(names, values))
        if change["off_threshold"] > change["on_threshold"]:
            continue
        cfg = pcfg.events.replace(**change)
        m = score(streams, cfg, labels)
        results.append(((m["levenshtein_accuracy"], m["f1"], -(m["delay_median_s"] or 99)), change, m))
    results.sort(key=lambda r: r[0], reverse=True)
    best = pcfg.events.replace(**results[0][1])
    rows = [("the model's settings", score(streams, pcfg.events, labels)), ("best of the grid", results[0][2]),
            ("best, after the engine's EMA (0.3)", score(streams, best, labels, 0.3))]
    print(f"| {args.model} on {args.runtime or 'openvino'} {args.precision or ''}, streams {args.seeds} "
          "| frame acc. | per-frame mAP | Levenshtein acc. | event P / R / F1 | delay median / p90 (s) |\n"
          "|---|---|---|---|---|---|")
    for name, m in rows:
        print(f"| {name} | {m['frame_accuracy']:.3f} | {m['per_frame_map']:.3f} | {m['levenshtein_accuracy']:.3f} | "
              f"{m['precision']:.3f} / {m['recall']:.3f} / {m['f1']:.3f} | "
              f"{m['delay_median_s']:+.2f} / {m['delay_p90_s']:+.2f} |")
    print("best settings:", json.dumps(dataclasses.asdict(best)))
    (out / "results.json").write_text(json.dumps([{"settings": c, "metrics": m} for _, c, m in results[:50]],
                                                 indent=1))


if __name__ == "__main__":
    main()
