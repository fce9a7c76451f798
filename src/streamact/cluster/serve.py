"""`streamact serve --ray`: the stream server's ASGI app as Ray Serve replicas behind Ray Serve's HTTP proxy.

    client ──HTTP / WebSocket──► Ray Serve proxy (HOST:PORT) ──► one of N replicas, each: `create_app` over its own
        compiled model (`load_runtime_or_fallback`), its own sessions, its own thread pool

A WebSocket stream (``/ws``) is one connection, so it stays on the replica that accepted it, with its engine state,
for its whole life. A replica that dies takes its streams with it: the proxy closes their connections at once with
code 1012 (`REPLICA_LOST`, "service restart": reconnect, and the proxy routes the new connection to a live replica),
and the other replicas' streams go on. The proxy does so through `proxy_middlewares`, which Ray Serve loads from the
environment variable `streamact.cluster.PROXY_CALLBACK_ENV` of the Ray nodes (set for ``--ray`` without an
address; set it when starting a cluster's nodes, else the proxy drops such connections without a close frame:
1006 on the client). Stopping the command stops the replicas first (their streams get `GRACE_S` to end, then
are closed with 1012 too), then Ray Serve with its proxies. Each replica tells its id in the ``hello`` message,
in ``/healthz`` and in the ``X-Streamact-Instance`` header of its responses. A server-side source (``POST
/api/streams``) runs on the replica that opened it, and every replica answers the HTTP calls about it (describe,
list, results, events, stop) through the directory they share (`streamact.cluster.streams`).
"""
from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from dataclasses import dataclass, field, replace

from streamact.cluster import connect
from streamact.errors import UserError

__all__ = ["ServerSpec", "serve_replicas", "proxy_middlewares", "DEPLOYMENT", "REPLICA_LOST", "GRACE_S"]

DEPLOYMENT = "streamact"
REPLICA_LOST = 1012  # WebSocket close code "service restart": the stream's replica is gone, reconnecting works
GRACE_S = 1.0  # a stopping replica's streams never end by themselves: the time Ray Serve waits before it stops


class _CloseLostStreams:
    """ASGI middleware of Ray Serve's proxy: a WebSocket whose replica ended without closing it (the replica died)
    is closed with `REPLICA_LOST` and a reason, where the proxy alone would drop the connection."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "websocket":
            await self.app(scope, receive, send)
            return
        seen: set[str] = set()

        async def watched_receive():
            message = await receive()
            seen.add(message["type"])
            return message

        async def watched_send(message) -> None:
            seen.add(message["type"])
            await send(message)

        try:
            await self.app(scope, watched_receive, watched_send)
        finally:
            if "websocket.accept" in seen and not seen & {"websocket.close", "websocket.disconnect"}:
                await send({"type": "websocket.close", "code": REPLICA_LOST,
                            "reason": "the server replica of this stream stopped; reconnect"})


def proxy_middlewares() -> list:
    """The middlewares Ray Serve's proxy adds when `streamact.cluster.PROXY_CALLBACK_ENV` names this function."""
    from starlette.middleware import Middleware

    return [Middleware(_CloseLostStreams)]


@dataclass
class ServerSpec:
    """What every replica builds its app from; plain values, as it travels to the replicas.

    Attributes:
        model, runtime, precision: as for `streamact serve`.
        app_options: keyword arguments of `streamact.serve.app.create_app` (limits, policy, token, workers).
    """

    model: str
    runtime: str | None = None
    precision: str | None = None
    app_options: dict = field(default_factory=dict)


class _Replica:
    """A Ray Serve replica: builds the app (and loads its model) when Ray Serve starts it."""

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec

    def __serve_build_asgi_app__(self):
        from ray import serve

        from streamact.cli.recognize import load_runtime_or_fallback
        from streamact.cluster.streams import shared_streams
        from streamact.serve.app import create_app

        runtime, _ = load_runtime_or_fallback(self.spec.model, runtime=self.spec.runtime,
                                              precision=self.spec.precision,
                                              num_threads=self.spec.app_options.get("workers"))
        replica = serve.get_replica_context().replica_id.unique_id
        return create_app(runtime, model_name=self.spec.model, instance=replica, registry=shared_streams(replica),
                          **self.spec.app_options)


