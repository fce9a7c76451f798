"""The live page in headless Chromium with a fake camera playing a synthetic video: with the gesture model, its
predictions and events must be the ones `streamact recognize` gives on the frames the model stepped on (every one
of them, whatever the server dropped as stale); with a detection model, it draws the boxes where the video shows
them.

Chromium is Debian's (/usr/bin/chromium, installed by the CI setup); Playwright only drives it.
"""
from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

pytest.importorskip("fastapi")
playwright = pytest.importorskip("playwright.sync_api")
from serve_helpers import serve_in_thread, tiny_detector  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
FPS = 6  # slow enough that a busy test machine (CI runs two workers on two cores) drops no frames
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium "
                                                   "(apt-get install chromium chromium-driver; CI installs it)")]


def write_y4m(path: Path, frames) -> int:
    """RGB frames (one size) as a raw y4m video (what Chromium's fake camera plays); returns their number."""
    count = 0
    with av.open(str(path), "w", format="yuv4mpegpipe") as container:
        stream = container.add_stream("rawvideo", rate=FPS)
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            if not count:
                stream.height, stream.width = frame.shape[:2]
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
            count += 1
        container.mux(stream.encode())
    return count


@pytest.fixture(scope="module")
def server():
    from streamact.cli.recognize import DEFAULT_MODEL, load_runtime_or_fallback
    from streamact.serve.app import create_app

    runtime, _ = load_runtime_or_fallback(DEFAULT_MODEL)
    with serve_in_thread(create_app(runtime, model_name=DEFAULT_MODEL)) as url:
        yield url


def run_page(url: str, video: Path, duration_s: float, inspect=None) -> tuple[dict, list[bytes], object]:
    """Open the page with `video` as the camera until the video has played once: what the page saw, the frames it
    sent (as the WebSocket carried them), and what ``inspect(page)`` returns (called at the end, if given)."""
    sent: list[bytes] = []

    def watch(ws) -> None:
        ws.on("framesent", lambda payload: sent.append(payload) if isinstance(payload, bytes) else None)

    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=[
            "--no-sandbox", "--disable-background-networking", "--disable-component-update", "--no-first-run",
            "--disable-gpu", "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}"])
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 800})
            page.on("websocket", watch)
            page.goto(url + "/?format=png")
            # The fake camera loops the video; one pass (plus a little for the last results) is enough.
            page.wait_for_function(f"window.streamact.sent.length && "
                                   f"window.streamact.sent.at(-1).mediaTime > {duration_s + 0.5}", timeout=90_000)
            page.wait_for_timeout(500)
            inspected = None if inspect is None else inspect(page)
            return json.loads(page.evaluate("JSON.stringify(window.streamact)")), sent, inspected
        finally:
            browser.close()


