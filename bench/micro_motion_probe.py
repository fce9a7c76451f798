"""Does one clip's micro-motion hold the direction of a movement? A classification probe on the true boxes.

    streamact data synth detection --out data/detection_seed2 --num-videos 2400 --seed 2
    streamact data synth detection --out data/detection --num-videos 400
    python bench/micro_motion_probe.py --train data/detection_seed2 --test data/detection

The detectors with and without micro-motion tell the direction-reversed classes (the pickle's ``motion_pairs``)
apart equally badly. This separates the representation from the detector: no boxes to find, no heatmap, just the
question of whether a small CNN can name the class of one clip from a given input.

From every tube of a motion class, clips of t = 4 consecutive frames are cut out around the figure (one square
crop, centred on the box of the clip's last frame, for all 4 frames, so the motion is kept) and resized to S x S.
A small CNN (4 stride-2 convolutions, global pooling) learns the class from one of these inputs:

    last          the clip's last frame alone: what the appearance path of a one-clip AMMA sees
    mm_diff       last frame + MM_Diff (3 maps: L2 distance of the pooled RGB of each earlier frame to the last)
    mm_convdiff   last frame + MM_ConvDiff (the same over a learned 5x5 embedding, trained with the probe)
    signed        last frame + the 3 signed RGB differences (earlier frame - last frame): 12 channels
    signed_grey   the same averaged over RGB: 6 channels
    signed_pooled the signed RGB differences of the frames max-pooled to half size as MM_Diff pools them, upsampled
    signed_pooled_grey  the same averaged over RGB: MM_Diff with the sign kept in place of the distance
    frames        all 4 frames, 12 channels: whether the clip holds the direction at all

and, in place of the small CNN, the detector's own clip embedding (`AMMA.forward_clip_features` of
``amma_efficientnet_lite0`` with one clip: ImageNet EfficientNet-Lite0, 3 lateral fusions, the neck), pooled,
trained at the detector's learning rate (or --detector-lr), so the architecture is asked the probe's question
without the detector's loss:

    amma_rgb      appearance path only (motion none)
    amma_diff     with MM_Diff
    amma_convdiff with MM_ConvDiff
    amma_diff_input  with MM_Diff entering beside the RGB at the first convolution (motion_entry "input", our
                  variant) instead of through the paper's copied stages
    amma_signed_input  with the signed RGB differences (`motion` "signed", our variant) entering there

Training flips the crops left-right half of the time and swaps the labels of a horizontal pair (a mirrored wave to
the right is a wave to the left), as the detector's training does; with --reverse it also plays half the clips
backwards as the other class of their pair (the synthetic pairs are each other's reverse), so that the same actor and
background come with both labels and only the order of the frames tells them apart. Reported: accuracy within each
pair on the test split (which of the two classes, chance 50%), from the same crops, seed and schedule for every
input, and on 2000 of the probe's own training clips (how well it fits what it learned from). Results are cached in
--out/results.json after every input; the report is the section "micro_motion_probe" of docs/RESULTS.md.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).parent))
from _runs import ResultCache  # noqa: E402

from streamact.benchmark.common import markdown_table, write_section  # noqa: E402
from streamact.data.datasets.detection import DetectionAnnotations, load_detection_annotations, read_frame  # noqa: E402
from streamact.engine.tasks import find_annotation_file, split_videos  # noqa: E402
from streamact.layers.micro_motion import MicroMotion  # noqa: E402
from streamact.models import create_model  # noqa: E402
from streamact.models.amma import NECK_DIM  # noqa: E402
from streamact.transforms.boxes import resize_frame  # noqa: E402
from streamact.transforms.functional import normalize  # noqa: E402

CLIP_LEN = 4
INPUTS = {  # name -> (description, channels entering the CNN)
    "last": ("last frame only", 3),
    "mm_diff": ("last frame + MM_Diff", 6),
    "mm_convdiff": ("last frame + MM_ConvDiff", 6),
    "signed": ("last frame + signed differences", 12),
    "signed_grey": ("last frame + signed differences, grey", 6),
    "signed_pooled": ("last frame + signed differences, half size", 12),
    "signed_pooled_grey": ("last frame + signed differences, half size, grey", 6),
    "frames": ("all 4 frames", 12),
    "amma_rgb": ("detector's clip embedding, RGB only", 3),
    "amma_diff": ("detector's clip embedding + MM_Diff", 6),
    "amma_convdiff": ("detector's clip embedding + MM_ConvDiff", 6),
    "amma_diff_input": ("detector's clip embedding, MM_Diff beside the RGB at the first layer", 6),
    "amma_signed_input": ("detector's clip embedding, signed differences beside the RGB at the first layer", 12),
}
AMMA_KWARGS = {  # the detector's embeddings
    "amma_rgb": {"motion": "none"}, "amma_diff": {"motion": "diff"}, "amma_convdiff": {"motion": "convdiff"},
    "amma_diff_input": {"motion": "diff", "motion_entry": "input"},
    "amma_signed_input": {"motion": "signed", "motion_entry": "input"},
}
PROBE_LR, DETECTOR_LR = 2e-3, 2.5e-4  # the small CNN's; the detector recipe's AdamW learning rate
FIT_CLIPS = 2000  # train clips scored after training: how well the probe fits what it learned from
HORIZONTAL = ("wave_right", "wave_left")  # the pair a left-right flip swaps


def crop_clips(ann: DetectionAnnotations, videos: list[str], *, size: int, stride: int,
               margin: float = 1.15) -> tuple[np.ndarray, np.ndarray]:
    """Square crops of every clip of `CLIP_LEN` frames inside a tube of a motion class.

    Returns:
        Crops (N, CLIP_LEN, size, size, 3) uint8, oldest frame first, and their label ids (N,).

    Raises:
        ValueError: no such clip in `videos`.
    """
    wanted = {label for pair in ann.motion_pairs for label in pair}
    crops, labels = [], []
    for video in videos:
        for label, tube in ann.tubes(video):
            if label not in wanted or len(tube) < CLIP_LEN:
                continue
            frames = np.stack([read_frame(ann, video, int(f)) for f in tube[:, 0]])  # (n, H, W, 3)
            h, w = frames.shape[1:3]
            for end in range(CLIP_LEN - 1, len(tube), stride):
                x1, y1, x2, y2 = tube[end, 1:5]
                side = margin * max(x2 - x1, y2 - y1)
                left, top = int(round((x1 + x2 - side) / 2)), int(round((y1 + y2 - side) / 2))
                side = int(round(side))
                ys = np.clip(np.arange(top, top + side), 0, h - 1)  # edge pixels repeat past the frame
                xs = np.clip(np.arange(left, left + side), 0, w - 1)
                clip = frames[end - CLIP_LEN + 1:end + 1][:, ys][:, :, xs]
                crops.append(np.stack([resize_frame(f, size) for f in clip]))
                labels.append(label)
    if not crops:
        raise ValueError(f"no clip of {CLIP_LEN} frames inside a tube of a motion class (the annotations' "
                         "motion_pairs) in these videos")
    return np.stack(crops), np.asarray(labels)


class Probe(nn.Module):
    """Clip (B, 3, t, S, S) in [0, 1] -> class logits, from the input `kind` (see the module docstring)."""

    def __init__(self, kind: str, num_classes: int, *, detector_lr: float = DETECTOR_LR) -> None:
        super().__init__()
        self.kind = kind
        self.lr = detector_lr if kind in AMMA_KWARGS else PROBE_LR
        self.micro_motion = MicroMotion(kind[3:]) if kind.startswith("mm_") else None
        self.detector = None
        if kind in AMMA_KWARGS:
            self.detector = create_model("amma_efficientnet_lite0", pretrained=True, num_classes=num_classes,
                                         num_clips=1, clip_len=CLIP_LEN, **AMMA_KWARGS[kind])
            self.fc = nn.Linear(NECK_DIM, num_classes)
            return
        widths = (INPUTS[kind][1], 32, 64, 96, 128)
        self.features = nn.Sequential(*[
            nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1, bias=False),
                          nn.BatchNorm2d(cout), nn.ReLU(True))
            for cin, cout in zip(widths, widths[1:])])
        self.fc = nn.Linear(widths[-1], num_classes)

    def inputs(self, clip: torch.Tensor) -> torch.Tensor:
        """The small CNN's input (B, C, S, S) for this probe's kind (not for the detector's embedding)."""
        last = clip[:, :, -1]
        if self.kind == "last":
            return last
        if self.micro_motion is not None:
            return torch.cat([last, self.micro_motion(clip)], 1)
        if self.kind.startswith("signed"):
            frames = clip.transpose(1, 2).flatten(0, 1)  # (B*t, 3, S, S)
            if "pooled" in self.kind:  # as MicroMotion pools, and back to S x S
                frames = F.interpolate(F.max_pool2d(frames, 3, stride=2, padding=1), size=frames.shape[-2:],
                                       mode="bilinear", align_corners=False)
            frames = frames.unflatten(0, (clip.shape[0], clip.shape[2]))  # (B, t, 3, S, S)
            diff = frames[:, :-1] - frames[:, -1:]  # (B, t-1, 3, S, S): earlier frame minus last
            return torch.cat([last, diff.mean(2) if self.kind.endswith("grey") else diff.flatten(1, 2)], 1)
        return clip.transpose(1, 2).flatten(1, 2)  # "frames": the RGB of each frame in turn

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if self.detector is not None:
            cfg = self.detector.pretrained_cfg
            clip = normalize(clip.transpose(0, 1), cfg.mean, cfg.std).transpose(0, 1)  # channels first, as it wants
            feats = self.detector.forward_clip_features(clip)  # (B, 256, S/8, S/8)
        else:
            feats = self.features(self.inputs(clip))  # (B, 128, S/16, S/16)
        return self.fc(feats.mean((2, 3)))


def as_batch(crops: np.ndarray) -> torch.Tensor:
    """(B, t, S, S, 3) uint8 -> (B, 3, t, S, S) float in [0, 1]."""
    return torch.from_numpy(crops).permute(0, 4, 1, 2, 3).float() / 255


def train_probe(kind: str, train: tuple[np.ndarray, np.ndarray], test: tuple[np.ndarray, np.ndarray],
                mirror: np.ndarray, *, epochs: int, reversal: np.ndarray | None = None,
                detector_lr: float = DETECTOR_LR, batch: int = 64, seed: int = 0) -> dict:
    """Train one probe (AdamW, one-cycle schedule) and score it on `test` and on `FIT_CLIPS` of its own train clips
    (as cut). Labels are indices into `mirror`'s classes (the label of a flipped clip); `reversal`, if given, is
    the label of a clip played backwards, and half the training clips are.

    Returns:
        {"test_predictions": (N,) predicted class ids as a list, "train_labels" and "train_predictions" of the
        scored train clips, "epochs", "minutes": training time}.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    crops, labels = train
    fit = np.sort(np.random.default_rng(seed + 1).permutation(len(crops))[:FIT_CLIPS])
    model = Probe(kind, len(mirror), detector_lr=detector_lr)
    steps = epochs * (len(crops) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=model.lr, weight_decay=1e-2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=model.lr, total_steps=steps, pct_start=0.1)
    t0 = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(crops))
        for i in range(len(crops) // batch):
            idx = order[i * batch:(i + 1) * batch]
            x, y = as_batch(crops[idx]), torch.from_numpy(labels[idx])
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)
            x = torch.where(flip[:, None, None, None, None], x.flip(-1), x)
            y = torch.where(flip, torch.from_numpy(mirror)[y], y)
            if reversal is not None:
                back = torch.from_numpy(rng.random(len(idx)) < 0.5)
                x = torch.where(back[:, None, None, None, None], x.flip(2), x)
                y = torch.where(back, torch.from_numpy(reversal)[y], y)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    minutes = (time.perf_counter() - t0) / 60
    model.eval()
    with torch.no_grad():
        preds = [torch.cat([model(as_batch(x[i:i + 256])).argmax(1) for i in range(0, len(x), 256)]).tolist()
                 for x in (test[0], crops[fit])]
    return {"test_predictions": preds[0], "train_labels": labels[fit].tolist(), "train_predictions": preds[1],
            "epochs": epochs, "minutes": minutes}


def pair_accuracy(preds: np.ndarray, labels: np.ndarray, pair: tuple[int, int]) -> float:
    """Share of the pair's test clips predicted as their own class rather than the other one of the pair (clips
    predicted as a third class count as wrong)."""
    mask = np.isin(labels, pair)
    return float((preds[mask] == labels[mask]).mean())


def report(cache: ResultCache, names: list[str], pairs: list[tuple[int, int]], test_labels: np.ndarray,
           counts: dict, args: argparse.Namespace) -> str:
    """Markdown of the finished probes; `pairs` index `names`, the classes of `test_labels`."""
    rows = []
    for kind, (label, channels) in INPUTS.items():
        if kind not in cache:
            continue
        result = cache[kind]
        preds = np.asarray(result["test_predictions"])
        fit = {}
        if "train_predictions" in result:  # older caches scored the test clips only
            fit_preds, fit_labels = np.asarray(result["train_predictions"]), np.asarray(result["train_labels"])
            fit = {f"{names[a]} / {names[b]}, train": f"{100 * pair_accuracy(fit_preds, fit_labels, (a, b)):.1f}"
                   for a, b in pairs}
        rows.append({"input": label, "channels": channels,
                     **{f"{names[a]} / {names[b]}": f"{100 * pair_accuracy(preds, test_labels, (a, b)):.1f}"
                        for a, b in pairs},
                     f"all {len(names)} classes": f"{100 * float((preds == test_labels).mean()):.1f}", **fit,
                     "epochs": result["epochs"], "minutes": f"{result['minutes']:.1f}"})
    scored = any("train_predictions" in cache[kind] for kind in INPUTS if kind in cache)
    fitted = [f"{names[a]} / {names[b]}, train" for a, b in pairs] if scored else []
    columns = ["input", "channels", *[f"{names[a]} / {names[b]}" for a, b in pairs], f"all {len(names)} classes",
               *fitted, "epochs", "minutes"]
    return ("## Does one clip's micro-motion hold the direction? (classification probe)\n\n"
            f"Clips of {CLIP_LEN} frames cut around the true box of a direction-reversed class: {counts['train']} "
            f"from the train split of `{args.train}`, {counts['test']} from the test split of `{args.test}` (clip "
            f"ends {args.stride} frames apart, crops {args.size}², camera shake as rendered). One small CNN per "
            "input or, in the rows \"detector's clip embedding\", the detector's own embedding of one clip ("
            f"EfficientNet-Lite0 from ImageNet, 3 fusions) pooled and trained at learning rate {args.detector_lr:g}; "
            "seed 0, flips swapping the wave pair"
            f"{', clips played backwards swapping both pairs' if args.reverse else ''}. "
            f"Accuracy (%) within each pair on the test clips (chance 50), over the {len(names)} classes (chance "
            f"{100 / len(names):.0f}) and, where scored, within each pair on {FIT_CLIPS} of the probe's own train "
            "clips (how well it fits what it learned from):\n\n"
            + markdown_table(rows, columns))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", type=Path, default=Path("data/detection_seed2"), help="dataset of the train clips")
    parser.add_argument("--test", type=Path, default=Path("data/detection"), help="dataset of the test clips")
    parser.add_argument("--inputs", nargs="+", choices=list(INPUTS), default=list(INPUTS))
    parser.add_argument("--size", type=int, default=64, help="crop size S in pixels (default 64)")
    parser.add_argument("--stride", type=int, default=3, help="frames between the ends of two clips of a tube")
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--detector-lr", type=float, default=DETECTOR_LR,
                        help=f"learning rate of the detector's embedding (default {DETECTOR_LR:g}, the recipe's)")
    parser.add_argument("--reverse", action="store_true",
                        help="play half the training clips backwards, as the other class of their pair")
    parser.add_argument("--out", type=Path, default=Path("runs/micro_motion_probe"))
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/RESULTS.md")
    args = parser.parse_args()
    train_ann = load_detection_annotations(find_annotation_file(args.train), on_error="skip")
    test_ann = load_detection_annotations(find_annotation_file(args.test), on_error="skip")
    if not train_ann.motion_pairs:
        raise SystemExit(f"{args.train}: the annotations name no motion_pairs, so there is nothing to probe")
    wanted = sorted({label for pair in train_ann.motion_pairs for label in pair})
    names = [train_ann.labels[i] for i in wanted]
    remap = np.full(len(train_ann.labels), -1)
    remap[wanted] = np.arange(len(wanted))
    print("cutting clips ...", flush=True)
    train = crop_clips(train_ann, split_videos(train_ann, "train"), size=args.size, stride=args.stride)
    test = crop_clips(test_ann, split_videos(test_ann, "test"), size=args.size, stride=args.stride)
    train, test = (train[0], remap[train[1]]), (test[0], remap[test[1]])
    mirror = np.arange(len(names))
    if all(c in names for c in HORIZONTAL):
        a, b = (names.index(c) for c in HORIZONTAL)
        mirror[a], mirror[b] = b, a
    pairs = [(int(remap[a]), int(remap[b])) for a, b in train_ann.motion_pairs]
    reversal = np.arange(len(names))
    for a, b in pairs:
        reversal[a], reversal[b] = b, a
    cache = ResultCache(args.out / "results.json")
    for kind in args.inputs:
        if kind not in cache:
            cache.put(kind, train_probe(kind, train, test, mirror, epochs=args.epochs,
                                        reversal=reversal if args.reverse else None,
                                        detector_lr=args.detector_lr))
            preds = np.asarray(cache[kind]["test_predictions"])
            print(kind, f"test accuracy {100 * float((preds == test[1]).mean()):.1f}", flush=True)
    body = report(cache, names, pairs, test[1], {"train": len(train[1]), "test": len(test[1])}, args)
    print(body)
    if not args.no_docs:
        write_section("micro_motion_probe", body)


if __name__ == "__main__":
    main()
