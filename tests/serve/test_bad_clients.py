"""Clients that misbehave on the wire, against a real server on loopback: a burst of 200 connection attempts and
a WebSocket that disconnects in the middle of a frame. Each is refused or cleaned up; other streams go on."""
from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import pytest

pytest.importorskip("fastapi")
from serve_helpers import encode, serve_in_thread, solid  # noqa: E402
from websockets.asyncio.client import connect  # noqa: E402
from websockets.exceptions import ConnectionClosed  # noqa: E402

from streamact.serve.app import create_app, uvicorn_options  # noqa: E402
from streamact.serve.limits import Limits  # noqa: E402
from streamact.serve.loadgen import server_metrics  # noqa: E402


async def _attempt(url: str, answered: list, everyone: asyncio.Event) -> str:
    """'accepted' (hello; held open until every attempt has had its answer) or the code it was refused with."""
    async with connect(url, open_timeout=30) as ws:
        first = json.loads(await ws.recv())
        answered.append(first["type"])
        if len(answered) == 200:
            everyone.set()
        if first["type"] == "hello":
            await asyncio.wait_for(everyone.wait(), 60)
            return "accepted"
        try:
            await ws.recv()
        except ConnectionClosed as e:
            return f"{first['code']}:{e.rcvd.code}"
        return "not closed"


def test_two_hundred_connections_at_once_are_served_or_refused(runtime):
    with serve_in_thread(create_app(runtime, limits=Limits(max_streams=4))) as url:
        async def burst():
            answered, everyone = [], asyncio.Event()
            return await asyncio.gather(*(_attempt(url.replace("http", "ws") + "/ws", answered, everyone)
                                          for _ in range(200)))

        outcomes = asyncio.run(burst())
        assert outcomes.count("accepted") == 4
        assert outcomes.count("too_many_streams:1013") == 200 - outcomes.count("accepted")

        async def still_serving():
            async with connect(url.replace("http", "ws") + "/ws") as ws:
                assert json.loads(await ws.recv())["type"] == "hello"
                await ws.send(encode(solid((0, 255, 0))))
                while (message := json.loads(await ws.recv()))["type"] != "prediction":
                    pass
                return message["label"]

        assert asyncio.run(still_serving()) == "green"
        deadline = time.monotonic() + 10
        while server_metrics(url)["streams"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert server_metrics(url)["streams_opened"] == outcomes.count("accepted") + 1


def test_a_client_gone_mid_frame_frees_its_stream(runtime):
    with serve_in_thread(create_app(runtime)) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port)) as raw:
            key = base64.b64encode(os.urandom(16)).decode()
            raw.sendall(f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                        f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
            assert raw.recv(4096).startswith(b"HTTP/1.1 101")
            deadline = time.monotonic() + 10
            while server_metrics(url)["streams"] != 1:
                assert time.monotonic() < deadline
                time.sleep(0.02)
            # A masked binary frame announcing 100 000 bytes, of which only 10 arrive before the socket closes.
            raw.sendall(bytes([0x82, 0x80 | 127]) + struct.pack(">Q", 100_000) + os.urandom(4) + b"x" * 10)
        deadline = time.monotonic() + 10
        while server_metrics(url)["streams"]:
            assert time.monotonic() < deadline, "the half-sent stream was never freed"
            time.sleep(0.02)
        metrics = server_metrics(url)
        assert metrics["streams_closed"] == 1 and metrics["frames_in"] == 0


def test_a_fifty_megabyte_frame_is_refused_by_the_protocol_layer(runtime):
    limits = Limits()
    with serve_in_thread(create_app(runtime, limits=limits), **uvicorn_options(limits)) as url:
        async def send_huge():
            async with connect(url.replace("http", "ws") + "/ws", max_size=None) as ws:
                await ws.recv()  # hello
                try:  # the server may close while the frame is still being sent
                    await ws.send(os.urandom(50 * 2**20))
                    while True:
                        await ws.recv()
                except ConnectionClosed as e:
                    return e.rcvd.code

        assert asyncio.run(send_huge()) == 1009
        deadline = time.monotonic() + 10
        while server_metrics(url)["streams"]:
            assert time.monotonic() < deadline
            time.sleep(0.02)
        assert server_metrics(url)["frames_in"] == 0
