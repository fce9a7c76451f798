"""`streamact serve --ray`: the stream server as two Ray Serve replicas on a two-node cluster of this machine. Streams
stay on the replica that accepted them; every replica answers about a server-side source, whichever runs it;
killing a replica ends its streams at once with a close code (its server-side sources: marked failed) and the
others go on; the proxy's middleware that gives that code; the command's options and its stop; options and addresses
that fail in one line."""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from streamact.cluster.serve import REPLICA_LOST, ServerSpec, proxy_middlewares, serve_replicas
from streamact.cluster.streams import REPLICA_GONE

TOKEN = "secret"
SOURCE = {"source": "synthetic:gestures?num=40&size=64", "fps": 8}  # minutes long: it runs until stopped


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jpeg(seed: int) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 255, (96, 96, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format="JPEG")
    return buffer.getvalue()


class Stream:
    """A camera-like client of ``/ws``: frames sent one by one, frame indices of the predictions that came back."""

    def __init__(self, connections: contextlib.ExitStack, url: str) -> None:
        from websockets.sync.client import connect

        self.ws = connections.enter_context(connect(url, open_timeout=60))
        hello = json.loads(self.ws.recv(timeout=60))
        assert hello["type"] == "hello"
        self.instance, self.sent = hello["instance"], 0

    def send(self, count: int) -> list[int]:
        """Send `count` frames; the model steps on every other frame (the bundled model's frame_interval is 2), so
        after each even-numbered frame wait for its prediction (an odd one at most waits in the one-frame slot)."""
        answered = []
        for _ in range(count):
            self.ws.send(jpeg(self.sent))
            if self.sent % 2 == 0:
                while (message := json.loads(self.ws.recv(timeout=60)))["type"] != "prediction":
                    pass
                answered.append(message["frame"])
            self.sent += 1
        return answered


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def call(method: str, url: str, body: dict | None = None) -> tuple[int, dict, str]:
    """An API call with the token: its status, its JSON and the replica that answered."""
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read()), response.headers["X-Streamact-Instance"]
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read()), e.headers["X-Streamact-Instance"]


def until(predicate, timeout: float = 30.0):
    """Call `predicate` until it returns something true (returned), at most `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (answer := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return answer


@pytest.fixture(scope="module")
def replicas(ray_cluster):
    """`streamact serve --ray ADDRESS --replicas 2` as a user runs it (its own process, a driver of the cluster):
    two replicas of the bundled model's server, one per node, behind Ray Serve's proxy on a loopback port. Yields the
    proxy's HOST:PORT and the command's process."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "streamact", "serve", "--ray", ray_cluster, "--replicas", "2",
                               "--port", str(port), "--token", TOKEN, "--idle-timeout", "600"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    hang_guard = threading.Timer(300, server.kill)  # the command never saying it serves fails the test
    hang_guard.start()
    try:
        while (line := server.stderr.readline()) and not line.startswith("serving"):  # past Ray's own notes
            pass
        hang_guard.cancel()
        assert line.startswith(f"serving tsm_efficientnet_lite0_stream_gestures as 2 Ray Serve replica(s) on "
                               f"http://127.0.0.1:{port}/"), server.stderr.read()
        yield f"127.0.0.1:{port}", server
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


