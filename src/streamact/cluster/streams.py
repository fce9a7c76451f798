"""Server-side sources shared by the Ray Serve replicas: any replica answers the stream API about any of them.

    POST /api/streams ──► replica A: session + source thread
        ──(every PUBLISH_S, one call: descriptions, new results)──► StreamDirectory (a Ray actor)
        ◄──(the reply: the ids to stop)──                                   ▲
    GET / list / results / events / WS / DELETE on replica B ──(asks it)────┘

A server-side source runs on the replica that opened it; the proxy sends later HTTP requests about it to any replica.
Each replica's `SharedStreams` answers about its own streams from its sessions, as a single server does, and about
the other replicas' sources from the `StreamDirectory`: their last published description, their recent results (as
many as a session keeps) and, to stop one, a flag its replica reads in the reply to its next publication; the
``DELETE`` then waits until the replica has closed it. Every `WATCH_S` the directory asks Ray whether each replica
with open streams is still alive: the streams of a replica that died end (status ``failed``, the reason in ``error``
and an ``end`` message), and the directory closes them itself when stopped or after the idle timeout.
WebSocket camera streams (``/ws``) are one connection to one replica and stay out of the directory.
"""
from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from streamact.serve.registry import StreamRegistry
from streamact.serve.session import Session, SessionManager, put_newest

__all__ = ["StreamDirectory", "SharedStreams", "open_directory", "shared_streams", "DIRECTORY", "NAMESPACE",
           "PUBLISH_S", "WATCH_S", "REPLICA_GONE"]

DIRECTORY = "streamact-streams"
NAMESPACE = "streamact"
PUBLISH_S = 0.2  # how often a replica sends its sources' news, and other replicas' watchers ask for it
WATCH_S = 2.0  # how often the directory checks that the replicas owning running streams are alive
PING_TIMEOUT_S = 10.0  # a replica that does not answer a ping this fast is busy, not dead: Ray says when it dies
STOP_WAIT_S = 10.0  # how long a DELETE from another replica waits for the stream's replica to close it
KEEP_CLOSED_S = 30.0  # a closed stream's last messages stay this long for the watchers still polling it
REPLICA_GONE = "the server replica running this stream stopped"

log = logging.getLogger(__name__)


@dataclass
class _Entry:
    instance: str  # the replica running the stream
    owner: Any  # its actor handle, to ask Ray whether it is alive
    info: dict
    results: deque
    idle_timeout_s: float
    stop: bool = False  # asked to stop: the replica reads it in the reply to its next publication
    lost: bool = False  # the replica died: the directory answers for the stream alone
    since: float = 0.0  # when it was lost or closed (monotonic)
    closed: asyncio.Event = field(default_factory=asyncio.Event)


