"""Helpers of the corpus tests (local pool and Ray): tiny real mp4s, and a watcher that kills the worker running a
given video, as an out-of-memory kill or a crashing decoder would."""
from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from streamact.data.synthetic.streams import iter_stream_frames
from streamact.io.writer import VideoWriter


def write_video(path: Path, *, seed: int, frames: int = 48, size: int = 64) -> Path:
    """A short synthetic gesture stream as an H.264 mp4."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with VideoWriter(path, 12.0) as writer:
        for i, (frame, _) in enumerate(iter_stream_frames(seed=seed, size=size)):
            if i >= frames:
                break
            writer.write(frame)
    return path


class WorkerKiller(threading.Thread):
    """Kill (SIGKILL) the worker running each named video, up to `kills[name]` times, as soon as it starts it.

    A worker announces the video it runs in ``OUT/.<name>.running`` (``host:pid``, a line per attempt); each kill
    is of a new pid.
    """

    def __init__(self, out_dir: Path, kills: dict[str, int]) -> None:
        super().__init__(daemon=True)
        self.out_dir, self.kills = out_dir, dict(kills)
        self.killed: dict[str, list[int]] = {name: [] for name in kills}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            for name, budget in self.kills.items():
                marker = self.out_dir / f".{name}.running"
                try:
                    pid = int(marker.read_text().split()[-1].rpartition(":")[2])
                except (OSError, ValueError, IndexError):
                    continue
                if len(self.killed[name]) < budget and pid not in self.killed[name] and pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    self.killed[name].append(pid)
            time.sleep(0.005)