@pytest.mark.slow  # Ray Serve's controller, proxy and two replicas each loading the model
def test_every_replica_answers_about_a_server_side_source_and_any_of_them_stops_it(replicas):
    """The proxy sends each call to either replica: the one running the source and the other answer alike, the
    other from the directory the replicas share."""
    from websockets.sync.client import connect

    api = f"http://{replicas[0]}/api/streams"
    status, created, owner = call("POST", api, SOURCE)
    assert status == 201 and created["status"] == "running", created
    stream = f"{api}/{created['id']}"
    answered: dict[str, set[str]] = {}  # replica -> the calls it answered

    def both_replicas_answered_everything() -> bool:
        for name, url in (("info", stream), ("list", api), ("results", f"{stream}/results?after=-1")):
            status, body, replica = call("GET", url)
            assert status == 200, body
            if name == "info":
                assert body["id"] == created["id"] and body["status"] == "running"
            elif name == "list":
                assert created["id"] in [s["id"] for s in body["streams"]]
            elif body["status"] != "running" or not any(r["type"] == "prediction" for r in body["results"]):
                continue  # the source's first prediction is not out yet
            answered.setdefault(replica, set()).add(name)
        return len(answered) == 2 and all(calls == {"info", "list", "results"} for calls in answered.values())

    until(both_replicas_answered_everything)

    def watched_from_the_other_replica() -> bool:
        with urllib.request.urlopen(f"{stream}/events?token={TOKEN}", timeout=30) as events:
            if events.headers["X-Streamact-Instance"] == owner:
                return False
            while not (line := events.readline().decode()).startswith("event: prediction"):
                assert line, "the events ended before a prediction"
        with connect(f"ws://{replicas[0]}/api/streams/{created['id']}/ws?token={TOKEN}", open_timeout=30) as ws:
            if ws.response.headers["X-Streamact-Instance"] == owner:
                return False
            while (message := json.loads(ws.recv(timeout=30)))["type"] != "prediction":
                pass
            return message["stream"] == created["id"]

    until(watched_from_the_other_replica)

    for _ in range(12):  # until a replica stopped a source the other one runs (each call: either replica)
        status, stopped, replica = call("DELETE", stream)
        assert status == 200 and (stopped["id"], stopped["status"]) == (created["id"], "closed"), stopped
        gone: set[str] = set()

        def gone_from_both_replicas() -> bool:
            status, body, answering = call("GET", stream)
            assert status == 404 and body["detail"]["code"] == "unknown_stream", body
            gone.add(answering)
            return len(gone) == 2

        until(gone_from_both_replicas)
        if replica != owner:
            break
        status, created, owner = call("POST", api, SOURCE)
        assert status == 201, created
        stream = f"{api}/{created['id']}"
    assert replica != owner, "every DELETE reached the replica running its stream"
    assert call("GET", api)[1]["streams"] == []


@pytest.mark.slow  # Ray Serve's controller, proxy and two replicas each loading the model
def test_streams_stay_on_their_replica_and_a_dying_replica_ends_only_its_streams(replicas, ray_cluster):
    from websockets.exceptions import ConnectionClosed

    from streamact.cluster import connect

    ray = connect(ray_cluster)  # this process too, to find a replica's process
    url = f"ws://{replicas[0]}/ws?token={TOKEN}"

    with contextlib.ExitStack() as connections:
        streams: list[Stream] = []
        while len({s.instance for s in streams}) < 2 and len(streams) < 8:  # until both replicas hold a stream
            streams.append(Stream(connections, url))
        assert len({s.instance for s in streams}) == 2
        for stream in streams:  # each stream's frames reach one session: its frame count goes on across calls
            assert stream.send(3) == [0, 2]
        for stream in streams:
            assert stream.send(3) == [4]

        victim = streams[0].instance
        api = f"http://{replicas[0]}/api/streams"
        for _ in range(16):  # a server-side source on the victim too (each POST: either replica)
            status, source, owner = call("POST", api, SOURCE)
            assert status == 201, source
            if owner == victim:
                break
            assert call("DELETE", f"{api}/{source['id']}")[0] == 200
        assert owner == victim
        replica = next(a for a in ray.util.list_named_actors(all_namespaces=True) if victim in a["name"])
        pid = ray.get(ray.get_actor(replica["name"], namespace=replica["namespace"]).__ray_call__.remote(
            lambda self: os.getpid()))
        os.kill(pid, signal.SIGKILL)
        for stream in streams:
            if stream.instance == victim:
                with pytest.raises(ConnectionClosed) as closed:  # ended, not hanging
                    stream.send(6)
                assert closed.value.rcvd.code == REPLICA_LOST and "reconnect" in closed.value.rcvd.reason
            else:
                assert stream.send(2) == [6]  # the other replica's streams go on
        again = Stream(connections, url)  # a reconnecting client: a live replica, a fresh stream
        assert again.instance != victim and again.send(3) == [0, 2]

    def ended() -> dict | None:  # the victim's server-side source, as a live replica tells it
        status, body, _ = call("GET", f"{api}/{source['id']}")
        return body if status == 200 and body["status"] != "running" else None

    described = until(ended)
    assert (described["status"], described["error"]) == ("failed", REPLICA_GONE)
    last = call("GET", f"{api}/{source['id']}/results")[1]["results"][-1]
    assert (last["type"], last["status"], last["error"]) == ("end", "failed", REPLICA_GONE)
    assert call("DELETE", f"{api}/{source['id']}")[1]["status"] == "closed"


