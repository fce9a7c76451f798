"""Corpus inference on Ray Data: the videos as a dataset, labelled by actors that each hold one compiled model.

    videos ──► ray.data.from_items (one block per video) ──► map_batches(_Labeler actors, one video a call,
        one CPU each, spread over the cluster's machines) ──► `VideoLabeler` (the path the local pool runs too)
        ──► rows stream back to the driver as videos finish ──► on_row (summary.csv, progress bar)

Ray Data restarts an actor that dies and retries its call; `VideoLabeler` runs a video a second time, but answers
the third call with an error row (the video killed two workers).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from streamact.cluster import connect
from streamact.inference.corpus import CorpusJob, CorpusVideo, RowCallback, VideoLabeler

__all__ = ["run_ray"]


class _Labeler:
    """A Ray Data actor: the model, loaded once, and one video per call (rows travel as JSON, so their mixed
    types and missing values need no schema)."""

    def __init__(self, job: CorpusJob, out_dir: str) -> None:
        self.labeler = VideoLabeler(job, out_dir)

    def __call__(self, batch: dict) -> dict:
        rows = [self.labeler(CorpusVideo(str(s), str(n))) for s, n in zip(batch["source"], batch["name"])]
        return {"name": list(batch["name"]), "row": [json.dumps(r) for r in rows]}


def run_ray(videos: list[CorpusVideo], job: CorpusJob, out_dir: Path, *, workers: int, address: str,
            on_row: RowCallback) -> None:
    """Label `videos` on `workers` Ray actors of the cluster at `address`; calls ``on_row(video, row)`` as each
    finishes.

    Raises:
        UserError: the cluster does not answer (`streamact.cluster.connect`).
    """
    ray = connect(address, num_cpus=workers)
    from ray.data import ActorPoolStrategy, DataContext

    logging.getLogger("ray.data").setLevel(logging.ERROR)  # its per-run notes would interleave with our bar
    DataContext.get_current().enable_progress_bars = False  # the caller shows one bar for the whole corpus
    by_name = {v.name: v for v in videos}
    dataset = ray.data.from_items([{"source": v.source, "name": v.name} for v in videos],
                                  override_num_blocks=len(videos))
    labelled = dataset.map_batches(_Labeler, fn_constructor_args=(job, str(out_dir)), batch_size=1,
                                   compute=ActorPoolStrategy(size=min(workers, len(videos))), num_cpus=1)
    for item in labelled.iter_rows():
        on_row(by_name[item["name"]], json.loads(item["row"]))
