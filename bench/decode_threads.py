"""Decoding on one thread (what `streamact.io.video` does) vs FFmpeg's default thread pools, side by side.

Dataset readers decode on one thread with one colour-conversion thread: FFmpeg's default (a pool per CPU for the
decoder and for swscale) leaves threads alive in the process that decoded, and DataLoader workers forked from it
then deadlock. This measures what that choice costs or saves: whole synthetic gesture clips (H.264, as
`streamact data synth gestures` writes them) decoded to RGB at a few frame sizes, the two settings alternating in
rounds so background load hits both alike.

    python bench/decode_threads.py [--sizes 64 160 320] [--per-class 3] [--rounds 3]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import av

from streamact.data.synthetic import generate_gestures
from streamact.benchmark.common import markdown_table, write_section

SETTINGS = {"one thread (streamact)": 1, "FFmpeg default (threads per CPU)": 0}


def decode_all(paths: list[Path], threads: int) -> float:
    """Decode every frame of every clip to RGB; returns frames per second."""
    frames, t0 = 0, time.perf_counter()
    for path in paths:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = threads
            for frame in container.decode(stream):
                frame.to_ndarray(format="rgb24", threads=threads)
                frames += 1
    return frames / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 160, 320])
    parser.add_argument("--per-class", type=int, default=3, help="clips per gesture class and frame size")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print only; do not update docs/RESULTS.md")
    args = parser.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in args.sizes:
            out = Path(tmp) / str(size)
            generate_gestures(out, per_class=args.per_class, seed=0, size=size, progress=False)
            paths = sorted((out / "videos").glob("*.mp4"))
            best = {name: 0.0 for name in SETTINGS}
            for _ in range(args.rounds):
                for name, threads in SETTINGS.items():
                    best[name] = max(best[name], decode_all(paths, threads))
            one, default = (best[name] for name in SETTINGS)
            for name in SETTINGS:
                rows.append({"frame size": f"{size}x{size}", "setting": name, "frames/s": round(best[name]),
                             "vs default": f"{best[name] / default:.2f}x"})
            print(f"{size}px: one thread {one:.0f} frames/s, default {default:.0f} frames/s ({one / default:.2f}x)")
    table = markdown_table(rows, ["frame size", "setting", "frames/s", "vs default"])
    print(table)
    if not args.no_write:
        body = ("## Video decoding: one thread per reader\n\n"
                "Whole synthetic gesture clips (H.264) decoded to RGB in one process, best of "
                f"{args.rounds} alternating rounds. Training decodes in DataLoader workers, one reader each, so the "
                "cores are busy in parallel anyway; FFmpeg's default pools, besides costing thread start-ups on "
                "these small frames, outlive a reader left mid-clip and made DataLoader workers forked after it "
                "hang. On a machine shared with other jobs the ratios vary a lot from run to run; read the "
                "direction, not the factor.\n\n" + table)
        write_section("decode_threads", body)


if __name__ == "__main__":
    main()
