"""Benchmarks: one module per task, each comparing its contenders side by side in one run on one machine.

A task module provides ``SECTION`` (its section of docs/RESULTS.md), ``run(*, quick, data_root) -> dict`` (a
JSON-able result; progress on stderr) and ``to_markdown(result) -> str``, and may provide
``write_artifacts(result, out_dir) -> list[Path]`` (plots the report links to, written next to it). `streamact bench --task NAME` runs one and
writes its report with the machine description (`streamact.benchmark.common`).
"""
from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["TASKS", "load_task"]

# Task name -> module; modules import torch and the runtimes, so they load only when run.
TASKS = {
    "streaming": "streamact.benchmark.streaming",
    "serve": "streamact.benchmark.serve",
    "lean": "streamact.benchmark.lean",
    "detection": "streamact.benchmark.detection",
    "cluster": "streamact.benchmark.cluster",
}


def load_task(name: str) -> ModuleType:
    """The module of benchmark task `name` (a key of `TASKS`)."""
    return importlib.import_module(TASKS[name])
