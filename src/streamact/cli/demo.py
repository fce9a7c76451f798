"""`streamact demo --out DIR`: the end-to-end job on synthetic gestures, from nothing to a confusion matrix.

Generates a small synthetic gesture set, fine-tunes an ImageNet-initialised TSM-EfficientNet-Lite0 for a few
minutes on the CPU, evaluates it under the real-time protocol and prints a summary table.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(name, help="run the end-to-end demo on synthetic gestures",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="runs/demo", help="output directory (default runs/demo)")
    p.add_argument("--per-class", type=int, default=12, help="synthetic videos per class (default 12)")
    p.add_argument("--epochs", type=int, default=3, help="training epochs (default 3)")
    p.add_argument("--size", type=int, default=112, help="input size (default 112)")
    p.add_argument("--seed", type=int, default=0)
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.cli import evaluate as eval_cli
    from streamact.data.datasets.synthetic import generate_gestures
    from streamact.engine.config import load_config
    from streamact.engine.trainer import Trainer

    out = Path(args.out)
    t0 = time.perf_counter()
    data_dir = out / "data"
    if not (data_dir / "test.csv").exists():
        print(f"[1/3] generating synthetic gestures in {data_dir}")
        generate_gestures(data_dir, per_class=args.per_class, seed=args.seed, size=args.size + args.size // 7,
                          num_workers=2)
    cfg = load_config(None, [
        "--model.name=tsm_efficientnet_lite0", "--model.pretrained=true", f"--data.root={data_dir}",
        f"--data.input_size={args.size}", "--data.batch_size=8", f"--epochs={args.epochs}", "--optim.lr=0.01",
        "--optim.warmup_epochs=0.5", "--amp=true", f"--seed={args.seed}", f"--out_dir={out / 'train'}",
    ])
    print(f"[2/3] training {cfg.model.name} for {cfg.epochs} epochs (bf16 autocast)")
    Trainer(cfg).fit()
    print("[3/3] evaluating (real-time protocol: one clip, centre crop)")
    eval_args = argparse.Namespace(checkpoint=str(out / "train" / "last.pt"), data=None, format=None, split="test",
                                   num_clips=1, batch_size=8, num_workers=2, out=str(out / "eval"), amp=True)
    eval_cli.main(eval_args)
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    print(f"\n{'model':<24}{'top-1':>8}{'top-5':>8}{'mean-class':>12}{'minutes':>9}")
    print(f"{cfg.model.name:<24}{metrics['top1']:>8.3f}{metrics['top5']:>8.3f}"
          f"{metrics['mean_class_accuracy']:>12.3f}{(time.perf_counter() - t0) / 60:>9.1f}")
    print(f"confusion matrix: {out / 'eval' / 'confusion.png'}")
    return 0