class StreamDirectory:
    """The Ray actor all replicas share (`open_directory`): per server-side stream, its replica, description, recent
    results and stop flag. Asynchronous: a ``stop`` waiting for the stream's replica does not hold the others."""

    def __init__(self) -> None:
        self._streams: dict[str, _Entry] = {}
        self._watcher: asyncio.Task | None = None

    async def add(self, stream_id: str, instance: str, owner, info: dict, history: int,
                  idle_timeout_s: float) -> None:
        self._streams[stream_id] = _Entry(instance, owner, info, deque(maxlen=history), idle_timeout_s)
        if self._watcher is None:
            self._watcher = asyncio.create_task(self._watch())

    async def publish(self, updates: list[tuple[str, dict, list[dict]]]) -> list[str]:
        """A replica's news, ``(stream id, description, new results)`` per stream; returns the ids to stop."""
        stop = []
        for stream_id, info, results in updates:
            entry = self._streams.get(stream_id)
            if entry is None or entry.closed.is_set():
                continue
            entry.info = info
            entry.results.extend(results)
            if info["status"] == "closed":
                self._mark_closed(entry)
            elif entry.stop:
                stop.append(stream_id)
        return stop

    async def list(self, exclude: str) -> list[dict]:
        """The descriptions of the open streams of every replica but `exclude`."""
        return [e.info for e in self._streams.values() if e.instance != exclude and not e.closed.is_set()]

    async def info(self, stream_id: str) -> dict | None:
        entry = self._open(stream_id)
        return None if entry is None else entry.info

    async def read(self, stream_id: str, after: int) -> dict | None:
        """The stream's status and kept results above `after`, closed streams included (for their watchers)."""
        entry = self._streams.get(stream_id)
        if entry is None:
            return None
        return {"status": entry.info["status"], "results": [r for r in entry.results if r["seq"] > after]}

    async def stop(self, stream_id: str) -> dict | None:
        """Ask the stream's replica to stop it and wait (up to `STOP_WAIT_S`) until it did; its description."""
        entry = self._open(stream_id)
        if entry is None:
            return None
        entry.stop = True
        if entry.lost:
            self._close(entry, "stopped")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(entry.closed.wait(), STOP_WAIT_S)
        return entry.info

    def _open(self, stream_id: str) -> _Entry | None:
        entry = self._streams.get(stream_id)
        return None if entry is None or entry.closed.is_set() else entry

    def _say(self, entry: _Entry, message: dict) -> None:
        """Add a message of the directory's own to the stream's results, numbered after the last one."""
        seq = entry.results[-1]["seq"] + 1 if entry.results else 0
        entry.results.append({"seq": seq, "stream": entry.info["id"], **message})

    def _mark_closed(self, entry: _Entry) -> None:
        entry.since = time.monotonic()
        entry.closed.set()

    def _close(self, entry: _Entry, reason: str) -> None:
        """Close a stream whose replica is gone, as its session would have closed."""
        entry.info = {**entry.info, "status": "closed"}
        self._say(entry, {"type": "closed", "reason": reason})
        self._mark_closed(entry)

    def _lose(self, entry: _Entry) -> None:
        """The stream's replica died: the stream ends there (``failed`` if it was running)."""
        entry.lost, entry.since = True, time.monotonic()
        if entry.info["status"] == "running":
            entry.info = {**entry.info, "status": "failed", "error": REPLICA_GONE}
            self._say(entry, {"type": "end", "status": "failed", "error": REPLICA_GONE})
        if entry.stop:
            self._close(entry, "stopped")

    async def _watch(self) -> None:
        """Every `WATCH_S`: end the streams of replicas that died, close lost streams once idle for their timeout,
        forget closed streams after `KEEP_CLOSED_S`."""
        while True:
            await asyncio.sleep(WATCH_S)
            owners = {e.instance: e.owner for e in self._streams.values() if not e.lost and not e.closed.is_set()}
            alive = await asyncio.gather(*(_alive(owner) for owner in owners.values()))
            dead = {instance for instance, ok in zip(owners, alive) if not ok}
            now = time.monotonic()
            for stream_id, entry in list(self._streams.items()):
                if entry.closed.is_set():
                    if now - entry.since > KEEP_CLOSED_S:
                        del self._streams[stream_id]
                elif entry.instance in dead:
                    self._lose(entry)
                elif entry.lost and now - entry.since > entry.idle_timeout_s:
                    self._close(entry, f"idle timeout: no frame for {entry.idle_timeout_s:g} s")


async def _alive(actor) -> bool:
    """False once Ray says `actor` died; True while it answers, or does not answer yet (busy, or a node Ray has not
    given up on)."""
    from ray.exceptions import ActorDiedError, RayError

    try:
        await asyncio.wait_for(actor.__ray_ready__.remote(), PING_TIMEOUT_S)
        return True
    except ActorDiedError:
        return False
    except (TimeoutError, RayError):  # slow, restarting, unreachable: not known dead; ask again next time
        return True


def open_directory():
    """The cluster's `StreamDirectory` actor, started if it is not running: detached (it outlives a replica that
    dies) and taking no CPU from the replicas; `streamact.cluster.serve.serve_replicas` kills it when it stops
    them."""
    import ray

    return ray.remote(StreamDirectory).options(name=DIRECTORY, namespace=NAMESPACE, lifetime="detached",
                                               get_if_exists=True, num_cpus=0).remote()


def shared_streams(instance: str) -> Callable[[SessionManager], SharedStreams]:
    """The registry factory of the replica `instance` (call it in the replica): `SharedStreams` over the directory."""
    import ray

    return functools.partial(SharedStreams, directory=ray.get_actor(DIRECTORY, namespace=NAMESPACE),
                             instance=instance, owner=ray.get_runtime_context().current_actor)


