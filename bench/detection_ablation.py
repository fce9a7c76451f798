"""AMMA ablations on the synthetic action set: what micro-motion, lateral fusion, K and the backbone buy.

    streamact data synth detection --out data/detection --num-videos 400 --workers 2
    python bench/detection_ablation.py --data data/detection --groups motion --steps 800

Every variant trains the recipe configs/detection_amma_effl0.yaml from its initial weights with the same seed,
samples, steps and learning rate, differing only in the overrides listed below (the backbone group swaps the model);
it is then streamed over the test split clip by clip as `streamact eval` does (ACT protocol). Groups:

    motion     RGB only / RGB + MM_Diff / RGB + MM_ConvDiff (after Table 1 of "Accumulated Micro-Motion
               Representations for Lightweight Online Action Detection in Real-Time")
    fusion     lateral fusion after 0 / 1 / 2 / 3 stages (after its Table 2)
    clips      K = 2 / 3 / 4 clips per tubelet (after its Fig. 5)
    backbones  ResNet-18 / MobileNetV2 / ShuffleNetV2 (from scratch: no offline weights) / EfficientNet-Lite0

Results are kept in runs/ablation/results.json after every run (an interrupted benchmark resumes; a finished one only
rewrites its report, the section "detection_ablation" of docs/RESULTS.md).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _runs import ResultCache  # noqa: E402

from streamact.benchmark.common import markdown_table, write_section  # noqa: E402
from streamact.complexity import count_macs, count_params  # noqa: E402
from streamact.data.datasets.detection import load_detection_annotations  # noqa: E402
from streamact.engine.config import load_config  # noqa: E402
from streamact.engine.tasks import evaluate_detector, find_annotation_file, split_videos  # noqa: E402
from streamact.engine.trainer import Trainer  # noqa: E402
from streamact.evaluation.detection_report import percent  # noqa: E402

RECIPE = "configs/detection_amma_effl0.yaml"
CONVDIFF = ("convdiff", "RGB + MM_ConvDiff, 3 fusions, K = 3, EfficientNet-Lite0", [])
GROUPS: dict[str, list[tuple[str, str, list[str]]]] = {  # group -> [(run, label, overrides of RECIPE)]
    "motion": [
        ("rgb", "RGB only", ["--model.kwargs.motion=none"]),
        ("diff", "RGB + MM_Diff", ["--model.kwargs.motion=diff"]),
        CONVDIFF,
    ],
    "fusion": [(f"fusion{f}", f"{f} lateral fusion(s)", [f"--model.kwargs.fusion_stages={f}"]) for f in (0, 1, 2)]
    + [CONVDIFF],
    "clips": [(f"k{k}", f"K = {k}", [f"--data.num_clips={k}"]) for k in (2, 4)] + [CONVDIFF],
    "backbones": [(name, label, [f"--model.name=amma_{name}", "--model.pretrained=false"])
                  for name, label in (("resnet18", "AMMA_18 (ResNet-18)"), ("mobilenetv2", "AMMA_M (MobileNetV2)"),
                                      ("shufflenetv2", "AMMA_S (ShuffleNetV2)"))] + [CONVDIFF],
}


def run(name: str, overrides: list[str], args: argparse.Namespace, cache: ResultCache) -> None:
    """Train and score one variant; the result goes to the cache."""
    cfg = load_config(RECIPE, [f"--data.root={args.data}", "--data.val_split=", f"--max_steps={args.steps}",
                               f"--epochs={args.epochs}", "--amp=false", f"--out_dir={args.out / name}", *overrides])
    trainer = Trainer(cfg)
    trainer.fit(overwrite=True)  # a run cut short by an interrupted benchmark starts over
    model = trainer.model.eval()
    ann = load_detection_annotations(find_annotation_file(args.data), on_error="skip")
    summary = evaluate_detector(model, ann, split_videos(ann, "test"), progress=True).summary()
    k, t, s = cfg.data.num_clips, cfg.data.clip_len, cfg.data.input_size
    cache.put(name, {
        "overrides": overrides, "steps": args.steps,
        "params": count_params(model), "gmacs_per_clip": count_macs(model, [1, 3, k * t, s, s]) / k / 1e9,
        "motion_pairs": [[ann.labels[a], ann.labels[b]] for a, b in ann.motion_pairs],
        **{key: summary[key] for key in ("frame_map@0.5", "video_map@0.2", "video_map@0.5", "frame_errors",
                                         "per_class")},
    })
    print(name, json.dumps({key: cache[name][key] for key in ("frame_map@0.5", "video_map@0.5")}))


def report(cache: ResultCache) -> str:
    """Markdown of every group with at least two finished runs."""
    parts = []
    for group, variants in GROUPS.items():
        done = [(name, label) for name, label, _ in variants if name in cache]
        if len(done) < 2:
            continue  # nothing to compare yet (the shared baseline alone)
        pairs = cache[done[0][0]]["motion_pairs"]
        motion_classes = [c for pair in pairs for c in pair]
        rows = []
        for name, label in done:
            r = cache[name]
            per_class = r["per_class"]
            motion_ap = [per_class[c]["frame_ap@0.5"] for c in motion_classes]
            other_ap = [v["frame_ap@0.5"] for c, v in per_class.items() if c not in motion_classes]
            rows.append({
                "variant": label, "params (M)": f"{r['params'] / 1e6:.2f}",
                "GMACs / clip": f"{r['gmacs_per_clip']:.3f}",
                "frame-mAP@0.5": percent(r["frame_map@0.5"]), "video-mAP@0.2": percent(r["video_map@0.2"]),
                "video-mAP@0.5": percent(r["video_map@0.5"]),
                "motion classes": percent(sum(motion_ap) / len(motion_ap)),
                "other classes": percent(sum(other_ap) / len(other_ap)),
                "classification errors": percent(r["frame_errors"]["classification"]),
                **{c: percent(per_class[c]["frame_ap@0.5"]) for c in motion_classes},
            })
        columns = ["variant", "params (M)", "GMACs / clip", "frame-mAP@0.5", "video-mAP@0.2", "video-mAP@0.5",
                   "motion classes", "other classes", "classification errors"]
        parts.append(f"### {group}\n\n" + markdown_table(rows, columns) + "\n\nFrame-AP@0.5 (%) of the classes told "
                     "apart only by the direction of their motion:\n\n"
                     + markdown_table(rows, ["variant", *motion_classes]))
    return "\n\n".join(parts)


def noise(cache: ResultCache) -> str:
    """RGB only and 0 fusions are the same network from the same seed: how far apart their runs ended."""
    if "rgb" not in cache or "fusion0" not in cache:
        return ""
    a, b = (cache[name]["frame_map@0.5"] for name in ("rgb", "fusion0"))
    return (f" (RGB only and 0 lateral fusions build the same network from the same seed, yet their runs ended "
            f"{abs(a - b) * 100:.1f} frame-mAP points apart, a direct measure of that noise)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/detection", help="detection dataset folder")
    parser.add_argument("--groups", nargs="+", choices=list(GROUPS), default=list(GROUPS))
    parser.add_argument("--variants", nargs="+", help="run only these variants of the groups (e.g. shufflenetv2; "
                        "default: all), to share the work between processes writing the same results file")
    parser.add_argument("--steps", type=int, default=800, help="training steps of every variant (batch 8)")
    parser.add_argument("--epochs", type=int, default=2, help="the recipe's schedule length; --steps stops it "
                        "(the learning-rate step at 1.5 epochs then never comes)")
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    args = parser.parse_args()
    cache = ResultCache(args.out / "results.json")
    for group in args.groups:
        for name, _, overrides in GROUPS[group]:
            if name not in cache and (args.variants is None or name in args.variants):
                run(name, overrides, args, cache)
    body = ("## What micro-motion, fusion, K and the backbone buy (AMMA ablations)\n\n"
            f"Each variant: `{RECIPE}` with the overrides of `bench/detection_ablation.py`, trained {args.steps} "
            f"steps of batch 8 from its initial weights (seed 317, float32), streamed over the test split of "
            f"`{args.data}` as `streamact eval` does (ACT protocol, percent). GMACs per clip at the training input "
            "(128², t = 4): tubelet MACs / K, as the paper counts them. Short runs on 2 CPU cores: one seed each, "
            f"so differences of a few points are within run-to-run noise{noise(cache)}. In the backbone group only "
            "EfficientNet-Lite0 starts from ImageNet weights; the other three start from random weights (no offline "
            "weights for them). Every group with two or more finished runs "
            f"in `{args.out / 'results.json'}` is shown, also one whose other variants have not run yet.\n\n"
            + report(cache))
    write_section("detection_ablation", body)


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
