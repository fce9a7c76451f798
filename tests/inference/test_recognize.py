"""`streamact recognize` end to end on tiny checkpoints, its bad-input behaviour, and flat memory over long streams."""
import json
import os
import warnings

import av
import numpy as np
import pytest
from PIL import Image

from streamact import create_model
from streamact.cli.main import main as cli_main
from streamact.data.synthetic import GESTURE_CLASSES, iter_stream_frames
from streamact.engine.checkpoint import save_checkpoint
from streamact.engine.config import config_to_dict, load_config
from streamact.engine.build import build_model_from_config
from streamact.inference.predictor import load_model_for_streaming
from streamact.inference.streaming import StreamingEngine
from streamact.io.writer import write_video

TINY = ["--model.name=tsm_mobilenetv2_100", "--model.pretrained=false", "--data.input_size=48", "--data.clip_len=4"]


def make_checkpoint(path, *, causal=True):
    cfg = load_config(None, TINY + (["--model.kwargs.causal=true"] if causal else []))
    model = build_model_from_config(cfg, GESTURE_CLASSES, pretrained=False)
    save_checkpoint({"model": model.state_dict(), "config": config_to_dict(cfg), "class_names": GESTURE_CLASSES,
                     "epoch": 1, "step": 1}, path)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny.pt")


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (56, 72, 3), dtype=np.uint8) for _ in range(12)]
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames, fps=12)


def run(*argv):
    return cli_main(["recognize", *map(str, argv), "--no-progress"])