@pytest.mark.slow  # the replicas of the fixture
def test_a_second_serve_on_another_port_is_refused_and_leaves_the_running_one_alone(replicas, ray_cluster):
    """Ray Serve keeps the port it was first started with; a command asking for another one would deploy replicas
    nobody finds there, so it is refused before it deploys anything."""
    from streamact.errors import UserError

    other = free_port()
    with pytest.raises(UserError, match=rf"^Ray Serve already runs on the Ray cluster at \S+ with another host or "
                                        rf"port, and keeps them \(--host 127.0.0.1 --port {other} would be ignored\)"):
        serve_replicas(ServerSpec("tsm_efficientnet_lite0_stream_gestures"), address=ray_cluster, replicas=1,
                       host="127.0.0.1", port=other, block=False)
    status, text = get(f"http://{replicas[0]}/healthz")  # the running server was not touched
    assert status == 200 and json.loads(text)["instance"]


# After the tests above: it stops the replicas.
@pytest.mark.slow  # the replicas of the fixture
def test_the_command_gives_its_options_to_the_replicas_and_takes_them_down_on_sigterm(replicas):
    from websockets.exceptions import ConnectionClosed

    address, server = replicas
    status, text = get(f"http://{address}/healthz")
    assert status == 200 and json.loads(text)["instance"]  # a replica's id, behind the proxy
    assert get(f"http://{address}/api/info")[0] == 401  # the command's --token reached the replicas
    status, text = get(f"http://{address}/api/info?token={TOKEN}")
    assert status == 200 and json.loads(text)["limits"]["idle_timeout_s"] == 600
    assert json.loads(text)["workers"] == 1  # the one CPU Ray reserved for the replica, not every core here
    with contextlib.ExitStack() as connections:
        stream = Stream(connections, f"ws://{address}/ws?token={TOKEN}")
        assert stream.send(3) == [0, 2]
        server.send_signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed) as closed:  # its replica stopped first: the proxy closes it
            stream.ws.recv(timeout=60)
        assert closed.value.rcvd.code == REPLICA_LOST
    assert server.wait(60) == 0
    with pytest.raises(OSError):  # Serve was shut down with the command: nothing answers there any more
        get(f"http://{address}/healthz")


@pytest.mark.slow  # the cluster (shared with the tests above)
def test_more_replicas_than_the_cluster_has_cpus_for_is_a_clear_error(ray_cluster):
    from streamact.errors import UserError

    with pytest.raises(UserError, match=r"^--replicas 3: the replicas need 3 CPUs \(1 each\), the Ray cluster at "
                                        r"\S+ has 2; "):
        serve_replicas(ServerSpec("tsm_efficientnet_lite0_stream_gestures"), address=ray_cluster, replicas=3,
                       host="127.0.0.1", port=free_port(), block=False)


def test_the_proxy_middleware_closes_a_stream_its_replica_left_open_and_no_other():
    from starlette.applications import Starlette
    from starlette.routing import Route, WebSocketRoute
    from starlette.responses import PlainTextResponse
    from starlette.testclient import TestClient
    from starlette.websockets import WebSocketDisconnect

    async def dies(ws):  # what Ray Serve's proxy does when the replica of a stream dies: returns, closing nothing
        await ws.accept()
        await ws.send_json({"type": "hello"})

    async def closes(ws):
        await ws.accept()
        await ws.close(4408, "idle timeout")

    app = Starlette(routes=[WebSocketRoute("/dies", dies), WebSocketRoute("/closes", closes),
                            Route("/healthz", lambda request: PlainTextResponse("ok"))],
                    middleware=proxy_middlewares())
    client = TestClient(app)
    with client.websocket_connect("/dies") as ws:
        assert ws.receive_json() == {"type": "hello"}
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert closed.value.code == REPLICA_LOST and "reconnect" in closed.value.reason
    with client.websocket_connect("/closes") as ws:
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
    assert (closed.value.code, closed.value.reason) == (4408, "idle timeout")
    assert client.get("/healthz").text == "ok"


@pytest.mark.parametrize("argv, message", [
    (["--replicas", "2"], "error: --replicas needs --ray"),
    (["--ray", "--replicas", "0"], "error: --replicas must be positive, got 0"),
])
def test_serve_replica_options_fail_in_one_line(argv, message, capsys):
    from streamact.cli.main import main as cli_main

    assert cli_main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1, err


def test_serve_on_an_address_without_a_cluster_is_a_clear_error_in_seconds():
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "streamact", "serve", "--ray", "127.0.0.1:1", "--replicas", "2",
                           "--port", str(free_port())], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=120)
    assert time.monotonic() - start < 60  # a hang guard, not a timing: Ray alone retries for a minute or more
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.startswith("error: --ray 127.0.0.1:1: no Ray cluster answers there (")
    assert proc.stderr.count("\n") == 1, proc.stderr
