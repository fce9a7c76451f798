"""`streamact bench [--task streaming] [--quick] [--format json] [--out DIR] [--update-docs]`.

Runs one benchmark task and writes its report (JSON + Markdown, with the machine description) to --out; with
--update-docs also into the repository's docs/RESULTS.md. Progress goes to stderr; stdout carries only the result.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from datetime import datetime
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.benchmark import TASKS

    p = subparsers.add_parser(
        name, help="benchmark speed side by side in one run (report in runs/bench/)",
        description=__doc__ + "\nTasks:\n  streaming  per-frame cost of streaming vs recomputing clips, runtimes "
                              "(PyTorch, ONNX Runtime,\n             OpenVINO), end-to-end frames/s, memory over a "
                              "long stream"
                              "\n  serve      `streamact serve` under N concurrent 15 frames/s streams: frames/s, drops, "
                              "latency,\n             memory over a connect / disconnect soak"
                              "\n  lean       running without PyTorch: cold start and peak memory of `recognize`, "
                              "fp32 / bf16 / int8\n             speed and accuracy"
                              "\n  detection  AMMA online detection: cached step vs recomputing K clips vs a MOC-style "
                              "baseline,\n             runtimes per backbone at 288², end-to-end frames/s, linking "
                              "vs K and actors (PNG),\n             memory over a long stream"
                              "\n  cluster    beyond one machine: a corpus on the process pool vs Ray Data (1 and 2 "
                              "workers),\n             N streams against `serve` alone vs 1 and 2 Ray Serve replicas",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=tuple(TASKS), default="streaming", help="what to benchmark")
    p.add_argument("--quick", action="store_true", help="fewer repeats and frames, a few minutes (default: full run)")
    p.add_argument("--format", choices=("table", "json"), default="table",
                   help="what to print on stdout: the Markdown report or the JSON result")
    p.add_argument("--out", type=Path,
                   help="folder for <task>.json and <task>.md (default: runs/bench/<task>-<date>-<time>)")
    p.add_argument("--update-docs", action="store_true",
                   help="also replace the task's section of docs/RESULTS.md and write docs/bench_<task>.json in the "
                        "streamact source checkout (default: leave the docs alone)")
    p.add_argument("--data", type=Path, default=Path("data/bench_gestures"),
                   help="synthetic gesture set held out from training: streaming scores bf16 agreement on it, "
                        "lean calibrates int8 on it and scores accuracy (skipped if absent)")
    return p


@contextlib.contextmanager
def _stdout_to_stderr():
    """Send everything written to stdout meanwhile, by Python or by native libraries, to stderr."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def main(args: argparse.Namespace) -> int:
    from streamact.benchmark import common, load_task
    from streamact.benchmark.common import machine_info, report, write_section

    task = load_task(args.task)
    command = f"streamact bench --task {args.task}{' --quick' if args.quick else ''}"
    command += f" --data {args.data}" if args.data.exists() else ""  # numbers measured on it (tasks that use it)
    with _stdout_to_stderr():
        result = {"machine": machine_info(), **task.run(quick=args.quick, data_root=args.data)}
    body = task.to_markdown(result)
    out = args.out or Path("runs/bench") / f"{args.task}-{datetime.now():%Y%m%d-%H%M%S}"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.task}.json").write_text(json.dumps(result, indent=2))
    (out / f"{args.task}.md").write_text(report(body, command, result["machine"]))
    written = [out / f"{args.task}.json", out / f"{args.task}.md"]
    artifacts = getattr(task, "write_artifacts", None)  # plots the report links to, beside it
    if artifacts is not None:
        written += artifacts(result, out)
    if args.update_docs:
        written.append(write_section(task.SECTION, body, command=command, machine=result["machine"]))
        if artifacts is not None:
            written += artifacts(result, common.RESULTS.parent)
        docs_json = common.RESULTS.parent / f"bench_{args.task}.json"
        docs_json.write_text(json.dumps(result, indent=2))
        written.append(docs_json)
    print(f"wrote {', '.join(map(str, written))}", file=sys.stderr)
    print(json.dumps(result, indent=2) if args.format == "json" else report(body, command, result["machine"]))
    return 0