def test_page_shows_what_recognize_gives_on_the_frames_it_sent(server, tmp_path):
    from streamact.cli.main import main
    from streamact.data.synthetic.streams import iter_stream_frames

    video = tmp_path / "gestures.y4m"
    num_frames = write_y4m(video, (frame for frame, _ in iter_stream_frames(num_gestures=4, seed=3)))
    seen, sent, _ = run_page(server, video, num_frames / FPS)
    assert seen["hello"]["model"] and not seen["errors"] and seen["closed"] is None
    # The fake camera's media time of frame k is (k + 1) / fps: it names the video frame each sent frame showed.
    source_index = [round(s["mediaTime"] * FPS) - 1 for s in seen["sent"]]
    first_pass = sum(i < num_frames for i in source_index)
    assert first_pass > 0.8 * num_frames  # the browser sent most frames of the video
    # The model stepped on the frames the page got predictions for: every frame_interval-th frame it sent, shifted
    # after any frame the server dropped as stale (on a busy machine). The same frames, lossless, through `streamact
    # recognize`: a frame folder holding each of them frame_interval times, so that it steps on each once.
    interval = seen["hello"]["frame_interval"]
    page = [p for p in seen["predictions"] if p["frame"] < first_pass]
    assert len(page) > 0.5 * first_pass / interval  # the server stepped on most of what it could
    folder = tmp_path / "stepped"
    folder.mkdir()
    for k, p in enumerate(page):
        for copy in range(interval):
            (folder / f"{k * interval + copy:05d}.png").write_bytes(sent[p["frame"]])
    assert main(["recognize", str(folder), "--out-jsonl", str(tmp_path / "p.jsonl"), "--events",
                 str(tmp_path / "e.jsonl"), "--no-progress"]) == 0
    reference = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    reference_events = [json.loads(line) for line in (tmp_path / "e.jsonl").read_text().splitlines()]
    assert len(reference) == len(page) and len(reference_events) >= 3
    for p, r in zip(page, reference):
        assert p["label"] == r["label"], p["frame"]
        assert abs(p["score"] - r["score"]) < 1e-3
    # Events count model steps, so they are the same once the reference's frame numbers name the page's frames;
    # the last step is left out (`recognize` also reports, at the end of its input, a gesture still going on).
    page_frame = [p["frame"] for p in page]
    page_events = [(e["label"], e["start_frame"]) for e in seen["events"] if e["emitted_at_frame"] < page_frame[-1]]
    assert len(page_events) >= 2
    assert page_events == [(e["label"], page_frame[e["start_frame"] // interval]) for e in reference_events
                           if e["emitted_at_frame"] < (len(page) - 1) * interval]


# The overlay after the camera is stopped (no more redraws): the last prediction, the sizes the boxes are mapped
# through, the canvas's alpha channel, and the label, bars and headings shown.
OVERLAY = """() => {
  document.getElementById("toggle").click();
  const canvas = document.getElementById("overlay"), video = document.getElementById("camera");
  const alpha = Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data
                           .filter((_, i) => i % 4 === 3));
  return {prediction: window.streamact.predictions.at(-1), canvas: [canvas.width, canvas.height],
          video: [video.videoWidth, video.videoHeight], alpha,
          label: document.getElementById("label").textContent,
          bars_title: document.getElementById("bars-title").textContent,
          events_hidden: document.getElementById("event-log").hidden,
          bars: Array.from(document.querySelectorAll("#topk li span:first-of-type"), (e) => e.textContent)};
}"""


def test_page_draws_each_box_with_its_tube_id_over_the_video(tmp_path):
    """A detection model: the boxes of the last prediction are drawn where the video shows them, with their labels,
    scores and tube ids; the bars list the detections."""
    pytest.importorskip("torch")
    from streamact.inference.runtimes import TorchRuntime
    from streamact.io.sources import open_source
    from streamact.serve.app import create_app

    video = tmp_path / "scene.y4m"
    with open_source("synthetic:detection?frames=36&size=160") as source:
        num_frames = write_y4m(video, (frame for frame, _ in source))
    with serve_in_thread(create_app(TorchRuntime(tiny_detector()))) as url:
        seen, _, shown = run_page(url, video, num_frames / FPS, inspect=lambda page: page.evaluate(OVERLAY))
    assert seen["hello"]["task"] == "detection" and not seen["errors"]
    last = shown["prediction"]
    assert sum(len(p["detections"]) for p in seen["predictions"]) > 0 and last["detections"]
    best = max(last["detections"], key=lambda d: d["score"])
    assert shown["label"] == f"{best['label']} {best['score']:.2f} #{best['tube']}"
    assert shown["bars_title"] == "Detections (tube, label, score)" and shown["events_hidden"]
    assert sorted(shown["bars"]) == sorted(f"#{d['tube']} {d['label']}" for d in last["detections"])
    # Where each box must be: the sent frame's pixels -> the video's (scaled to fit the element, centred).
    (width, height), (video_w, video_h) = shown["canvas"], shown["video"]
    alpha = np.array(shown["alpha"]).reshape(height, width)
    fit = min(width / video_w, height / video_h)
    left, top = (width - video_w * fit) / 2, (height - video_h * fit) / 2
    scale_x, scale_y = video_w * fit / last["width"], video_h * fit / last["height"]
    drawn = np.zeros_like(alpha, bool)
    for d in last["detections"]:
        x1, y1, x2, y2 = d["box"]
        x1, x2 = round(left + x1 * scale_x), round(left + x2 * scale_x)
        y1, y2 = round(top + y1 * scale_y), round(top + y2 * scale_y)
        assert alpha[(y1 + y2) // 2, max(x1 - 1, 0):x1 + 2].any() and alpha[(y1 + y2) // 2, x2 - 1:x2 + 2].any()
        drawn[max(y1 - 20, 0):y2 + 2, max(x1 - 2, 0):x2 + 2] = True  # the box, its label above it
    assert alpha[drawn].any() and not alpha[~drawn].any()  # nothing drawn anywhere else
