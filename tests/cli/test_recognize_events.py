"""`streamact recognize`: gesture events end to end, the source's clock under --realtime, exact frame rates."""
import json
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from streamact.cli import recognize
from streamact.cli.main import main as cli_main
from streamact.data.synthetic import GESTURE_CLASSES, iter_stream_frames
from streamact.inference.events import detect_events
from streamact.inference.streaming import StreamingEngine
from streamact.io.sources import open_source
from streamact.io.writer import VideoWriter, write_video
from streamact.models._pretrained import PretrainedCfg


class ScriptedRuntime:
    """A runtime whose k-th step returns the k-th row of `script` as probabilities, whatever the frame."""

    name = "scripted"

    def __init__(self, script, labels=GESTURE_CLASSES, frame_interval=2):
        self.script = np.asarray(script, dtype=np.float64)
        self.pretrained_cfg = PretrainedCfg(input_size=(3, 16, 16), clip_len=2, num_segments=None,
                                            frame_interval=frame_interval, num_classes=len(labels),
                                            label_names=tuple(labels))

    def init_state(self):
        return 0

    def step(self, frame, state):
        return np.log(self.script[min(state, len(self.script) - 1)])[None], state + 1


def probs(label, confidence=0.9, labels=GESTURE_CLASSES):
    p = np.full(len(labels), (1 - confidence) / (len(labels) - 1))
    p[labels.index(label)] = confidence
    return p


# 30 model steps (60 source frames at frame_interval 2): two gestures the scripted model sees clearly
SCRIPT = [probs("no_gesture")] * 5 + [probs("swipe_left")] * 6 + [probs("no_gesture")] * 6 \
    + [probs("thumb_up")] * 6 + [probs("no_gesture")] * 7
SOURCE = "synthetic:gestures?seed=1&num=3&size=64"


def run(*argv):
    return cli_main(["recognize", *map(str, argv), "--no-progress"])


@pytest.fixture
def scripted(monkeypatch):
    def load(model, *, runtime=None, precision=None, script=SCRIPT, **options):
        labels = GESTURE_CLASSES if model != "no-background" else [c for c in GESTURE_CLASSES if c != "no_gesture"]
        rows = script if model != "no-background" else [np.full(len(labels), 1 / len(labels))]
        return ScriptedRuntime(rows, labels), "scripted"

    monkeypatch.setattr(recognize, "load_runtime_or_fallback", load)


def test_events_to_file_echoed_on_stderr_shown_in_video_and_timeline(tmp_path, scripted, capsys):
    out = tmp_path / "out"
    assert run(SOURCE, "--max-frames", 60, "--events", out / "e.jsonl", "--out-jsonl", out / "p.jsonl",
               "--out-video", out / "a.mp4", "--timeline", out / "t.png") == 0
    lines = [json.loads(line) for line in (out / "e.jsonl").read_text().splitlines()]
    # the same events the detector finds on the scripted scores at the model's steps (source frames 0, 2, 4, ...)
    expected = detect_events(SCRIPT, GESTURE_CLASSES, frame_indices=range(0, 60, 2))
    assert [line["label"] for line in lines] == ["swipe_left", "thumb_up"]
    assert [(line["start_frame"], line["emitted_at_frame"]) for line in lines] == [
        (e.start_frame, e.emitted_at_frame) for e in expected]
    # synthetic streams run at 12 frames/s; the scripted gestures begin at source frames 10 and 34
    assert [line["time"] for line in lines] == pytest.approx([line["emitted_at_frame"] / 12 for line in lines],
                                                              abs=1e-3)
    assert 10 <= lines[0]["start_frame"] < 22 and 34 <= lines[1]["start_frame"] < 46
    err = capsys.readouterr().err
    assert err.count("event: ") == 2 and "event: swipe_left" in err
    assert "2 events" in err and "Levenshtein accuracy" in err and "event F1" in err
    predictions = [json.loads(line) for line in (out / "p.jsonl").read_text().splitlines()]
    assert [p["frame"] for p in predictions] == list(range(0, 60, 2))
    assert all(p["dropped"] == 0 for p in predictions)
    with av.open(str(out / "a.mp4")) as container:
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
    assert len(frames) == 60
    # the overlay gains an event line once the first event is out: its banner, darkened to a third, grows over
    # rows 34-44 (three lines of 10 rows before)
    first = lines[0]["emitted_at_frame"]
    assert frames[first][36:40].mean() < 0.6 * frames[first - 1][36:40].mean()
    assert (out / "t.png").stat().st_size > 10_000


def test_events_on_stdout_are_json_only(tmp_path, scripted, capsys):
    assert run(SOURCE, "--max-frames", 60, "--events", "-") == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["label"] for line in captured.out.splitlines()] == ["swipe_left", "thumb_up"]
    assert "event: " not in captured.err


def test_events_metrics_against_truth(tmp_path, scripted):
    """The summary scores the events against the synthetic stream's own gestures."""
    source = open_source(SOURCE)
    engine = StreamingEngine(ScriptedRuntime(SCRIPT))
    from streamact.inference.events import EventDetector

    summary = recognize.run_recognition(source, engine, detector=EventDetector(engine.labels), max_frames=60,
                                        progress=False)
    truth = [GESTURE_CLASSES[label] for _, label in iter_stream_frames(num_gestures=3, seed=1, size=32)][:60]
    gestures = [name for i, name in enumerate(truth) if name != "no_gesture" and (i == 0 or truth[i - 1] != name)]
    m = summary["metrics"]
    assert m["gestures"] == len(gestures) and m["events"] == 2
    assert summary["events"] == 2 and summary["frame_accuracy"] == m["frame_accuracy"]
    assert 0 <= m["true_positives"] <= 2 and m["levenshtein_accuracy"] <= 1


