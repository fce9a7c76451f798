"""bf16 autocast vs fp32: training throughput (clips/s) side by side in one run, on in-memory batches.

Data loading is excluded on purpose (it is identical for both); the two precisions alternate in rounds so that
any background load hits both alike. Accuracy of the two precisions comes from bench/gestures_recognition.py.

    python bench/train_throughput.py [--model tsm_efficientnet_lite0] [--size 112] [--batch 16] [--rounds 3]
"""
from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from streamact import create_model
from streamact.device import cpu_has_bf16

from streamact.benchmark.common import markdown_table, write_section


def clips_per_second(model, opt, clips, labels, *, amp: bool, steps: int) -> float:
    model.train()
    t0 = time.perf_counter()
    for _ in range(steps):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=amp):
            logits = model(clips)
        loss = F.cross_entropy(logits.float(), labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * len(labels) / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="tsm_efficientnet_lite0")
    parser.add_argument("--size", type=int, default=112)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    torch.manual_seed(0)
    model = create_model(args.model, num_classes=15, num_segments=args.frames, img_size=args.size)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    clips = torch.randn(args.batch, 3, args.frames, args.size, args.size)
    labels = torch.randint(0, 15, (args.batch,))
    speeds = {False: [], True: []}
    for amp in (False, True):  # warm-up (allocator, oneDNN kernels) not measured
        clips_per_second(model, opt, clips, labels, amp=amp, steps=2)
    for _ in range(args.rounds):
        for amp in (False, True):
            speeds[amp].append(clips_per_second(model, opt, clips, labels, amp=amp, steps=args.steps))
    fp32, bf16 = max(speeds[False]), max(speeds[True])
    rows = [{"precision": "fp32", "train clips/s (best round)": fp32, "ratio": 1.0},
            {"precision": "bf16 autocast", "train clips/s (best round)": bf16, "ratio": bf16 / fp32}]
    print(rows, speeds)
    # A CPU without bf16 instructions (AVX-512 BF16, AMX) emulates bf16: its numbers get a section of their own.
    native = cpu_has_bf16()
    title = "" if native else " on a CPU without bf16 instructions"
    body = (f"## Training throughput: bf16 autocast vs fp32{title}\n\n`{args.model}`, batch {args.batch} × "
            f"{args.frames} frames × {args.size}², SGD step incl. backward, in-memory batches, best of "
            f"{args.rounds} alternating rounds of {args.steps} steps, 2 threads.\n\n"
            + markdown_table(rows, list(rows[0])))
    write_section("throughput" if native else "throughput_emulated_bf16", body)


if __name__ == "__main__":
    main()
