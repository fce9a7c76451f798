"""Results of LIGAR and VTN and their training methods on synthetic gestures.

Experiments (each trained once with the recipe below, results cached in runs/bench_ligar_vtn/results.json):

- compare: LIGAR (X3D-MobileNetV3-LGD, metric head) vs TSM vs VTN at matched input (dense 8 frames at stride 2,
  96²), with MACs per streamed frame;
- vtn: VTN on RGB, RGB difference, stacked RGB + RGB difference, and stacked distilled from the RGB + RGB-difference
  ensemble (after Table 1 of "Lightweight Network Architecture for Real-Time Action Recognition");
- acs: uniform clip sampling vs Adaptive Clip Selection (after Table 3 of "LIGAR: Lightweight General-purpose Action Recognition"), same seed per pair, on untrimmed
  videos where the gesture fills a minority of the frames (many 16-frame training windows show idle motion under the
  video's label) and 10 subjects each perform every class in their own scene: 48-72 frames with the gesture in
  20-35% from ImageNet and from the bundled gesture model's backbone (fresh classifier), and 96-128 frames with the
  gesture in 10-20% from the gesture model; trained longer (--acs-epochs) so that videos collect scores on 70% of
  their frames; tested on whole videos (10 clips) and on the gesture segment alone;
- sampling: sparse (TSN segments) vs continuous (dense) sampling, each tested with 1 and 10 clips (after Table 1
  of "LIGAR: Lightweight General-purpose Action Recognition");
- regularisers: on an ImageNet-initialised TSM with LIGAR's staged schedule, each regulariser switched on alone;
- scratch: LIGAR vs TSM both from random init (no pretrained X3D exists offline), trained longer (--scratch-epochs).

    python bench/ligar_vtn.py [--groups compare,vtn,acs,sampling,regularisers,scratch] [--epochs 5] [--acs-epochs 16]
                              [--scratch-epochs 24]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from streamact.complexity import count_step_macs
from streamact.data.acs import ACSScoreStore, segment_probabilities
from streamact.data import synthetic
from streamact.data.datasets import build_records
from streamact.data.records import VideoRecord
from streamact.engine.config import TrainConfig, load_config
from streamact.losses.distillation import load_teacher
from streamact.models import create_model
from streamact.models._pretrained import WEIGHTS_DIR
from streamact.benchmark.common import markdown_table, write_section
from streamact.transforms.regularizers import collect_channel_stats

from _runs import ResultCache, test_model, train_and_test

RECIPE = "configs/gestures_tsm_effl0_8f.yaml"
SIZE, BATCH = 96, 8  # small crops and batches: more optimizer steps in the time budget of 15 runs on 2 cores
# Many 16-frame windows miss the gesture; 10 subjects each perform every class in one scene of their own, so a
# model cannot fit the idle windows' labels by recognising each training video's scene (it can with a scene per video).
UNTRIMMED = {"length": (48, 72), "gesture_fraction": (0.2, 0.35), "subjects": 10}
# Longer videos, shorter gestures: most training windows are idle under the video's label (ActivityNet-like).
UNTRIMMED_LONG = {"length": (96, 128), "gesture_fraction": (0.1, 0.2), "subjects": 10}
UNTRIMMED_SETS = {"untrimmed": UNTRIMMED, "untrimmed_long": UNTRIMMED_LONG}  # dataset name -> generator parameters
COMMON = [f"--data.input_size={SIZE}", f"--data.batch_size={BATCH}", "--amp=true", "--eval_every=0"]
DENSE = COMMON + ["--data.sampling=dense", "--data.frame_interval=2"]
TSM = ["--model.name=tsm_efficientnet_lite0"]
VTN = ["--model.name=vtn_efficientnet_lite0", "--model.dropout=0"]
LIGAR = ["--model.name=ligar_x3d_mobilenetv3", "--model.pretrained=false", "--model.dropout=0",
         "--loss.name=metric"]
# The bundled streaming model (causal TSM trained on other synthetic gesture videos) with a fresh classifier: a
# backbone that already knows the motions, as the paper's models start from Kinetics.
GESTURE_INIT = ["--model.kwargs.causal=true", "--model.init_head=false",
                f"--model.init_weights={WEIGHTS_DIR / 'tsm_efficientnet_lite0_gestures.safetensors'}"]
STAGED = ["--optim.schedule=staged", "--optim.freeze_epochs=1", "--optim.warmup_epochs=1", "--optim.freeze_lr_mult=1"]

# name -> (group(s), description, overrides, dataset, {test name: num_clips})
EXPERIMENTS = {
    "tsm_dense": (("compare", "sampling"), "TSM, ImageNet init, continuous (dense 8×2)", TSM + DENSE, "gestures",
                  {"1 clip": 1, "10 clips": 10}),
    "vtn_rgb": (("compare", "vtn"), "VTN, ImageNet init, RGB", VTN + DENSE, "gestures", {"1 clip": 1}),
    "ligar": (("compare",), "LIGAR, from scratch (no ImageNet X3D offline), metric head", LIGAR + DENSE, "gestures",
              {"1 clip": 1}),
    "vtn_rgbdiff": (("vtn",), "VTN, RGB difference", VTN + DENSE + ["--model.kwargs.modality=rgbdiff"], "gestures",
                    {"1 clip": 1}),
    "vtn_stacked": (("vtn",), "VTN, stacked RGB + RGB difference", VTN + DENSE + ["--model.kwargs.modality=stacked"],
                    "gestures", {"1 clip": 1}),
    "vtn_stacked_kd": (("vtn",), "VTN, stacked, distilled from the RGB + RGB-difference ensemble (T=8, 0.4)",
                       VTN + DENSE + ["--model.kwargs.modality=stacked"], "gestures", {"1 clip": 1}),
    "tsm_segment": (("sampling",), "TSM, ImageNet init, sparse (8 segments)", TSM + COMMON,
                    "gestures", {"1 clip": 1, "10 clips": 10}),
    "reg_base": (("regularisers",), "staged schedule, no regulariser", TSM + DENSE + STAGED, "gestures",
                 {"1 clip": 1}),
    "reg_rsc": (("regularisers",), "+ RSC", TSM + DENSE + STAGED + ["--loss.rsc=true"], "gestures", {"1 clip": 1}),
    "reg_crossnorm": (("regularisers",), "+ CrossNorm (p 0.45)", TSM + DENSE + STAGED, "gestures", {"1 clip": 1}),
    "reg_mixup": (("regularisers",), "+ background MixUp (p 0.5)", TSM + DENSE + STAGED, "gestures", {"1 clip": 1}),
    "reg_agc": (("regularisers",), "+ adaptive gradient clipping (0.2) instead of norm clipping",
                TSM + DENSE + STAGED + ["--optim.clip_mode=agc", "--optim.clip_grad=0.2"], "gestures",
                {"1 clip": 1}),
    "reg_views": (("regularisers",), "+ 2 views with temporal crops, JS consistency (12)",
                  TSM + DENSE + STAGED + ["--data.views=2"], "gestures", {"1 clip": 1}),
    "tsm_dense_scratch": (("compare",), "TSM, from scratch, continuous", TSM + DENSE + ["--model.pretrained=false"],
                          "gestures", {"1 clip": 1}),
    "ligar_scratch_long": (("scratch",), "LIGAR, from scratch, metric head", LIGAR + DENSE, "gestures", {"1 clip": 1}),
    "tsm_scratch_long": (("scratch",), "TSM, from scratch", TSM + DENSE + ["--model.pretrained=false"], "gestures",
                         {"1 clip": 1}),
}
# The ACS pairs (uniform vs ACS, same seed): suffix -> (init label, init overrides, dataset, seeds).
ACS_SETUPS = {"": ("ImageNet", [], "untrimmed", (0, 1)), "_ft": ("gesture model", GESTURE_INIT, "untrimmed", (0, 1)),
              "_ft_long": ("gesture model", GESTURE_INIT, "untrimmed_long", (0, 1, 2, 3))}
UNIFORM, ACS = "uniform clip sampling", "Adaptive Clip Selection"
ACS_ARMS = (("uniform", UNIFORM, []), ("on", ACS, ["--data.acs=true"]))  # (name part, description, overrides)


def acs_runs():
    """(experiment name, init label, dataset, seed, description, overrides) of every ACS run, pair by pair."""
    for suffix, (init_label, init, dataset, seeds) in ACS_SETUPS.items():
        for seed in seeds:
            for arm, desc, acs in ACS_ARMS:
                yield (f"acs_{arm}{suffix}" + (f"_seed{seed}" if seed else ""), init_label, dataset, seed, desc,
                       TSM + DENSE + init + acs + [f"--seed={seed}"])


def acs_experiments() -> dict:
    """The ACS runs as `EXPERIMENTS` entries."""
    return {name: (("acs",), desc, overrides, dataset, {"video, 10 clips": 10, "gesture segment, 1 clip": 1})
            for name, _, dataset, _, desc, overrides in acs_runs()}


EXPERIMENTS.update(acs_experiments())
GROUPS = ("compare", "vtn", "acs", "sampling", "regularisers", "scratch")
EPOCHS_ARG = {"acs": "acs_epochs", "scratch": "scratch_epochs"}  # groups trained longer than --epochs


def prepare_data(root: Path, per_class: int, untrimmed_per_class: int) -> dict[str, Path]:
    """Generate (once) the trimmed and untrimmed gesture sets, background images and CrossNorm statistics."""
    paths = {"gestures": root / "bench_small_gestures", "backgrounds": root / "bench_backgrounds"}
    if not (paths["gestures"] / "test.csv").exists():
        synthetic.generate_gestures(paths["gestures"], per_class=per_class, seed=1, size=128, num_workers=2)
    for key, params in UNTRIMMED_SETS.items():
        paths[key] = root / "bench_untrimmed_{}-{}f_{}-{}pct_{}subjects".format(
            *params["length"], *(round(100 * f) for f in params["gesture_fraction"]), params["subjects"])
        if not (paths[key] / "test.csv").exists():
            synthetic.generate_untrimmed(paths[key], per_class=untrimmed_per_class, seed=2, size=128,
                                         num_workers=2, **params)
    if not paths["backgrounds"].exists():
        synthetic.generate_backgrounds(paths["backgrounds"], num=60, seed=3, size=128)
    paths["crossnorm"] = paths["gestures"] / "crossnorm_stats.txt"
    if not paths["crossnorm"].exists():
        records, _ = build_records("jester", root=str(paths["gestures"]), split="train")
        collect_channel_stats(records, path=paths["crossnorm"])
    return paths


def segment_records(root: Path, records: list[VideoRecord]) -> list[VideoRecord]:
    """The untrimmed test videos cut to their gesture (segments.json): what the model should have learned."""
    segments = json.loads((root / "segments.json").read_text())
    return [VideoRecord(r.path, r.label, start=segments[r.path.stem]["start"], end=segments[r.path.stem]["end"])
            for r in records]


def acs_focus(store: ACSScoreStore, records: list[VideoRecord], root: Path, window: int) -> dict:
    """Where Eq. 1 sends the training windows at the end: the share of sampling mass on windows that overlap the
    gesture (by at least half the window or half the gesture), over the ACS-ready videos, vs uniform sampling of
    the same videos. ``no_gesture`` videos (segment = whole video) are left out."""
    segments = json.loads((root / "segments.json").read_text())
    acs, uniform = [], []
    for video, scores in store.snapshot().items():
        segment = segments[records[video].path.stem]
        start, end = segment["start"], segment["end"]
        if end - start >= len(scores):
            continue
        starts = np.arange(len(scores) - window + 1)
        overlap = np.minimum(starts + window, end) - np.maximum(starts, start)
        hit = overlap >= min(window, end - start) / 2
        acs.append(segment_probabilities(scores, window)[hit].sum())
        uniform.append(hit.mean())
    return {"acs_gesture_share": float(np.mean(acs)), "uniform_gesture_share": float(np.mean(uniform)),
            "acs_videos": len(acs)}


def macs_per_frame(cfg: TrainConfig, num_classes: int) -> int:
    """MACs of one streaming step of the recipe's model at its input size and clip length."""
    with torch.device("meta"):
        model = create_model(cfg.model.name, num_classes=num_classes, num_segments=cfg.data.clip_len,
                             img_size=cfg.data.input_size, **cfg.model.kwargs)
    return count_step_macs(model.make_causal())


