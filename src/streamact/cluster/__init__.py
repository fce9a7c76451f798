"""Beyond one machine on Ray: corpus inference on Ray Data (`corpus`) and stream-server replicas on Ray Serve.

Ray is the extra ``[cluster]`` (``pip install 'streamact[cluster]'``); it is imported only here. Every machine of
the cluster needs streamact installed (the same version), and a corpus's output folder must be one that every
machine can write (a shared file system) when workers run on more than one machine.
"""
from __future__ import annotations

import logging
import os
import socket
import threading

from streamact.errors import UserError

__all__ = ["connect", "import_ray", "CONNECT_TIMEOUT_S", "PROXY_CALLBACK_ENV", "PROXY_CALLBACK"]

CONNECT_TIMEOUT_S = 3.0  # a cluster's head answers in milliseconds on a LAN; an address that does not is wrong
# Ray Serve's proxies call the function at this import path for extra ASGI middlewares; a node reads it when it
# starts. streamact's closes the streams of a replica that died with a close code (`streamact.cluster.serve`).
PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = "streamact.cluster.serve.proxy_middlewares"


def import_ray():
    """The ``ray`` module.

    Raises:
        ImportError: with the extra to install, when Ray is not installed.
    """
    try:
        import ray
    except ImportError:
        raise ImportError("--ray needs Ray, which is not installed here; install it with "
                          "pip install 'streamact[cluster]'") from None
    return ray


def _probe(address: str, host: str, port: int) -> str | None:
    """Why the head at `address` is not a Ray cluster that answers within `CONNECT_TIMEOUT_S`, or None.

    A TCP connection first (refused or unroutable addresses fail at once), then, for a cluster address, the
    cluster id asked of its control store (a port that accepts connections but is not Ray, e.g. behind a proxy);
    `ray.init` itself retries both for a minute or more.
    """
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        return e.strerror or str(e) or type(e).__name__
    if address.startswith("ray://"):  # Ray Client: ray.init's own handshake fails quickly
        return None
    from ray._raylet import GcsClient  # what `ray health-check` asks; not a public API, hence the broad except

    outcome: list[str | None] = []

    def ask() -> None:
        try:
            GcsClient(address=address).cluster_id
            outcome.append(None)
        except Exception as e:  # noqa: BLE001 -- any failure means: not a cluster that answers
            outcome.append(" ".join(str(e).split())[:120] or type(e).__name__)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    return outcome[0] if outcome else f"no answer within {CONNECT_TIMEOUT_S:g} s"


def connect(address: str, *, num_cpus: int | None = None):
    """Join the Ray cluster at `address` (or start one on this machine); returns the ``ray`` module.

    Args:
        address: ``local`` starts Ray on this machine for this command (loopback only, no dashboard); ``auto``
            joins the cluster started on this machine with ``ray start``; ``HOST:PORT`` (or ``ray://HOST:PORT``
            for Ray Client) joins the cluster whose head is there.
        num_cpus: CPUs of a ``local`` Ray (default: all of this machine's).

    Raises:
        UserError: the head at `address` does not accept a connection within `CONNECT_TIMEOUT_S` (Ray itself would
            keep retrying for a minute or more), or ``auto`` finds no cluster on this machine.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    options = {"log_to_driver": False, "logging_level": logging.WARNING, "configure_logging": True}
    if address == "local":
        os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)  # the node started here inherits it
        ray.init(num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1", **options)
        return ray
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise UserError(f"--ray {address}: expected HOST:PORT of the cluster's head (as `ray start --head` "
                            "prints it), 'auto' for a cluster started on this machine, or 'local'")
        problem = _probe(address, host.strip("[]"), int(port))
        if problem is not None:
            raise UserError(f"--ray {address}: no Ray cluster answers there ({problem}); start one with `ray start "
                            "--head` on that machine, check the address and port, or use --ray local")
    try:
        ray.init(address=address, **options)
    except ConnectionError as e:
        raise UserError(f"--ray {address}: cannot join the Ray cluster ({' '.join(str(e).split())[:200]}); start "
                        "one with `ray start --head`, or use --ray local") from None
    return ray
