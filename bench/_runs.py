"""Shared by the bench scripts: train one recipe, test it under one or more protocols, keep results on disk.

Results are cached in a JSON file after every run, so an interrupted benchmark resumes where it stopped and
a finished one only rewrites its report.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from torch import nn

from streamact.data.loader import build_loader
from streamact.engine.config import TrainConfig
from streamact.engine.trainer import Trainer, build_dataset, evaluate
from streamact.evaluation.meters import ClassificationMeter


def test_model(model: nn.Module, cfg: TrainConfig, records, class_names, *, num_clips: int = 1,
               pretrained_cfg=None) -> ClassificationMeter:
    """Score `model` on `records` with the recipe's test pipeline (`num_clips` evenly spaced views averaged),
    normalised as `pretrained_cfg` says (default: the model's)."""
    pcfg = pretrained_cfg or model.pretrained_cfg
    dataset = build_dataset(cfg.data, records, train=False, mean=pcfg.mean, std=pcfg.std, num_clips=num_clips)
    meter, _ = evaluate(model, build_loader(dataset, 8, shuffle=False, num_workers=cfg.data.num_workers),
                        len(class_names), class_names=class_names, amp=cfg.amp)
    return meter


def train_and_test(cfg: TrainConfig, tests: dict[str, tuple[list, int]],
                   class_names) -> tuple[dict, Trainer, dict[str, ClassificationMeter]]:
    """Train `cfg`, then run every test `name -> (records, num_clips)`.

    Returns:
        {"train_minutes", "train_clips_per_s", "last_epoch", "tests": {name: metrics}}, the trainer, and the filled
        meters by test name (per-sample scores for further analysis).
    """
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    last = trainer.fit(overwrite=True)  # a run cut short by an interrupted benchmark starts over
    minutes = (time.perf_counter() - t0) / 60
    epochs = [json.loads(line) for line in (Path(cfg.out_dir) / "metrics.jsonl").read_text().splitlines()]
    clips_per_s = float(np.mean([e["train_clips_per_s"] for e in epochs if e.get("event") == "epoch"]))
    meters = {name: test_model(trainer.model, cfg, records, class_names, num_clips=num_clips)
              for name, (records, num_clips) in tests.items()}
    tests_out = {}
    for name, meter in meters.items():
        m = meter.compute()
        tests_out[name] = {k: m[k] for k in ("top1", "top5", "mean_class_accuracy", "rank_map", "num_samples")}
    result = {"train_minutes": minutes, "train_clips_per_s": clips_per_s, "last_epoch": last, "tests": tests_out}
    return result, trainer, meters


class ResultCache:
    """A JSON file of finished runs: name -> result."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.results: dict = json.loads(self.path.read_text()) if self.path.exists() else {}

    def __contains__(self, name: str) -> bool:
        return name in self.results

    def __getitem__(self, name: str) -> dict:
        return self.results[name]

    def put(self, name: str, result: dict) -> None:
        """Add a run and rewrite the file, keeping runs that other processes added to it meanwhile."""
        if self.path.exists():
            self.results = {**json.loads(self.path.read_text()), **self.results}
        self.results[name] = result
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results, indent=2, default=float))
        tmp.replace(self.path)