def run(name: str, paths: dict[str, Path], args: argparse.Namespace, out: Path, cache: ResultCache) -> None:
    groups, desc, overrides, dataset, tests = EXPERIMENTS[name]
    root = paths[dataset]
    extra = {"reg_crossnorm": [f"--data.crossnorm_stats={paths['crossnorm']}"],
             "reg_mixup": [f"--data.mixup_backgrounds={paths['backgrounds']}"]}.get(name, [])
    epochs = getattr(args, EPOCHS_ARG.get(groups[0], "epochs"))
    cfg = load_config(RECIPE, overrides + extra + [f"--data.root={root}", f"--epochs={epochs}",
                                                   f"--out_dir={out / name}"])
    if name == "vtn_stacked_kd":
        cfg.loss.teacher = [str(out / member / "last.pt") for member in ("vtn_rgb", "vtn_rgbdiff")]
    test_records, class_names = build_records("jester", root=str(root), split="test")
    test_sets = {}
    for test, clips in tests.items():
        records = segment_records(root, test_records) if "segment" in test else test_records
        test_sets[test] = (records, clips)
    print(f"== {name}: {desc}", flush=True)
    result, trainer, _ = train_and_test(cfg, test_sets, class_names)
    result.update(experiment=desc, epochs=epochs, macs_per_frame=macs_per_frame(cfg, len(class_names)),
                  params=sum(p.numel() for p in trainer.model.parameters()))
    if trainer.acs is not None:
        window = cfg.data.clip_len * cfg.data.frame_interval
        result.update(acs_focus(trainer.acs, trainer.train_set.records, root, window))
    if name == "vtn_stacked_kd":  # the teacher ensemble, on the same test clips
        teacher = load_teacher(cfg.loss.teacher, class_names)
        m = test_model(teacher, cfg, test_records, class_names, pretrained_cfg=trainer.model.pretrained_cfg).compute()
        result["teacher_top1"] = m["top1"]
    cache.put(name, result)
    print(name, json.dumps(result["tests"]), flush=True)


