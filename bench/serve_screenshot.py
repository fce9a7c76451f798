"""Screenshot of the live page (`streamact serve`) with a synthetic video as the browser's camera.

    synthetic gesture stream or detection scene ──► y4m ──► Debian's Chromium, fake camera (Playwright)
    ──► `streamact serve --model MODEL` (its own process, loopback) ──► the page after SECONDS ──► PNG

    python bench/serve_screenshot.py                                   # docs/serve_screenshot.png (gestures)
    python bench/serve_screenshot.py --model amma_efficientnet_lite0_actions --seconds 9 \
        --out docs/serve_screenshot_detection.png                      # a moment with an action in view

Needs the [serve] and [dev] extras and /usr/bin/chromium (`apt-get install chromium chromium-driver`).
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import av

CHROMIUM = "/usr/bin/chromium"
FPS = 12


def write_y4m(path: Path, source: str, num_frames: int) -> None:
    """`num_frames` frames of a source as the raw y4m video Chromium's fake camera plays."""
    from streamact.io.sources import open_source

    with open_source(source) as frames, av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=FPS)
        stream.pix_fmt = "yuv420p"
        for i, (frame, _) in enumerate(frames):
            if i == num_frames:
                break
            if not i:
                stream.height, stream.width = frame.shape[:2]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def main() -> None:
    from playwright.sync_api import sync_playwright

    from streamact.cli.detect import DEFAULT_MODEL as DETECTOR
    from streamact.cli.recognize import DEFAULT_MODEL

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seconds", type=float, default=12.0, help="how long the page runs before the screenshot")
    parser.add_argument("--out", type=Path, default=Path("docs/serve_screenshot.png"))
    args = parser.parse_args()

    source = ("synthetic:detection?seed=3&frames=400&size=320" if args.model == DETECTOR
              else "synthetic:gestures?seed=3&num=inf&size=320")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "streamact", "serve", "--model", args.model, "--port", str(port)])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            video = Path(tmp) / "camera.y4m"
            write_y4m(video, source, int((args.seconds + 5) * FPS))
            for _ in range(600):  # the server answers once its model is loaded and warmed up
                try:
                    urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                    break
                except OSError:
                    time.sleep(0.2)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--disable-background-networking", "--disable-component-update",
                    "--no-first-run", "--disable-gpu", "--use-fake-ui-for-media-stream",
                    "--use-fake-device-for-media-stream", f"--use-file-for-fake-video-capture={video}"])
                page = browser.new_page(viewport={"width": 1280, "height": 800})
                page.goto(f"http://127.0.0.1:{port}/")
                page.wait_for_timeout(args.seconds * 1000)
                args.out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(args.out))
                browser.close()
    finally:
        server.terminate()
        server.wait(30)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
