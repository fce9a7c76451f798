"""Where training on stream windows spends its time: decoding the windows, or the training step.

    python bench/stream_training_speed.py [--config configs/stream_gestures_tsm_effl0_8f.yaml] [--batches 3]

For windows labelled at their last frame only, and for windows labelled at each of their last
`data.stream_outputs` frames (the config's), it times per batch, in this process (no DataLoader workers, so
nothing overlaps): loading the windows by decoding them from the mp4 streams, loading them from the frame cache
(`data.frame_cache`, built first and not timed), and the training step (forward, backward, AdamW step, bf16
autocast as the config says). Training loads the next batch in a worker process while the current one trains, so
it runs at the slower of the two: windows/s = batch / max(load, step), and every window teaches as many frames as
it has labels.
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from streamact.benchmark.common import markdown_table, write_section
from streamact.data.datasets import build_records
from streamact.data.loader import collate_skip_bad
from streamact.engine.build import build_model_from_config
from streamact.engine.config import load_config
from streamact.engine.trainer import TrainStep, build_dataset


def seconds_per_batch(fn, batches: int) -> float:
    fn(0)  # warm-up: file system cache, allocator, oneDNN kernels
    t0 = time.perf_counter()
    for i in range(1, batches + 1):
        fn(i)
    return (time.perf_counter() - t0) / batches


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="configs/stream_gestures_tsm_effl0_8f.yaml")
    parser.add_argument("--batches", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads of the training step")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if not cfg.data.frame_cache:
        parser.error(f"{args.config} sets no data.frame_cache folder to measure")
    records, class_names = build_records(cfg.data.format, root=cfg.data.root, split=cfg.data.train_split)
    model = build_model_from_config(cfg, class_names).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.optim.lr)
    step = TrainStep(model, cfg, steps_per_epoch=1)  # the labels' shape says how many frames each window labels
    batch = cfg.data.batch_size
    rows = []
    for outputs in dict.fromkeys((1, cfg.data.stream_outputs)):
        loaded = {}
        for name, cache in (("decoded from the mp4", ""), ("frame cache", cfg.data.frame_cache)):
            data = dataclasses.replace(cfg.data, frame_cache=cache, stream_outputs=outputs)
            dataset = build_dataset(data, records, train=True, mean=model.pretrained_cfg.mean,
                                    std=model.pretrained_cfg.std, seed=cfg.seed, stream_context=model.stream_context)

            def load(i: int, dataset=dataset) -> None:
                loaded["batch"] = collate_skip_bad([dataset[(i * batch + j) % len(dataset)] for j in range(batch)])

            loaded[name] = seconds_per_batch(load, args.batches)

        def train(i: int) -> None:
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.amp):
                loss, _, _ = step(loaded["batch"].clips, loaded["batch"].labels, i)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        step_s = seconds_per_batch(train, args.batches)
        frames = loaded["batch"].clips.shape[2]  # (B, C, T, H, W)
        for name in ("decoded from the mp4", "frame cache"):
            windows_s = batch / max(loaded[name], step_s)
            rows.append({"labelled frames per window": outputs, "frames per window": frames, "windows read": name,
                         "load s/batch": loaded[name], "train step s/batch": step_s, "windows/s": windows_s,
                         "labelled frames/s": windows_s * outputs,
                         "bound by": "loading" if loaded[name] > step_s else "the training step"})
            print(rows[-1])
    body = ("## Training on streams: decoding once, labelling every frame of a window\n\n"
            f"`{cfg.model.name}` ({cfg.data.clip_len} averaged frames + {model.stream_context} frames of past the "
            f"shifted blocks reach), batches of {batch} windows × {cfg.data.input_size}² from `{cfg.data.root}` "
            f"(`{args.config}`), mean of {args.batches} batches after a warm-up one, in one process, training step "
            f"with {args.threads} threads on a CPU shared with other jobs. A window of a long mp4 is decoded from the "
            "keyframe before it; the frame cache decodes every stream once and copies windows out of a memory map. "
            "Training loads the next batch in a worker process while the current one trains, so it runs at the "
            "slower of the two: windows/s = batch / max(load, step).\n\n" + markdown_table(rows, list(rows[0])))
    write_section("stream_training_speed", body)


if __name__ == "__main__":
    main()
