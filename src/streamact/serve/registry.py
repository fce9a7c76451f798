"""What the stream API answers about a stream named by its id: `StreamRegistry`, a server's own streams.

The calls about one stream (``GET /api/streams``, ``GET`` / ``DELETE /api/streams/{id}``, its results, its Server-Sent
Events and its WebSocket of results) all go through a registry, chosen when the app is created. This one answers from
the server's own sessions. Ray Serve replicas use `streamact.cluster.streams.SharedStreams`, which answers the same
calls about the server-side sources running on the other replicas too, from a directory they share.
"""
from __future__ import annotations

import asyncio

from streamact.serve.session import Session, SessionManager

__all__ = ["StreamRegistry"]


class StreamRegistry:
    """The streams of one server (its `SessionManager`); every call returns None for a stream it does not know."""

    def __init__(self, manager: SessionManager) -> None:
        self.manager = manager

    async def start(self) -> None:
        """The server is up and about to take streams (a hook: nothing to do here)."""

    async def close(self) -> None:
        """The server is shutting down and its sessions are closed (a hook: nothing to do here)."""

    async def opened(self, session: Session) -> None:
        """A server-side source started here as `session` (a hook: the manager holds it already)."""

    async def list(self) -> list[dict]:
        """The description of every stream (`Session.info`)."""
        return [session.info() for session in self.manager.sessions.values()]

    async def info(self, stream_id: str) -> dict | None:
        """The stream's description and counters."""
        session = self.manager.sessions.get(stream_id)
        return None if session is None else session.info()

    async def results(self, stream_id: str, after: int) -> dict | None:
        """The stream's status and the results it keeps whose ``seq`` is above `after`."""
        session = self.manager.sessions.get(stream_id)
        if session is None:
            return None
        return {"status": session.status, "results": [r for r in session.results if r["seq"] > after]}

    async def stop(self, stream_id: str) -> dict | None:
        """Stop the stream (its source too) and free its state; its description once closed."""
        session = self.manager.sessions.get(stream_id)
        if session is None:
            return None
        await self.manager.close(stream_id, "stopped")
        return session.info()

    async def subscribe(self, stream_id: str) -> asyncio.Queue | None:
        """A queue of the stream's later messages, None in it when the stream closes (`Session.subscribe`)."""
        session = self.manager.sessions.get(stream_id)
        return None if session is None else session.subscribe()

    def unsubscribe(self, stream_id: str, queue: asyncio.Queue) -> None:
        session = self.manager.sessions.get(stream_id)
        if session is not None:
            session.unsubscribe(queue)
