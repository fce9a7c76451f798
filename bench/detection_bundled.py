"""The bundled detector: ship the weights of a detection run on the synthetic action set and score what ships.

    python bench/detection_bundled.py --source runs/detection_flip2/last.pt --data data/detection \\
        --val data/detection_val

(the training commands that make the run are in docs/MODEL_CARD_detection.md)

1. loads the run's weights into `amma_efficientnet_lite0_actions` (the bundled architecture and classes; a run of
   another architecture or other classes is refused);
2. writes them to src/streamact/weights/ as float16 safetensors (half the size of float32; the model computes in
   float32 after loading);
3. loads them back with ``create_model(NAME, pretrained=True)``, exactly what users get, streams it over the test
   split as `streamact eval` does, and writes frame-mAP / video-mAP to the section "detection_bundled" of
   docs/RESULTS.md and the detection report to --out;
4. with --val (a detection set of another seed, never trained on: ``streamact data synth detection --out
   data/detection_val --num-videos 60 --seed 1``), streams it over all of those videos too and reports video-mAP
   for each `link_score` of the tube linker, the evidence for its default (`LINK_SCORE`).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import save_file

from streamact import create_model
from streamact.benchmark.common import markdown_table, write_section
from streamact.data.datasets.detection import load_detection_annotations
from streamact.engine.checkpoint import load_checkpoint
from streamact.engine.tasks import detect_video, evaluate_detector, find_annotation_file, split_videos
from streamact.evaluation.detection import video_ap
from streamact.evaluation.detection_report import percent, write_detection_report
from streamact.inference.runtimes import TorchRuntime
from streamact.inference.tubes import LINK_SCORE, link_tubes
from streamact.models._pretrained import WEIGHTS_DIR

NAME = "amma_efficientnet_lite0_actions"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="runs/detection_bundled/last.pt")
    parser.add_argument("--data", default="data/detection")
    parser.add_argument("--out", default="runs/detection_bundled/eval_bundled")
    parser.add_argument("--val", help="detection set of another seed for the linker's link_score (optional)")
    args = parser.parse_args()

    ckpt = load_checkpoint(args.source)
    model = create_model(NAME)
    if list(ckpt["class_names"]) != list(model.pretrained_cfg.label_names):
        raise SystemExit(f"{args.source} was not trained on the synthetic action classes in their order")
    model.load_state_dict(ckpt["model"])  # strict: the bundled architecture, or a clear error
    weights = WEIGHTS_DIR / model.pretrained_cfg.weights
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in model.state_dict().items()},
              str(weights), metadata={"source": args.source, "recipe": "bench/detection_bundled.py"})
    weights.chmod(0o644)

    shipped = create_model(NAME, pretrained=True).eval()
    ann = load_detection_annotations(find_annotation_file(args.data), on_error="skip")
    videos = split_videos(ann, "test")
    result = evaluate_detector(shipped, ann, videos, progress=True)
    out = Path(args.out)
    draw = [(v, int(tube[len(tube) // 2, 0])) for v in videos[:6] for _, tube in list(ann.tubes(v))[:1]]
    write_detection_report(out, result, ann, draw)
    summary = result.summary()
    (out / "metrics.json").write_text(json.dumps(summary, indent=2))

    headline = {"frame-mAP@0.5": summary["frame_map@0.5"], **{f"video-mAP@{t}": summary[f"video_map@{t}"]
                                                              for t in ("0.2", "0.5", "0.75")},
                **{f"{k} (frame errors)": v for k, v in summary["frame_errors"].items()}}
    per_class = [{"class": name, "frame-AP@0.5": percent(row["frame_ap@0.5"]),
                  "video-AP@0.2": percent(row["video_ap@0.2"]), "video-AP@0.5": percent(row["video_ap@0.5"]),
                  "true tubes": row["gt_tubes"]}
                 for name, row in summary["per_class"].items()]
    body = (f"## The bundled detector `{NAME}`\n\n"
            f"`amma_efficientnet_lite0` (MM_ConvDiff, 3 fusions, ImageNet backbone), "
            f"{shipped.pretrained_cfg.input_size[-1]}², K = {shipped.num_clips} clips of t = {shipped.clip_len} "
            f"frames, trained on synthetic action sets by the training commands of docs/MODEL_CARD_detection.md "
            f"(the last one on `{ckpt['config']['data']['root']}`); shipped as {weights.stat().st_size / 1e6:.1f} "
            f"MB float16 safetensors. Scored as shipped (`create_model('{NAME}', pretrained=True)`, float32 "
            f"compute), streamed over the {len(videos)} test videos of `{args.data}` (never trained on) as "
            f"`streamact eval` does (percent):\n\n"
            + markdown_table([{k: percent(v) for k, v in headline.items()}], list(headline))
            + "\n\n" + markdown_table(per_class, ["class", "frame-AP@0.5", "video-AP@0.2", "video-AP@0.5",
                                                  "true tubes"]))
    if args.val:
        body += "\n\n" + link_score_table(shipped, args.val)
    write_section("detection_bundled", body, command=f"python bench/detection_bundled.py --source {args.source} "
                  f"--data {args.data}" + (f" --val {args.val}" if args.val else ""))
    print(json.dumps({k: percent(v) for k, v in headline.items()}, indent=1))


LINK_SCORES = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4)


def link_score_table(model, root: str) -> str:
    """video-mAP over every video of `root` (all splits) for each of `LINK_SCORES`, as markdown."""
    ann = load_detection_annotations(find_annotation_file(root), on_error="skip")
    videos = list(dict.fromkeys(split_videos(ann, "train") + split_videos(ann, "test")))
    runtime = TorchRuntime(model)
    steps = {video: detect_video(runtime, ann, video) for video in videos}
    rows = []
    for score in LINK_SCORES:
        result = video_ap({v: link_tubes(steps[v], ann.nframes[v], link_score=score) for v in videos}, ann, videos)
        rows.append({"link_score": f"{score:g}" + (" (default)" if score == LINK_SCORE else ""),
                     **{f"video-mAP@{t:g}": percent(result.map(t)) for t in (0.2, 0.5, 0.75)},
                     "video-mAP@0.5:0.95": percent(result.map_range())})
    return (f"The tube linker's `link_score` (tubelets scoring below it neither start nor extend a tube), on the "
            f"{len(videos)} videos of `{root}`, a set of another seed that no model was trained on (percent):\n\n"
            + markdown_table(rows, list(rows[0])))


if __name__ == "__main__":
    torch.set_num_threads(1)
    main()