@pytest.mark.parametrize("argv,match", [
    (["--out-jsonl", "-", "--events", "-"], "cannot both write to stdout"),
    (["--model", "no-background", "--events", "{tmp}/e.jsonl"], "no 'no_gesture' class"),
])
def test_event_option_errors(tmp_path, scripted, capsys, argv, match):
    assert run(SOURCE, *[a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert match in err and err.count("\n") == 1


def test_without_background_class_there_are_simply_no_events(tmp_path, scripted, capsys):
    assert run(SOURCE, "--model", "no-background", "--max-frames", 8) == 0
    assert "0 events" in capsys.readouterr().err


class SlowEngine(StreamingEngine):
    """An engine slower than the source's frame period, so a realtime source must drop frames."""

    def push(self, frame, frame_index=None):
        time.sleep(0.03)
        return super().push(frame, frame_index)


def test_realtime_keeps_the_source_clock(tmp_path):
    rng = np.random.default_rng(0)
    clip = write_video(tmp_path / "clip.mp4", [rng.integers(0, 256, (32, 32, 3), np.uint8) for _ in range(40)],
                       fps=50)
    engine = SlowEngine(ScriptedRuntime([probs("no_gesture")], frame_interval=2))
    with open_source(clip, realtime=True) as source, open(tmp_path / "p.jsonl", "w") as jsonl:
        summary = recognize.run_recognition(source, engine, jsonl=jsonl, video_path=tmp_path / "a.mp4",
                                            progress=False)
    assert summary["dropped"] > 0 and summary["frames"] + summary["dropped"] == summary["source_frames"] == 40
    lines = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    frames = [line["frame"] for line in lines]
    assert frames == sorted(frames) and frames[-1] < 40
    assert all(b - a >= 2 for a, b in zip(frames, frames[1:]))  # frame_interval in source frames, even after drops
    assert sum(line["dropped"] for line in lines) > 0  # the JSONL says where frames went missing
    assert [line["time"] for line in lines] == pytest.approx([f / 50 for f in frames], abs=1e-3)
    with av.open(str(tmp_path / "a.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 50
        assert sum(1 for _ in container.decode(stream)) == 40  # as long as the source: dropped frames held


def test_overlay_shows_the_last_event_and_marks_dropped_frames():
    from streamact.inference.events import Event

    frame = np.full((64, 64, 3), 200, np.uint8)
    plain, marked = (recognize.annotate_frame(frame, dropped=d) for d in (False, True))
    with_event = recognize.annotate_frame(frame, event=Event("push", 5, 10, 12, 12, 0.9, "early"))
    assert ((with_event[..., 0] > 200) & (with_event[..., 2] < 120)).any()  # yellow text
    def banner_rows(image):  # rows darkened behind the text
        return int((np.median(image, axis=(1, 2)) < 100).sum())

    assert banner_rows(marked) > banner_rows(plain)  # one more line
    assert (marked[..., 0].astype(int) - marked[..., 1]).max() > 100  # in red


def test_ntsc_frame_rate_is_kept_exactly(tmp_path):
    ntsc = Fraction(30000, 1001)
    rng = np.random.default_rng(0)
    with VideoWriter(tmp_path / "ntsc.mp4", ntsc) as writer:
        for _ in range(30):
            writer.write(rng.integers(0, 256, (32, 32, 3), np.uint8))
    engine = StreamingEngine(ScriptedRuntime([probs("no_gesture")]))
    with open_source(tmp_path / "ntsc.mp4") as source:
        assert source.fps == pytest.approx(29.97, abs=0.01)
        recognize.run_recognition(source, engine, video_path=tmp_path / "out.mp4", progress=False)
    for path in ("ntsc.mp4", "out.mp4"):
        with av.open(str(tmp_path / path)) as container:
            stream = container.streams.video[0]
            assert stream.average_rate == ntsc, path
            assert float(container.duration / 1e6) == pytest.approx(30 / float(ntsc), abs=1e-3)


def test_help_says_how_often_the_model_steps(capsys):
    with pytest.raises(SystemExit):
        run("--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "every 2nd frame" in text and "--events" in text


@pytest.mark.export
def test_exported_model_with_bad_event_settings_is_a_one_line_error(tmp_path, capsys):
    from streamact import create_model
    from streamact.export.onnx import export_onnx
    from streamact.export.validate import sidecar_path

    model = create_model("tsm_mobilenetv2_100", num_classes=len(GESTURE_CLASSES), num_segments=2, causal=True,
                         img_size=32, label_names=GESTURE_CLASSES).eval()
    path = export_onnx(model, tmp_path / "step.onnx", streaming=True)
    sidecar = json.loads(sidecar_path(path).read_text())
    sidecar["pretrained_cfg"]["events"]["on_threshold"] = 1.5
    sidecar_path(path).write_text(json.dumps(sidecar))
    assert run(SOURCE, "--model", path, "--max-frames", 4) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "event settings: on_threshold must be in (0, 1], got 1.5" in err