def write_report(cache: ResultCache, args: argparse.Namespace) -> None:
    epochs, per_class = args.epochs, args.per_class
    def rows(names, test):
        out = []
        for n in names:
            if n not in cache:
                continue
            r = cache[n]
            t = r["tests"][test]
            out.append({"experiment": r["experiment"], "top1": t["top1"], "mean_class_acc": t["mean_class_accuracy"],
                        "rank_mAP": t["rank_map"], "GMACs/frame": r["macs_per_frame"] / 1e9,
                        "params_M": r["params"] / 1e6, "train_min": r["train_minutes"]})
        return out

    cols = ["experiment", "top1", "mean_class_acc", "rank_mAP", "train_min"]
    num_test = cache["tsm_dense"]["tests"]["1 clip"]["num_samples"] if "tsm_dense" in cache else 0
    parts = [f"## LIGAR and VTN on synthetic gestures\n\n15 classes, {per_class} videos per class (70% train), "
             f"128² videos, {SIZE}² crops, AdamW lr 1e-3 with cosine schedule (0.5 epoch warm-up) unless noted, "
             f"{epochs} epochs, batch {BATCH}, bf16 autocast; tests on the test split, one centre crop unless noted. "
             f"With {num_test} test videos the standard error of a top-1 near 0.5 is "
             f"{(0.25 / max(num_test, 1)) ** 0.5:.3f}: differences under about twice that are noise.\n",
             f"### LIGAR vs TSM vs VTN at matched input (dense 8 frames at stride 2, {SIZE}²)\n\nGMACs per streamed frame = "
             "one `forward_step` (TSM: one backbone pass; VTN: one encoder pass + the decoder over the window; LIGAR: "
             "the whole clip, its sliding-window form).\n",
             markdown_table(rows(["tsm_dense", "vtn_rgb", "ligar", "tsm_dense_scratch"], "1 clip"),
                            ["experiment", "top1", "mean_class_acc", "rank_mAP", "GMACs/frame", "params_M",
                             "train_min"]),
             "\n### VTN input modalities and distillation (after Table 1 of \"Lightweight Network Architecture for Real-Time Action Recognition\")\n",
             markdown_table(rows(["vtn_rgb", "vtn_rgbdiff", "vtn_stacked", "vtn_stacked_kd"], "1 clip"), cols)]
    if "vtn_stacked_kd" in cache and "teacher_top1" in cache["vtn_stacked_kd"]:
        parts.append(f"\nTeacher (mean of the RGB and RGB-difference models' logits): top-1 "
                     f"{cache['vtn_stacked_kd']['teacher_top1']:.3f}.\n")
    acs = []
    for n, init_label, dataset, seed, desc, _ in acs_runs():
        if n in cache:
            r, params = cache[n], UNTRIMMED_SETS[dataset]
            acs.append({"videos": "{}-{} frames, gesture {:.0%}-{:.0%}".format(*params["length"],
                                                                             *params["gesture_fraction"]),
                        "init": init_label, "sampling": desc, "seed": seed,
                        **{f"{t} {m}": v[k] for t, v in r["tests"].items() for m, k in (("top1", "top1"),
                                                                                       ("mAP", "rank_map"))},
                        "acs_ready_fraction": r["last_epoch"].get("acs_ready_fraction", ""),
                        "gesture windows, ACS vs uniform": (f"{r['acs_gesture_share']:.2f} vs "
                                                            f"{r['uniform_gesture_share']:.2f}"
                                                            if "acs_gesture_share" in r else ""),
                        "train_min": r["train_minutes"]})
    if acs:
        parts += ["\n### Adaptive Clip Selection on untrimmed videos (after Table 3 of \"LIGAR: Lightweight General-purpose Action Recognition\")\n\n15 classes, "
                  f"{args.untrimmed_per_class} videos per class in which the labelled gesture fills a minority of "
                  f"the frames (the rest idle motion: induced label noise), {UNTRIMMED['subjects']} subjects each "
                  f"performing every class in a scene of their own; TSM, dense 8×2, {args.acs_epochs} epochs, "
                  "initialised from ImageNet or from the bundled gesture model (causal TSM trained on other "
                  "synthetic gesture videos; fresh classifier, `--model.init_head=false`: a backbone that already "
                  "knows the motions, as the paper's models start from Kinetics). ACS collects from epoch 2 and "
                  "samples a video by Eq. 1 once 70% of its frames have scores. `mAP` = rank mAP; "
                  "`acs_ready_fraction` = share of training videos sampled by ACS at the end; `gesture windows` = "
                  "share of training windows that overlap the gesture (by half the window or half the gesture) "
                  "under Eq. 1 with the final scores vs under uniform sampling, over the ready videos. Two earlier "
                  "runs gave every video a scene of its own and showed no gain either: 48-72 frames, gesture "
                  "20-35%, 9 epochs (commit fe5849a): uniform vs ACS 0.304 vs 0.259 on whole videos, 0.341 vs "
                  "0.341 on segments; 80-112 frames, gesture 12-20%, 40 per class, 20 epochs (commit 29b7cc4): "
                  "0.056 vs 0.067 and 0.033 vs 0.133, both near chance (0.067) because the models fitted each "
                  "training video's scene (train top-1 0.70 / 0.73), so every window of a training video was "
                  "predicted right and ACS had nothing to select (gesture windows 0.20 vs 0.21). Shared-scene "
                  "subjects remove that shortcut.\n",
                  markdown_table(acs, list(acs[0]))]
        tests = [k for k in acs[0] if k.endswith((" top1", " mAP"))]
        pairs: dict = {}  # (videos, init) -> seed -> sampling -> row
        for r in acs:
            pairs.setdefault((r["videos"], r["init"]), {}).setdefault(r["seed"], {})[r["sampling"]] = r
        summary = []
        for (videos, init), by_seed in pairs.items():
            done = [p for p in by_seed.values() if len(p) == 2]
            if done:
                summary.append({"videos": videos, "init": init, "seeds": len(done)})
                for t in tests:
                    u, a = (np.array([p[desc][t] for p in done]) for _, desc, _ in ACS_ARMS)
                    summary[-1][t] = (f"{u.mean():.3f} → {a.mean():.3f} ({a.mean() - u.mean():+.3f}; ACS higher in "
                                      f"{int((a > u).sum())}/{len(done)})")
        parts += ["\nPaired by seed, mean uniform → mean ACS (difference; seeds where ACS scores higher):\n",
                  markdown_table(summary, ["videos", "init", "seeds", *tests])]
    sampling = []
    for n in ("tsm_segment", "tsm_dense"):
        if n in cache:
            r = cache[n]
            sampling.append({"sampling": r["experiment"], **{f"{t} top1": v["top1"] for t, v in r["tests"].items()}})
    if sampling:
        parts += ["\n### Sparse vs continuous sampling, 1 vs 10 test clips (after Table 1 of \"LIGAR: Lightweight General-purpose Action Recognition\")\n",
                  markdown_table(sampling, list(sampling[0]))]
    reg = rows(["reg_base", "reg_rsc", "reg_views", "reg_crossnorm", "reg_mixup", "reg_agc"], "1 clip")
    if reg:
        parts += ["\n### LIGAR regularisers, one at a time\n\nTSM on ImageNet-initialised EfficientNet-Lite0 (LIGAR "
                  "from scratch does not learn enough in this budget to rank regularisers), dense 8×2, LIGAR's staged "
                  f"schedule: 1 head-only epoch with the backbone and its BatchNorm frozen, 1 cosine warm-up epoch "
                  f"from 1%, then the α-cosine (α 1.5) to 1% ({epochs} epochs in all).\n", markdown_table(reg, cols)]
    scratch = rows(["ligar_scratch_long", "tsm_scratch_long"], "1 clip")
    if scratch:
        parts += [f"\n### LIGAR vs TSM, both from scratch, {args.scratch_epochs} epochs\n\nNo ImageNet-pretrained X3D "
                  "weights exist offline, so LIGAR (metric head, AM-Softmax) is compared with TSM at the same random "
                  "init, same data and input (dense 8×2, 96²), trained longer than the runs above.\n",
                  markdown_table(scratch, ["experiment", "top1", "mean_class_acc", "rank_mAP", "GMACs/frame",
                                           "params_M", "train_min"])]
    write_section("ligar_vtn", "\n".join(parts),
                  command=f"python bench/ligar_vtn.py --epochs {epochs} --per-class {per_class} "
                          f"--untrimmed-per-class {args.untrimmed_per_class} --acs-epochs {args.acs_epochs} "
                          f"--scratch-epochs {args.scratch_epochs}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", default=",".join(GROUPS), help="comma-separated groups to run")
    parser.add_argument("--only", default="", help="comma-separated experiment names (overrides --groups)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=50, help="trimmed videos per class")
    parser.add_argument("--untrimmed-per-class", type=int, default=60, help="untrimmed videos per class (ACS)")
    parser.add_argument("--acs-epochs", type=int, default=16, help="epochs of the ACS pair (scores need coverage)")
    parser.add_argument("--scratch-epochs", type=int, default=24, help="epochs of the from-scratch LIGAR/TSM pair")
    parser.add_argument("--threads", type=int, default=2, help="torch threads per run")
    parser.add_argument("--data", default="data")
    parser.add_argument("--out", default="runs/bench_ligar_vtn")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    paths = prepare_data(Path(args.data), args.per_class, args.untrimmed_per_class)
    print(f"data ready in {time.perf_counter() - t0:.0f}s", flush=True)
    out = Path(args.out)
    cache = ResultCache(out / "results.json")
    groups = args.groups.split(",")
    names = args.only.split(",") if args.only else [n for n, e in EXPERIMENTS.items() if set(e[0]) & set(groups)]
    for name in names:
        if name not in cache:
            run(name, paths, args, out, cache)
            write_report(cache, args)  # after each run: partial results land too
    write_report(cache, args)  # also with nothing left to run (e.g. --groups none after a change of wording)


if __name__ == "__main__":
    main()
