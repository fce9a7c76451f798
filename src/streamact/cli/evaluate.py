"""`streamact eval CHECKPOINT DATA_ROOT`: real-time protocol by default (one clip, centre crop)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        name, help="evaluate a checkpoint (real-time protocol by default)",
        description="Evaluate a trained checkpoint. Default protocol = seed 000's real-time setting: one clip, "
                    "centre crop, no test-time augmentation. --num-clips N averages N evenly spaced clips.")
    p.add_argument("checkpoint", help="a .pt checkpoint written by `streamact train`")
    p.add_argument("data", nargs="?", help="dataset root (default: the one the model was trained on)")
    p.add_argument("--format", help="annotation format (default: from the checkpoint's config)")
    p.add_argument("--split", default="test", help="split to evaluate (default: test)")
    p.add_argument("--num-clips", type=int, default=1, help="clips per video, averaged (default 1)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--num-workers", type=int, default=2)
    p.add_argument("--out", help="output directory (default: <checkpoint dir>/eval_<split>)")
    p.add_argument("--amp", action="store_true", help="bf16 autocast")
    return p


def main(args: argparse.Namespace) -> int:
    import numpy as np

    from streamact.data.datasets import build_records
    from streamact.data.loader import build_loader
    from streamact.engine.trainer import build_dataset, evaluate
    from streamact.inference.predictor import load_trained_model
    from streamact.viz import plot_confusion_matrix

    model, cfg = load_trained_model(args.checkpoint)
    class_names = list(model.pretrained_cfg.label_names)
    if args.data:
        cfg.data.root = args.data
    if args.format:
        cfg.data.format = args.format
    records, data_classes = build_records(cfg.data.format, root=cfg.data.root, split=args.split)
    if not records:
        print(f"error: split '{args.split}' of {cfg.data.root} has no videos", file=sys.stderr)
        return 2
    if list(data_classes) != class_names:
        print(f"error: the dataset's classes ({len(data_classes)}) differ from the checkpoint's ({len(class_names)})",
              file=sys.stderr)
        return 2
    pcfg = model.pretrained_cfg
    dataset = build_dataset(cfg.data, records, train=False, mean=pcfg.mean, std=pcfg.std, num_clips=args.num_clips)
    loader = build_loader(dataset, args.batch_size, shuffle=False, num_workers=args.num_workers)
    meter, num_bad = evaluate(model, loader, len(class_names), class_names=class_names, amp=args.amp, progress=True)
    m = meter.compute()
    m.update(checkpoint=str(args.checkpoint), split=args.split, num_clips=args.num_clips, skipped_samples=num_bad,
             protocol="real-time: 1 clip, centre crop" if args.num_clips == 1 else f"{args.num_clips} clips, centre crop")

    out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval_{args.split}"
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(m, indent=2))
    np.save(out / "scores.npy", meter.scores)
    plot_confusion_matrix(np.array(m["confusion_matrix"]), class_names, out / "confusion.png",
                          title=f"{cfg.model.name} on {args.split}: top-1 {m['top1']:.3f}")
    width = max(len(c) for c in class_names)
    print(f"{'class':<{width}}  accuracy")
    for name, acc in m["per_class"].items():
        print(f"{name:<{width}}  {'-' if acc is None else f'{acc:.3f}'}")
    print(f"\n{m['protocol']} | samples {m['num_samples']} | skipped {num_bad} | top-1 {m['top1']:.4f} | "
          f"top-5 {m['top5']:.4f} | mean class acc {m['mean_class_accuracy']:.4f}\nwrote {out}/metrics.json, "
          f"{out}/confusion.png")
    return 0
