"""A bi-directionally trained TSM run causally, then fine-tuned causally; produces the bundled model.

Starts from the TSM-EfficientNet-Lite0 checkpoint of bench/gestures_recognition.py (bi-directional shift, TSN
segment sampling) and evaluates on the synthetic gesture test split:

1. as trained (bi-directional, 8 segments over the whole clip);
2. bi-directional on dense clips (8 consecutive frames at frame_interval 2: what a live stream delivers);
3. converted with `make_causal()` without training, dense clips (what streaming it as is would give);
4. after causal fine-tuning on dense clips (`--model.init_weights`, `--model.kwargs.causal=true`).

A causal model's offline dense-clip output equals its streamed output after the same frames (tests), so rows 3-4
are streaming accuracies. Row 4's weights become the bundled model (src/streamact/weights/, safetensors).

    python bench/causal_streaming.py [--epochs 2]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from streamact.data.datasets import build_records
from streamact.data.synthetic import GESTURE_CLASSES
from streamact.data.loader import build_loader
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.config import config_from_dict, load_config
from streamact.engine.build import build_model_from_config
from streamact.engine.trainer import Trainer, build_dataset, evaluate
from streamact.models._pretrained import WEIGHTS_DIR

from streamact.benchmark.common import markdown_table, write_section

BUNDLED = "tsm_efficientnet_lite0_gestures"


def test_top1(model, cfg, class_names) -> float:
    records, _ = build_records(cfg.data.format, root=cfg.data.root, split="test")
    pcfg = model.pretrained_cfg
    dataset = build_dataset(cfg.data, records, train=False, mean=pcfg.mean, std=pcfg.std)
    meter, _ = evaluate(model, build_loader(dataset, 16, shuffle=False, num_workers=2), len(class_names),
                        class_names=class_names)
    return meter.compute()["top1"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="runs/bench_gestures/tsm_in1k_bf16/last.pt")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--out", default="runs/bench_causal")
    args = parser.parse_args()
    torch.set_num_threads(2)

    ckpt = load_checkpoint(args.source)
    cfg = config_from_dict(ckpt["config"], source=args.source)
    class_names = list(ckpt["class_names"])
    if class_names != list(GESTURE_CLASSES):
        raise SystemExit(f"{args.source} was not trained on the synthetic gesture classes in their order")
    model = build_model_from_config(cfg, class_names, pretrained=False)
    model.load_state_dict(ckpt["model"])
    dense = ["--data.sampling=dense", "--data.frame_interval=2"]
    dense_cfg = load_config(None, [f"--data.root={cfg.data.root}", f"--data.input_size={cfg.data.input_size}",
                                   *dense])
    rows = [{"model": "bi-directional TSM, as trained", "sampling": "8 segments", "top1": test_top1(model, cfg, class_names)},
            {"model": "bi-directional TSM", "sampling": "dense 8x2", "top1": test_top1(model, dense_cfg, class_names)}]
    model.make_causal()
    rows.append({"model": "made causal, no fine-tuning (= streamed as is)", "sampling": "dense 8x2",
                 "top1": test_top1(model, dense_cfg, class_names)})

    ft_cfg = load_config("configs/gestures_tsm_effl0_8f.yaml", [
        f"--data.root={cfg.data.root}", *dense, f"--model.init_weights={args.source}", "--model.kwargs.causal=true",
        f"--epochs={args.epochs}", "--optim.lr=0.0003", "--optim.warmup_epochs=0", "--amp=true", "--eval_every=0",
        f"--out_dir={args.out}"])
    t0 = time.perf_counter()
    trainer = Trainer(ft_cfg)
    trainer.fit(overwrite=True)  # a rerun replaces an interrupted fine-tuning run
    minutes = (time.perf_counter() - t0) / 60
    tuned = trainer.model.eval()
    rows.append({"model": f"causal fine-tuned {args.epochs} epochs ({minutes:.1f} min) (= streamed)",
                 "sampling": "dense 8x2", "top1": test_top1(tuned, ft_cfg, class_names)})

    WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
    weights = WEIGHTS_DIR / f"{BUNDLED}.safetensors"
    save_file({k: v.contiguous() for k, v in tuned.state_dict().items()}, str(weights),
              metadata={"source": args.source, "recipe": f"python bench/causal_streaming.py --epochs {args.epochs}"})
    Path(args.out, "rows.json").write_text(json.dumps(rows, indent=2))
    for r in rows:
        print(r)
    body = ("## Streaming a bi-directionally trained TSM\n\n"
            "TSM-EfficientNet-Lite0 from the `gestures` section (bi-directional shift, 8 segments, 112 px), "
            "synthetic gesture test split, one clip per video. Dense 8x2 = 8 consecutive frames at "
            "frame_interval 2, the clips a live stream delivers. The causal rows equal frame-by-frame streaming "
            "(tests/models/test_streaming.py). The fine-tuned model is the bundled "
            f"`{BUNDLED}` ({weights.stat().st_size / 1e6:.1f} MB safetensors).\n\n"
            + markdown_table(rows, ["model", "sampling", "top1"]))
    write_section("causal", body, command=f"python bench/causal_streaming.py --epochs {args.epochs}")


if __name__ == "__main__":
    main()
