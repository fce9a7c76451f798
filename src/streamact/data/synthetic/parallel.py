"""Rendering many synthetic videos: the same task function over a list of tasks, in worker processes or here."""
from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Sequence
from typing import Any

from tqdm import tqdm

__all__ = ["render_all"]


def render_all(fn: Callable[[Any], tuple], tasks: Sequence, *, num_workers: int, desc: str, unit: str = "video",
               progress: bool = True, chunksize: int = 1, start_method: str | None = None) -> dict[Any, tuple]:
    """``fn(task)`` for every task, in a pool of `num_workers` processes when there are several, with a progress bar.

    Args:
        fn: a module-level function (it is pickled to the workers) returning a tuple whose first item names the task.
        start_method: the pool's start method (None: the platform's default).

    Returns:
        {first item of a result: the result}, whatever order the workers finished in.
    """
    results = {}
    with tqdm(total=len(tasks), desc=desc, unit=unit, disable=not progress) as bar:
        if num_workers > 1:
            with multiprocessing.get_context(start_method).Pool(num_workers) as pool:
                for result in pool.imap_unordered(fn, tasks, chunksize=chunksize):
                    results[result[0]] = result
                    bar.update()
        else:
            for task in tasks:
                result = fn(task)
                results[result[0]] = result
                bar.update()
    return results
