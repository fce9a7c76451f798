"""`streamact serve --ray` says it serves only once Ray Serve's proxy routes to the replicas (the proxy learns its
routes a moment after `serve.run` returns and answers 404 until then)."""
from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streamact.cluster.serve import _wait_until_routed
from streamact.errors import UserError


def _proxy(answers: list[tuple[int, dict | str]]) -> ThreadingHTTPServer:
    """A stand-in for the proxy's /-/routes: the given (status, body) answers in turn, the last one repeated."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status, body = answers.pop(0) if len(answers) > 1 else answers[0]
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_waits_through_the_proxy_without_a_route_table_until_it_routes():
    answers = [(503, "no route table yet"), (200, {}), (200, {"/": "streamact"})]
    server = _proxy(answers)
    try:
        _wait_until_routed("0.0.0.0", server.server_address[1], timeout=10)
        assert answers == [(200, {"/": "streamact"})]  # it asked until the route was there
    finally:
        server.shutdown()


def test_a_proxy_that_never_routes_is_a_one_line_error():
    server = _proxy([(200, {"/other": "app"})])
    try:
        with pytest.raises(UserError, match=r"did not route to the replicas within 0.5 s"):
            _wait_until_routed("127.0.0.1", server.server_address[1], timeout=0.5)
    finally:
        server.shutdown()
