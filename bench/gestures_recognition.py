"""TSN vs TSM vs MixTConv, ImageNet init vs scratch, bf16 vs fp32 on synthetic gestures.

Generates the synthetic gesture set once (≥ 100 training clips per class), trains every experiment with the
same recipe (8 frames, EfficientNet-Lite0, 112 px), evaluates each under the real-time protocol (one clip,
centre crop) on the test split and writes the `gestures` section of docs/RESULTS.md plus a JSON file.

    python bench/gestures_recognition.py [--per-class 145] [--epochs 5] [--only tsm_in1k_fp32,...]
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from streamact.data import synthetic
from streamact.data.datasets import build_records
from streamact.engine.config import load_config
from streamact.benchmark.common import markdown_table, write_section

from _runs import ResultCache, train_and_test

EXPERIMENTS = {  # name -> (description, overrides)
    "tsm_in1k_bf16": ("TSM, ImageNet init, bf16", ["--model.name=tsm_efficientnet_lite0", "--amp=true"]),
    "tsn_in1k_bf16": ("TSN, ImageNet init, bf16", ["--model.name=tsn_efficientnet_lite0", "--amp=true"]),
    "mixtconv_in1k_bf16": ("MixTConv, ImageNet init, bf16", ["--model.name=mixtconv_efficientnet_lite0", "--amp=true"]),
    "tsm_scratch_bf16": ("TSM, from scratch, bf16", ["--model.name=tsm_efficientnet_lite0", "--amp=true",
                                                     "--model.pretrained=false"]),
    "tsm_in1k_fp32": ("TSM, ImageNet init, fp32", ["--model.name=tsm_efficientnet_lite0", "--amp=false"]),
}


def reversed_pair_metrics(scores: np.ndarray, labels: np.ndarray, class_names: list[str]) -> dict:
    """Top-1 on the direction-reversed classes, and accuracy *within* a pair (chance = 0.5)."""
    index = {n: i for i, n in enumerate(class_names)}
    partner = {}
    for a, b in synthetic.REVERSED_PAIRS:
        partner[index[a]], partner[index[b]] = index[b], index[a]
    preds = scores.argmax(1)
    mask = np.isin(labels, list(partner))
    within = np.array([p in (y, partner[y]) for p, y in zip(preds[mask], labels[mask])])
    correct = preds[mask] == labels[mask]
    return {"top1_reversed": float(correct.mean()),
            "pair_accuracy": float(correct[within].mean()) if within.any() else float("nan")}


def write_results(results: dict, data: Path, per_class: int, epochs: int) -> None:
    rows = [results[n] for n in EXPERIMENTS if n in results]
    train_records, class_names = build_records("jester", root=str(data), split="train")
    num_train = len(train_records)
    body = (f"## Synthetic gestures: TSN vs TSM vs MixTConv\n\n"
            f"{len(class_names)} classes, {num_train} training clips (≥ 100 per class), 8 frames (TSN segment "
            f"sampling), EfficientNet-Lite0, 112×112 crops from 128×128 videos, AdamW lr 1e-3 cosine (0.5 epoch warm-up), "
            f"{epochs} epochs, batch 16. Test = real-time protocol (one clip, centre crop). "
            f"`top1_reversed` = top-1 on the {2 * len(synthetic.REVERSED_PAIRS)} direction-reversed classes; `pair_accuracy` = among those "
            f"samples predicted as one of the two classes of their pair, how often the direction is right "
            f"(chance 0.5).\n\n"
            + markdown_table(rows, ["experiment", "top1", "mean_class_acc", "top1_reversed", "pair_accuracy",
                                    "train_clips_per_s", "train_minutes"]))
    write_section("gestures", body, command=f"python bench/gestures_recognition.py --per-class {per_class} "
                                            f"--epochs {epochs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="data/bench_gestures")
    parser.add_argument("--per-class", type=int, default=145, help="videos per class (70%% go to train)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--only", default="", help="comma-separated experiment names")
    parser.add_argument("--out", default="runs/bench_gestures")
    args = parser.parse_args()
    torch.set_num_threads(2)

    data = Path(args.data)
    if not (data / "test.csv").exists():
        t0 = time.perf_counter()
        synthetic.generate_gestures(data, per_class=args.per_class, seed=0, size=128, num_workers=2)
        print(f"generated {data} in {time.perf_counter() - t0:.0f}s")
    names = [n for n in EXPERIMENTS if not args.only or n in args.only.split(",")]
    out = Path(args.out)
    cache = ResultCache(out / "results.json")
    for name in names:
        desc, overrides = EXPERIMENTS[name]
        cfg = load_config("configs/gestures_tsm_effl0_8f.yaml", overrides + [
            f"--data.root={data}", f"--epochs={args.epochs}", f"--out_dir={out / name}", "--eval_every=0"])
        test_records, class_names = build_records("jester", root=str(data), split="test")
        result, _, meters = train_and_test(cfg, {"test": (test_records, 1)}, class_names)
        meter, m = meters["test"], result["tests"]["test"]
        cache.put(name, {"experiment": desc, "top1": m["top1"], "mean_class_acc": m["mean_class_accuracy"],
                         **reversed_pair_metrics(meter.scores, meter.labels, class_names),
                         "train_clips_per_s": result["train_clips_per_s"], "train_minutes": result["train_minutes"],
                         "epochs": cfg.epochs, "num_test": m["num_samples"], "last_epoch": result["last_epoch"]})
        print(name, {k: v for k, v in cache[name].items() if k != "last_epoch"})
        write_results(cache.results, data, args.per_class, args.epochs)  # after each run: partial results land too


if __name__ == "__main__":
    main()
