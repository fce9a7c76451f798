"""`streamact serve [--model MODEL] [--host 127.0.0.1] [--port 8000]`: the live page and the stream server.

Open http://HOST:PORT/ in a browser: it sends the camera's frames over a WebSocket and shows the live label, the
top classes, the gesture events, a timeline, latency and frames/s; a detection model's boxes, labels, scores and
tube ids are drawn over the video. The stream API (OpenAPI schema at /docs) opens server-side sources (files
under --allow-dir, URLs under --allow-url, cameras with --allow-camera, synthetic streams) and pushes
their results over WebSocket or Server-Sent Events, or lets them be polled as JSON. Every stream keeps its own
state on one shared model; idle streams are closed and their state freed.

Safe by default: binds 127.0.0.1 (use --host 0.0.0.0 to serve other machines, with --token), refuses frames,
messages, frame rates and stream counts over the limits with a clear error code, and opens no local file or URL
that is not allowed explicitly.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_parser(subparsers, name: str) -> argparse.ArgumentParser:
    from streamact.cli.recognize import DEFAULT_MODEL
    from streamact.serve.limits import Limits

    d = Limits()
    p = subparsers.add_parser(name, help="serve the live web page and the multi-stream API",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=DEFAULT_MODEL,
                   help="model to serve: a recognizer, as for `streamact recognize` (default: the bundled "
                        f"{DEFAULT_MODEL}), or a detection checkpoint or export, as for `streamact detect`")
    p.add_argument("--runtime", choices=("openvino", "onnxruntime", "torch"),
                   help="inference engine (default: openvino, falling back to torch if it cannot load)")
    p.add_argument("--precision", choices=("fp32", "bf16"), help="inference precision (default: the runtime's)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--token", help="require this token on every API call and WebSocket (default: none)")
    p.add_argument("--allow-dir", action="append", default=[], type=Path, metavar="DIR",
                   help="let the API open video files and frame folders inside DIR (repeatable; default: none)")
    p.add_argument("--allow-url", action="append", default=[], metavar="PREFIX",
                   help="let the API open rtsp/http(s) streams whose URL starts with PREFIX (repeatable)")
    p.add_argument("--allow-camera", action="store_true", help="let the API open the server's cameras")
    p.add_argument("--max-streams", type=int, default=d.max_streams,
                   help=f"streams open at once (default {d.max_streams})")
    p.add_argument("--max-fps", type=float, default=d.max_fps, help=f"frames/s per stream (default {d.max_fps:g})")
    p.add_argument("--max-message-bytes", type=int, default=d.max_message_bytes,
                   help=f"size of one encoded frame (default {d.max_message_bytes})")
    p.add_argument("--max-frame-pixels", type=int, default=d.max_frame_pixels,
                   help=f"width x height of one frame (default {d.max_frame_pixels})")
    p.add_argument("--idle-timeout", type=float, default=d.idle_timeout_s,
                   help=f"close a stream after this many seconds without frames (default {d.idle_timeout_s:g})")
    p.add_argument("--workers", type=int, help="inference threads (default: one per CPU)")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="serve as Ray Serve replicas behind Ray's proxy on --host:--port: HOST:PORT of a cluster's "
                        "head, 'auto' for the cluster started here with `ray start`, or nothing to start Ray here")
    p.add_argument("--replicas", type=int, default=1, help="copies of the server on the Ray cluster, each with its "
                                                           "own model and streams (with --ray)")
    return p


def main(args: argparse.Namespace) -> int:
    from streamact.cli.recognize import load_runtime_or_fallback
    from streamact.errors import UserError

    for option in ("max_streams", "max_fps", "max_message_bytes", "max_frame_pixels", "idle_timeout", "workers",
                   "replicas"):
        value = getattr(args, option)
        if value is not None and value <= 0:
            print(f"error: --{option.replace('_', '-')} must be positive, got {value}", file=sys.stderr)
            return 2
    for folder in args.allow_dir:
        if not folder.is_dir():
            print(f"error: --allow-dir {folder}: no such folder", file=sys.stderr)
            return 2
    try:
        import uvicorn

        from streamact.serve.app import SourcePolicy, create_app, uvicorn_options
        from streamact.serve.limits import Limits
    except ImportError as e:
        print(f"error: {e.name} is missing; install the server with: pip install 'streamact[serve]'", file=sys.stderr)
        return 2
    try:
        runtime, runtime_name = load_runtime_or_fallback(args.model, runtime=args.runtime, precision=args.precision)
    except (FileNotFoundError, ValueError, ImportError, UserError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    limits = Limits(max_streams=args.max_streams, max_message_bytes=args.max_message_bytes,
                    max_frame_pixels=args.max_frame_pixels, max_fps=args.max_fps, idle_timeout_s=args.idle_timeout)
    policy = SourcePolicy(roots=tuple(args.allow_dir), url_prefixes=tuple(args.allow_url), cameras=args.allow_camera)
    if args.host not in ("127.0.0.1", "localhost", "::1") and args.token is None:
        print(f"warning: serving on {args.host} without --token: anyone who reaches this port can use it",
              file=sys.stderr)
    if args.ray is not None:  # the model loaded above, so a bad one was one clear error before Ray starts
        from streamact.cluster.serve import ServerSpec, serve_replicas

        spec = ServerSpec(str(args.model), runtime=args.runtime, precision=args.precision,
                          app_options={"limits": limits, "policy": policy, "token": args.token,
                                       "workers": args.workers})
        del runtime
        serve_replicas(spec, address=args.ray, replicas=args.replicas, host=args.host, port=args.port)
        return 0
    if args.replicas != 1:
        raise UserError("--replicas needs --ray (replicas run on Ray Serve); without it one server runs here")
    app = create_app(runtime, model_name=str(args.model), limits=limits, policy=policy, token=args.token,
                     workers=args.workers)
    print(f"serving {args.model} ({runtime_name}) on http://{args.host}:{args.port}/", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", **uvicorn_options(limits))
    return 0