def _start_serve(serve, host: str, port: int, address: str) -> None:
    """Start Ray Serve's proxies on HOST:PORT, or join the Ray Serve already running on the cluster if it listens
    there.

    Raises:
        UserError: it runs with another host or port: Ray Serve keeps its first HTTP options and would only log that
            it ignores the new ones, leaving the user with replicas where they are not looking.
    """
    ignored: list[str] = []

    class _Ignored(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "HTTP config differs" in record.getMessage():
                ignored.append(record.getMessage())

    logger = logging.getLogger("ray.serve")
    handler = _Ignored()
    logger.addHandler(handler)
    try:
        serve.start(http_options={"host": host, "port": port})
    finally:
        logger.removeHandler(handler)
    if ignored:
        raise UserError(f"Ray Serve already runs on the Ray cluster at {address} with another host or port, and keeps "
                        f"them (--host {host} --port {port} would be ignored); use its port, or stop it first "
                        "(`serve shutdown -y`)")


def _wait_until_routed(host: str, port: int, timeout: float = 60.0) -> None:
    """Wait until Ray Serve's proxy on HOST:PORT routes "/" to the replicas. `serve.run` returns once the replicas
    are up, but the proxy learns its routes from the controller a moment later and answers 404 until then.

    Raises:
        UserError: it does not within `timeout` seconds.
    """
    import time

    probe = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(host, f"[{host}]" if ":" in host else host)
    url = f"http://{probe}:{port}/-/routes"
    deadline = time.monotonic() + timeout
    while "/" not in _proxy_routes(url):
        if time.monotonic() > deadline:
            raise UserError(f"Ray Serve's proxy on {host}:{port} did not route to the replicas within {timeout:g} s "
                            f"({url})")
        time.sleep(0.2)


def _proxy_routes(url: str) -> dict:
    """The proxy's route table ({route prefix: application}); empty while it is not listening, has no table yet
    (503) or answers something else."""
    import json
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            routes = json.loads(response.read())
    except (OSError, ValueError):
        return {}
    return routes if isinstance(routes, dict) else {}


def serve_replicas(spec: ServerSpec, *, address: str, replicas: int, host: str, port: int,
                   cpus_per_replica: float = 1.0, block: bool = True) -> None:
    """Deploy `replicas` copies of the server on the Ray cluster at `address`, behind a proxy on HOST:PORT.

    Args:
        spec: the model and the app's options.
        address: as for `streamact.cluster.connect`.
        replicas: how many copies; Ray places them on the cluster's machines by their free CPUs.
        host, port: where Ray Serve's proxy listens (on every machine of the cluster that runs one).
        cpus_per_replica: CPUs Ray reserves for each replica (the CLI: 1); unless the app options set
            ``workers``, each replica runs that many inference threads (its model's and its app's).
        block: serve until interrupted (Ctrl-C, SIGTERM), then shut Ray Serve down and stop the replicas' stream
            directory; else return once it runs (the directory, detached, stays for the next deployment).

    Raises:
        UserError: the cluster does not answer, has fewer CPUs than the replicas need (Ray Serve would wait for
            them for ever), or runs Ray Serve on another host or port.
    """
    ray = connect(address)
    from ray import serve

    from streamact.cluster.streams import open_directory
    from streamact.serve.app import uvicorn_options
    from streamact.serve.limits import Limits

    logging.getLogger("ray.serve").setLevel(logging.WARNING)  # its start-up notes; the command says where it serves
    cpus = ray.cluster_resources().get("CPU", 0)
    if replicas * cpus_per_replica > cpus:
        raise UserError(f"--replicas {replicas}: the replicas need {replicas * cpus_per_replica:g} CPUs "
                        f"({cpus_per_replica:g} each), the Ray cluster at {address} has {cpus:g}; add machines to "
                        "it or ask for fewer replicas")

    _start_serve(serve, host, port, address)
    options = dict(spec.app_options)
    if options.get("workers") is None:  # the CPUs Ray reserved for the replica, not every core of its machine
        options["workers"] = max(1, int(cpus_per_replica))
    spec = replace(spec, app_options=options)

    directory = open_directory()  # before the replicas, which look it up when they start

    def deploy() -> None:
        # A WebSocket stream is one request for its whole life: a replica takes as many as one server would.
        ongoing = uvicorn_options(spec.app_options.get("limits", Limits()))["limit_concurrency"]
        deployment = serve.deployment(serve.ingress()(_Replica), name=DEPLOYMENT, num_replicas=replicas,
                                      max_ongoing_requests=ongoing, ray_actor_options={"num_cpus": cpus_per_replica},
                                      graceful_shutdown_timeout_s=GRACE_S)
        serve.run(deployment.bind(spec), name=DEPLOYMENT, route_prefix="/")
        _wait_until_routed(host, port)

    if not block:
        deploy()
        return
    # SIGTERM as Ctrl-C, from here on: Ray's own handler would exit at once and leave the replicas running.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        with contextlib.suppress(KeyboardInterrupt):
            deploy()
            print(f"serving {spec.model} as {replicas} Ray Serve replica(s) on http://{host}:{port}/ (Ctrl-C stops "
                  "them)", file=sys.stderr)
            threading.Event().wait()
    finally:
        serve.delete(DEPLOYMENT)  # the replicas first, while the proxies are there to close their streams
        serve.shutdown()
        ray.kill(directory)
