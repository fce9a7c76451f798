"""The detection benchmark: synthetic tubelets for the linking sweep, end-to-end timing of a detector, its goals
judged from a run's numbers, its report and the linking plot."""
import numpy as np
import pytest
import torch
from PIL import Image

from streamact.benchmark import TASKS, load_task
from streamact.benchmark.detection import (
    CLIP_LEN,
    LINK_PLOT,
    VARIANTS,
    end_to_end,
    goals,
    linking_ms,
    synthetic_tubelets,
    to_markdown,
    write_artifacts,
)
from streamact.inference.runtimes import TorchRuntime
from streamact.io.sources import open_source
from streamact.io.writer import write_video


def _per_frame(variant, runtime, cached_ms, recompute_ratio):
    return [{"variant": variant, "runtime": runtime, "what": "cached step / t", "ms_per_frame": cached_ms,
             "vs_cached": 1.0},
            {"variant": variant, "runtime": runtime, "what": "recompute 5 clips / t",
             "ms_per_frame": cached_ms * recompute_ratio, "vs_cached": recompute_ratio},
            {"variant": variant, "runtime": runtime, "what": "MOC-style: backbone on every frame + head",
             "ms_per_frame": cached_ms * 3, "vs_cached": 3.0}]


def _result(*, ratio, fps):
    per_frame = [row for v in VARIANTS for rt in ("torch eager fp32", "openvino bf16")
                 for row in _per_frame(v, rt, 10.0, ratio)]
    runtimes = [{"variant": v, "runtime": "openvino bf16", "ms_per_step": 20.0, "frames_per_s": 200.0,
                 "speedup_vs_torch": 5.0} for v in VARIANTS]
    share = {"decode video": 0.1, "model": 0.5, "linking": 0.2, "preprocess + tubelet decoding": 0.2}
    e2e = [{"variant": v, "runtime": "openvino bf16", "frames": 300, "frames_per_s": fps, "steps": 75,
            "share": share} for v in VARIANTS]
    linking = {"steps": 50, "vs_num_clips": [{"num_clips": k, "actors": 3, "ms_per_step": 1.0 + k} for k in (1, 5)],
               "vs_actors": [{"num_clips": 5, "actors": n, "ms_per_step": 2.0 + n / 10} for n in (1, 50)]}
    streams = [{"engine": engine, "frames": 3000, "rss_start_mb": 500.0, "rss_end_mb": 500.0 + growth,
                "growth_mb": growth, "rss_samples_mb": [500.0, 500.0 + growth]}
               for engine, growth in (("live stream", 0.0), ("file", 0.5))]
    memory = {"variant": "amma_mobilenetv2", "size": 96, "runtime": "openvino bf16", "streams": streams}
    return {"quick": True, "size": 288, "num_clips": 5, "clip_len": 4, "num_classes": 24, "per_frame": per_frame,
            "runtimes": runtimes, "end_to_end": e2e, "linking": linking, "memory": memory}


def test_the_task_is_registered():
    assert TASKS["detection"] == "streamact.benchmark.detection"
    assert load_task("detection").SECTION == "detection"


def test_goals_follow_the_numbers():
    met = {r["goal"]: r["met"] for r in goals(_result(ratio=4.1, fps=120.0))}
    assert met["cached >= 4.0x cheaper per frame than recomputing 5 clips (AMMA_M, openvino bf16, 1 thread)"] == "yes"
    assert all(v == "yes" for v in met.values()) and len(met) == 2 * len(VARIANTS) + len(VARIANTS)
    missed = {r["goal"]: r["met"] for r in goals(_result(ratio=3.9, fps=50.0))}
    assert missed[">= 30 frames/s end to end on 640×480 (AMMA_18, openvino bf16)"] == "yes"  # AMMA_18's goal is 30
    assert missed[">= 100 frames/s end to end on 640×480 (AMMA_S, openvino bf16)"] == "**no**"
    assert missed["cached >= 4.0x cheaper per frame than recomputing 5 clips (AMMA_18, torch eager fp32, 1 thread)"] \
        == "**no**"


def test_markdown_names_the_variants_and_links_the_plot():
    text = to_markdown(_result(ratio=4.1, fps=120.0))
    assert "| AMMA EfficientNet-Lite0 | openvino bf16 | 300 | 120.000 | 150.000 | 10% | 50% | 20% | 20% |" in text
    assert f"]({LINK_PLOT})" in text
    assert "- live stream: RSS 500.0 MB → 500.0 MB over 3000 streamed frames (+0.0 MB" in text
    assert "- file: RSS 500.0 MB → 500.5 MB over 3000 streamed frames (+0.5 MB" in text
    assert "amma_" not in text.replace("`", "")  # the product's names, not registry keys


def test_linking_plot_is_a_png(tmp_path):
    (path,) = write_artifacts(_result(ratio=4.1, fps=120.0), tmp_path)
    assert path == tmp_path / LINK_PLOT
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400


def test_synthetic_tubelets_follow_the_actors():
    rng = np.random.default_rng(0)
    actors = np.array([[10.0, 20.0, 60.0, 100.0], [300.0, 200.0, 350.0, 260.0]])
    velocity = np.array([[1.0, 0.0], [0.0, -2.0]])
    tubelets = synthetic_tubelets(rng, actors, velocity, end_frame=40, num_clips=3, background=5)
    assert len(tubelets) == 2 * 4 + 5 and [t.score for t in tubelets] == sorted((t.score for t in tubelets),
                                                                                 reverse=True)
    best = {t.label: t for t in tubelets[::-1]}  # highest score per label wins
    np.testing.assert_array_equal(best[0].key_frames, [32, 36, 40])
    np.testing.assert_allclose(best[0].boxes[-1], actors[0] + [39, 0, 39, 0])  # moved 1 px/frame for 39 frames
    np.testing.assert_allclose(best[1].boxes[0], actors[1] + [0, -62, 0, -62])
    assert len(synthetic_tubelets(rng, np.repeat(actors, 30, 0), np.repeat(velocity, 30, 0), end_frame=8,
                                  num_clips=3)) == 100  # capped like the decoder's top 100


def test_linking_ms_is_a_positive_time():
    assert 0 < linking_ms(3, 2, 12) < 1e4


def test_end_to_end_accounts_for_the_whole_time(tmp_path):
    from streamact import create_model

    model = create_model("amma_mobilenetv2", num_classes=2, num_clips=2, clip_len=CLIP_LEN, img_size=32).eval()
    torch.manual_seed(0)
    video = write_video(tmp_path / "v.mp4", (f for f, _ in open_source("synthetic:detection?frames=10&size=64")),
                        fps=10)
    result = end_to_end(TorchRuntime(model), video)
    assert result["frames"] == 10 and result["steps"] == 3  # steps at frames 4 and 8, and one for the tail
    assert result["frames_per_s"] > 0
    assert sum(result["share"].values()) == pytest.approx(1.0) and all(v >= 0 for v in result["share"].values())