def read_jsonl(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def decoded_frames(path):
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def test_video_file_to_jsonl_annotated_mp4_and_timeline(tmp_path, checkpoint, clip, capsys):
    out = tmp_path / "out"
    rc = run(clip, "--model", checkpoint, "--out-jsonl", out / "p.jsonl", "--out-video", out / "a.mp4",
             "--timeline", out / "t.png")
    assert rc == 0
    lines = read_jsonl(out / "p.jsonl")
    assert [r["frame"] for r in lines] == list(range(12))
    assert {"label", "score", "topk", "latency_ms", "time"} <= set(lines[0])
    assert all(r["label"] in GESTURE_CLASSES and 0 <= r["score"] <= 1 for r in lines)
    frames = decoded_frames(out / "a.mp4")
    assert len(frames) == 12 and frames[0].shape == (56, 72, 3)
    assert (out / "t.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    err = capsys.readouterr().err
    assert "12 frames, 12 predictions, 0 events, 0 dropped, 0 corrupt" in err and "latency p50" in err


def test_stride_and_jsonl_on_stdout(checkpoint, clip, capsys):
    assert run(clip, "--model", checkpoint, "--stride", "5", "--out-jsonl", "-") == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["frame"] for r in lines] == [0, 5, 10]


def test_synthetic_source_scores_against_ground_truth(tmp_path, checkpoint, capsys):
    out = tmp_path / "p.jsonl"
    rc = run("synthetic:gestures?seed=2&num=3&size=48", "--model", checkpoint, "--out-jsonl", out,
             "--timeline", tmp_path / "t.png", "--max-frames", 30)
    assert rc == 0
    lines = read_jsonl(out)
    truth = [GESTURE_CLASSES[label] for _, label in iter_stream_frames(num_gestures=3, seed=2, size=48)][:30]
    assert [r["truth"] for r in lines] == truth
    assert "frame accuracy" in capsys.readouterr().err
    assert (tmp_path / "t.png").stat().st_size > 0


def test_frames_changing_size_gray_and_rgba(tmp_path, checkpoint):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    shapes = [(40, 60), (40, 60, 4), (77, 33, 3), (40, 60, 3), (64, 64)]  # gray, RGBA, then sizes change
    for i, shape in enumerate(shapes):
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(folder / f"{i:03d}.png")
    rc = run(folder, "--model", checkpoint, "--out-jsonl", tmp_path / "p.jsonl", "--out-video", tmp_path / "a.mp4")
    assert rc == 0
    assert len(read_jsonl(tmp_path / "p.jsonl")) == len(shapes)
    frames = decoded_frames(tmp_path / "a.mp4")
    assert len(frames) == len(shapes) and {f.shape for f in frames} == {(40, 60, 3)}  # the first frame's size


def test_source_failing_mid_stream_leaves_valid_partial_output(tmp_path, checkpoint, capsys):
    path = tmp_path / "cut.mp4"
    rng = np.random.default_rng(0)
    with av.open(str(path), "w", options={"movflags": "faststart"}) as container:  # index first: opens, then fails
        stream = container.add_stream("libx264", rate=12)
        stream.height, stream.width, stream.pix_fmt = 48, 64, "yuv420p"
        for _ in range(24):
            frame = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    rc = run(path, "--model", checkpoint, "--out-jsonl", tmp_path / "p.jsonl", "--out-video", tmp_path / "a.mp4")
    assert rc == 1
    lines = read_jsonl(tmp_path / "p.jsonl")
    assert 0 < len(lines) < 24 and [r["frame"] for r in lines] == list(range(len(lines)))
    assert len(decoded_frames(tmp_path / "a.mp4")) == len(lines)
    err = capsys.readouterr().err
    assert "failed mid-stream" in err and "truncated" in err


def test_jsonl_is_flushed_as_it_goes(tmp_path, checkpoint, clip, monkeypatch):
    out = tmp_path / "p.jsonl"
    seen = []
    push = StreamingEngine.push

    def checking_push(self, frame, frame_index=None):
        # Before frame k is processed, k predictions must already be readable by another process.
        seen.append(len(out.read_text().splitlines()) if out.exists() else 0)
        return push(self, frame, frame_index)

    monkeypatch.setattr(StreamingEngine, "push", checking_push)
    assert run(clip, "--model", checkpoint, "--out-jsonl", out) == 0
    assert seen == list(range(12))


def test_interrupt_finalises_outputs(tmp_path, checkpoint, clip, monkeypatch, capsys):
    push = StreamingEngine.push

    def interrupted_push(self, frame, frame_index=None):
        if self.frame_index == 4:  # the sixth frame
            raise KeyboardInterrupt
        return push(self, frame, frame_index)

    monkeypatch.setattr(StreamingEngine, "push", interrupted_push)
    rc = run(clip, "--model", checkpoint, "--out-jsonl", tmp_path / "p.jsonl", "--out-video", tmp_path / "a.mp4")
    assert rc == 130
    assert len(read_jsonl(tmp_path / "p.jsonl")) == 5
    assert len(decoded_frames(tmp_path / "a.mp4")) == 5
    assert "interrupted" in capsys.readouterr().err


@pytest.mark.export
@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_checkpoint_on_exported_runtimes_matches_torch(tmp_path, checkpoint, clip, runtime):
    pytest.importorskip(runtime)
    assert run(clip, "--model", checkpoint, "--runtime", "torch", "--out-jsonl", tmp_path / "torch.jsonl") == 0
    assert run(clip, "--model", checkpoint, "--runtime", runtime, "--precision", "fp32",
               "--out-jsonl", tmp_path / "other.jsonl") == 0
    expected, lines = read_jsonl(tmp_path / "torch.jsonl"), read_jsonl(tmp_path / "other.jsonl")
    assert [r["label"] for r in lines] == [r["label"] for r in expected]
    np.testing.assert_allclose([r["score"] for r in lines], [r["score"] for r in expected], atol=1e-4)


@pytest.mark.parametrize("argv,match", [
    (["97", "--model", "{ckpt}"], "camera 97"),
    (["{clip}", "--model", ""], "no model given"),
    (["{clip}", "--model", "{tmp}/missing.pt"], "checkpoint not found"),
    (["{clip}", "--model", "{tmp}/missing"], "no registered model has that name"),
    (["{clip}", "--model", "{tmp}/weights.bin"], "unknown model format"),
    (["{clip}", "--model", "{ckpt}", "--stride", "0"], "--stride must be at least 1"),
])
def test_bad_arguments_are_clear_errors(tmp_path, checkpoint, clip, capsys, argv, match):
    if argv[0] == "97":
        pytest.importorskip("cv2")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    argv = [a.format(ckpt=checkpoint, clip=clip, tmp=tmp_path) for a in argv]
    assert run(*argv) == 2
    assert match in capsys.readouterr().err


def test_bidirectional_checkpoint_is_made_causal_with_a_warning(tmp_path, checkpoint):
    path = make_checkpoint(tmp_path / "bidir.pt", causal=False)
    with pytest.warns(UserWarning, match="bi-directional"):
        model = load_model_for_streaming(path)
    assert not any(layer.bidirectional for _, layer in model.temporal_layers())
    assert not model.training
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a causal checkpoint loads silently
        model = load_model_for_streaming(checkpoint)
    assert model.pretrained_cfg.label_names == tuple(GESTURE_CLASSES)


def _rss_bytes():
    with open("/proc/self/statm") as f:
        resident_pages = int(f.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def test_memory_stays_flat_over_a_long_stream():
    model = create_model("tsm_mobilenetv2_100", num_classes=len(GESTURE_CLASSES), num_segments=4, causal=True,
                         img_size=32, label_names=GESTURE_CLASSES).eval()
    engine = StreamingEngine(model, smoothing="window")
    rss = {}
    for i, (frame, _) in enumerate(iter_stream_frames(seed=0, size=32)):
        engine.push(frame)
        if i + 1 in (500, 2500):
            rss[i + 1] = _rss_bytes()
        if i + 1 == 2500:
            break
    assert engine.num_processed == 2500
    growth = rss[2500] - rss[500]
    assert growth < 30 * 2**20, f"RSS grew by {growth / 2**20:.1f} MB between frames 500 and 2500"


def test_plot_timeline(tmp_path):
    from streamact.viz import plot_timeline

    pred = [-1, -1, 0, 0, 2, 2, 2, 1]
    path = plot_timeline(pred, ["a", "b", "c"], tmp_path / "t.png", true_labels=[0, 0, 0, 1, 2, 2, 1, 1],
                         scores=[np.nan, np.nan, 0.5, 0.6, 0.9, 0.8, 0.7, 0.4], fps=4, title="toy")
    assert path.read_bytes()[:4] == b"\x89PNG"
    plot_timeline(pred, ["a", "b", "c"], tmp_path / "bare.png")  # prediction only
    with pytest.raises(ValueError, match="true labels"):
        plot_timeline(pred, ["a", "b", "c"], tmp_path / "x.png", true_labels=[0])
    with pytest.raises(ValueError, match="out of range"):
        plot_timeline([5], ["a", "b", "c"], tmp_path / "x.png")