class SharedStreams(StreamRegistry):
    """A replica's registry: its own streams from its sessions, the other replicas' server-side sources from the
    `StreamDirectory`, where it publishes its own sources every `PUBLISH_S`.

    Args:
        manager: the replica's sessions.
        directory: the `StreamDirectory` actor's handle.
        instance: the replica's id.
        owner: the replica's actor handle (the directory asks Ray whether it is alive).
    """

    def __init__(self, manager: SessionManager, directory, instance: str, owner) -> None:
        super().__init__(manager)
        self.directory, self.instance, self.owner = directory, instance, owner
        self._published: dict[str, tuple[Session, int]] = {}  # own sources -> seq of the last result published
        self._relays: dict[asyncio.Queue, asyncio.Task] = {}  # watchers of other replicas' streams -> their pollers
        self._lock = asyncio.Lock()
        self._publisher: asyncio.Task | None = None

    async def start(self) -> None:
        self._publisher = asyncio.create_task(self._publish_every())

    async def close(self) -> None:
        self._publisher.cancel()
        for relay in self._relays.values():
            relay.cancel()
        await self._publish()  # the last state of the sources closed with the server

    async def opened(self, session: Session) -> None:
        limits = self.manager.limits
        await self.directory.add.remote(session.id, self.instance, self.owner, session.info(), limits.history,
                                        limits.idle_timeout_s)
        self._published[session.id] = (session, -1)

    async def list(self) -> list[dict]:
        return [*await super().list(), *await self.directory.list.remote(self.instance)]

    async def info(self, stream_id: str) -> dict | None:
        here = await super().info(stream_id)
        return here if here is not None else await self.directory.info.remote(stream_id)

    async def results(self, stream_id: str, after: int) -> dict | None:
        here = await super().results(stream_id, after)
        if here is not None:
            return here
        there = await self.directory.read.remote(stream_id, after)
        return None if there is None or there["status"] == "closed" else there

    async def stop(self, stream_id: str) -> dict | None:
        here = await super().stop(stream_id)
        if here is None:
            return await self.directory.stop.remote(stream_id)
        await self._publish()  # closed for the other replicas too, at once
        return here

    async def subscribe(self, stream_id: str) -> asyncio.Queue | None:
        here = await super().subscribe(stream_id)
        if here is not None:
            return here
        there = await self.directory.read.remote(stream_id, -1)
        if there is None or there["status"] == "closed":
            return None
        queue: asyncio.Queue = asyncio.Queue(self.manager.limits.subscriber_queue)
        if there["status"] != "running":  # as `Session.subscribe`: nothing more will come
            queue.put_nowait(None)
        else:
            last = there["results"][-1]["seq"] if there["results"] else -1
            self._relays[queue] = asyncio.create_task(self._relay(stream_id, queue, last))
        return queue

    def unsubscribe(self, stream_id: str, queue: asyncio.Queue) -> None:
        relay = self._relays.pop(queue, None)
        if relay is None:
            super().unsubscribe(stream_id, queue)
        else:
            relay.cancel()

    async def _relay(self, stream_id: str, queue: asyncio.Queue, after: int) -> None:
        """Pass another replica's stream's messages above `after` from the directory to `queue` until it closes."""
        try:
            while True:
                await asyncio.sleep(PUBLISH_S)
                there = await self.directory.read.remote(stream_id, after)
                if there is None:
                    return
                for message in there["results"]:
                    put_newest(queue, message)
                    after = message["seq"]
                if there["status"] == "closed":
                    return
        finally:
            put_newest(queue, None)

    async def _publish(self) -> list[str]:
        """Send the directory the description and new results of each of this replica's sources (their last ones
        for those closed since); returns those it asks to stop."""
        async with self._lock:
            updates = []
            for stream_id, (session, seq) in list(self._published.items()):
                new = [r for r in session.results if r["seq"] > seq]
                updates.append((stream_id, session.info(), new))
                if session.status == "closed":
                    del self._published[stream_id]
                elif new:
                    self._published[stream_id] = (session, new[-1]["seq"])
            return await self.directory.publish.remote(updates) if updates else []

    async def _publish_every(self) -> None:
        from ray.exceptions import RayError

        while True:
            await asyncio.sleep(PUBLISH_S)
            try:
                stop = await self._publish()
                for stream_id in stop:
                    await self.manager.close(stream_id, "stopped")
                if stop:
                    await self._publish()
            except RayError as e:  # the directory is gone or unreachable: the replica's own streams go on
                log.warning("cannot publish this replica's server-side sources: %s", e)
