"""``--batch LIST_OR_DIR --out DIR [--workers N] [--ray [ADDRESS]]``: `recognize` and `detect` over a whole corpus.

Shared by both commands (`streamact.inference.corpus` does the work). Exit codes: 0 every video done, 1 some
videos ended in an error row (summary.csv says why), 2 bad arguments, an output folder that cannot be written, a
model that cannot be loaded or a Ray cluster that does not answer, 130 interrupted (the rows of the videos done so
far are in summary.csv; a rerun continues).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from streamact.errors import UserError

__all__ = ["add_batch_options", "run_batch"]

BATCH_HELP = """
A whole corpus: --batch LIST_OR_DIR --out DIR writes DIR/<video>-<hash>.jsonl per video (with its
events or tubes beside it) and one DIR/summary.csv (a row per video: status, frames, results, error).
A missing or broken video becomes an error row; a rerun skips the videos already done. Each worker
holds one model: local processes (--workers N) or Ray actors (--ray: Ray on this machine; --ray
HOST:PORT: the cluster whose head is there).
"""


def add_batch_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("corpus (instead of SOURCE)")
    group.add_argument("--batch", metavar="LIST_OR_DIR",
                       help="label every video of a folder (recursively) or of a text file with one video per line")
    group.add_argument("--out", metavar="DIR", help="output folder of --batch: a JSONL per video and summary.csv")
    group.add_argument("--workers", type=int, default=1,
                       help="worker processes (or Ray actors), each holding one model (default 1)")
    group.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run --batch on Ray Data: HOST:PORT of a cluster's head, 'auto' for the cluster "
                            "started on this machine with `ray start`, or nothing to start Ray here")


def run_batch(args: argparse.Namespace, job, single_options: tuple[str, ...]) -> int:
    """Run `job` (a `streamact.inference.corpus.CorpusJob`) over ``args.batch``; print the result as JSON.

    Args:
        args: the command's arguments.
        job: what each worker runs.
        single_options: the command's options that only make sense for one video (refused with --batch).

    Raises:
        UserError: a source given too, a missing --out, a single-video option, or --workers below 1.
    """
    from streamact.inference.corpus import corpus_videos, label_corpus

    if args.source is not None:
        raise UserError(f"give either a SOURCE or --batch LIST_OR_DIR, not both (got {args.source!r} and --batch)")
    if not args.out:
        raise UserError("--batch needs --out DIR, the folder for the per-video results and summary.csv")
    if args.workers < 1:
        raise UserError(f"--workers must be at least 1, got {args.workers}")
    given = [o for o in single_options if getattr(args, o) not in (None, False)]
    if given:
        raise UserError(f"--{given[0].replace('_', '-')} is for one video; with --batch every video's results go "
                        "to --out")
    videos = corpus_videos(args.batch)
    # Workers share the cores: one inference thread each, unless a worker has more than one core to itself.
    job.num_threads = max(1, (os.cpu_count() or 1) // args.workers) if args.ray is None else 1
    result = label_corpus(videos, job, args.out, workers=args.workers, ray_address=args.ray,
                          progress=not args.no_progress)
    print(f"{job.task}: {result['ok']} videos done, {result['errors']} errors, {result['skipped']} done before | "
          f"{result['frames']} frames, {result['videos_per_s'] or 0:.2f} videos/s, {result['frames_per_s'] or 0:.1f} "
          f"frames/s | {result['summary']}", file=sys.stderr)
    print(json.dumps(result))
    return 1 if result["errors"] else 0
