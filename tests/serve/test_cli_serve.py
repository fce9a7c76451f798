"""`streamact serve` on the command line: bad options are one-line errors before any model loads; the server
package itself imports no torch (the runtime comes from the caller), and the default server runs the shipped
OpenVINO IR without it."""
from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request

import pytest
from no_torch import NO_ATTEMPTS, lean_env, without_torch
from serve_helpers import encode, free_port, solid

from streamact.cli.main import main
from streamact.cli.recognize import DEFAULT_MODEL
from streamact.export.bundle import bundled_export


@pytest.mark.parametrize("argv, message", [
    (["--max-streams", "0"], "--max-streams must be positive, got 0"),
    (["--max-fps", "-1"], "--max-fps must be positive"),
    (["--allow-dir", "no/such/folder"], "--allow-dir no/such/folder: no such folder"),
])
def test_bad_options_are_one_line_errors(argv, message, capsys):
    assert main(["serve", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_help_says_it_binds_loopback_by_default(capsys):
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    assert "default 127.0.0.1" in capsys.readouterr().out


def test_server_modules_import_no_torch():
    code = ("import sys, streamact.serve.app, streamact.serve.session, streamact.serve.loadgen; "
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], stdin=subprocess.DEVNULL, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def wait_until_serving(server: subprocess.Popen, base: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, server.communicate()[1]
        try:
            with urllib.request.urlopen(f"{base}/healthz", timeout=2):
                return
        except OSError:
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)


@pytest.mark.slow  # a server process loading the bundled model
@pytest.mark.skipif(bundled_export(DEFAULT_MODEL) is None, reason="no shipped IR")
def test_default_server_runs_the_shipped_ir_without_torch(tmp_path):
    """`streamact serve` with the bundled model: the shipped OpenVINO IR, not one import of torch on the way, from
    start to predictions over a WebSocket to shutdown."""
    connect = pytest.importorskip("websockets.sync.client").connect
    port = free_port()
    code = without_torch(f"""
        import sys
        from streamact.cli.main import main
        code = main(["serve", "--port", "{port}"])
        print("torch loaded:", "torch" in sys.modules, file=sys.stderr)
        sys.exit(code)
    """)
    server = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True, env=lean_env(tmp_path / "cache"))
    try:
        wait_until_serving(server, f"http://127.0.0.1:{port}")
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=30) as ws:
            hello = json.loads(ws.recv(30))
            assert hello["runtime"] == "openvino" and hello["model"] == DEFAULT_MODEL
            predictions = []
            for i in range(6):  # one frame at a time (none dropped): the model steps on every frame_interval-th
                ws.send(encode(solid((40 * i, 80, 160), 96), "JPEG"))
                processed = i
                while processed < i + 1:
                    ws.send('{"type": "ping"}')
                    while (message := json.loads(ws.recv(30)))["type"] != "pong":
                        predictions += [message["frame"]] if message["type"] == "prediction" else []
                    processed = message["processed"]
        assert predictions == list(range(0, 6, hello["frame_interval"]))
    finally:
        server.send_signal(signal.SIGINT)  # uvicorn shuts down cleanly and main returns
        err = server.communicate(timeout=60)[1]
    assert server.returncode == 0, err
    assert NO_ATTEMPTS in err and "torch loaded: False" in err, err
