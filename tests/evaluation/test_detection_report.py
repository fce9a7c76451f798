"""evaluate_detections and write_detection_report end to end, on a tiny synthetic set and an oracle detector."""
import json

import numpy as np
import pytest
from PIL import Image

from streamact.data.datasets.detection import load_detection_annotations
from streamact.data.synthetic import generate_detection
from streamact.evaluation.detection import evaluate_detections
from streamact.evaluation.detection_report import clear_of, frames_worth_drawing, write_detection_report
from streamact.inference.tubes import Tubelet


def oracle_steps(ann, videos, *, wrong_label=None):
    """AMMA-style tubelets every 5 frames (5 key frames, spacing 5, clamped at 1) read off the true tubes."""
    steps = {}
    for video in videos:
        steps[video] = []
        for frame in range(5, ann.nframes[video] + 1, 5):
            keys = np.maximum(1, frame - 5 * np.arange(4, -1, -1))
            step = []
            for label, tube in ann.tubes(video):
                frames = tube[:, 0]
                if frames[0] <= frame <= frames[-1]:
                    boxes = np.stack([np.interp(keys, frames, tube[:, c]) for c in range(1, 5)], axis=1)
                    step.append(Tubelet(wrong_label if wrong_label is not None else label, 0.9, keys, boxes))
            steps[video].append((frame, step))
    return steps


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("jhmdb")
    generate_detection(root, variant="jhmdb", num_videos=7, seed=3, width=64, height=48, frames=(30, 36),
                       progress=False)
    return load_detection_annotations(root / "JHMDB-GT.pkl")


def test_oracle_detector_scores_near_perfect(dataset):
    videos = sorted(dataset.nframes)
    results = evaluate_detections(oracle_steps(dataset, videos), dataset, videos)
    summary = results.summary()
    assert summary["video_map@0.5"] == 1.0  # every true tube found once, right class, st-IoU >= 0.5
    assert summary["frame_map@0.5"] > 0.8  # the last frames after the final step are missed
    assert summary["frame_map@0.5_trimmed"] >= summary["frame_map@0.5"]
    assert summary["frame_errors"]["classification"] == 0.0
    assert summary["num_tubes"] == len(videos) and json.dumps(summary)
    assert sum(summary["frame_errors"].values()) + summary["frame_map@0.5"] == pytest.approx(1.0)
    assert summary["direction"]["wave_right/wave_left"]["balanced_accuracy"] == 1.0


def test_wrong_class_detections_are_classification_errors(dataset):
    videos = sorted(dataset.nframes)
    results = evaluate_detections(oracle_steps(dataset, videos, wrong_label=0), dataset, videos)
    summary = results.summary()
    # Everything is called class 0: only class 0's own videos are right, every other class is missed.
    assert summary["per_class"]["wave_left"]["frame_ap@0.5"] == 0.0
    assert summary["per_class"]["wave_left"]["video_ap@0.5"] == 0.0
    assert results.frame.errors["classification"][0] > 0.5
    # Both waves called wave_right: every wave_right right, every wave_left wrong, so no better than chance.
    waves = summary["direction"]["wave_right/wave_left"]
    right, left = waves["classes"]["wave_right"], waves["classes"]["wave_left"]
    assert right["accuracy"] == 1.0 and left["accuracy"] == 0.0
    assert waves["balanced_accuracy"] == 0.5 and 0 < left["found"] <= left["boxes"]


def test_report_files(dataset, tmp_path):
    videos = sorted(dataset.nframes)
    results = evaluate_detections(oracle_steps(dataset, videos), dataset, videos)
    paths = write_detection_report(tmp_path, results, dataset, [(videos[0], 12), (videos[1], 20)])
    summary = json.loads(paths["json"].read_text())
    assert summary["video_map@0.5"] == 1.0
    markdown = paths["markdown"].read_text()
    assert "| wave_right |" in markdown and "trimmed" in markdown and "error breakdown" in markdown
    assert "| wave_right/wave_left | 100.0 (100.0-100.0) | wave_right | 100.0 |" in markdown
    for key in ("pr_frame", "pr_video", "errors"):
        with Image.open(paths[key]) as image:
            assert image.width > 400
    drawn = paths[f"frame:{videos[0]}:12"]
    with Image.open(drawn) as image:
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.shape == (48 * 3, 64 * 3, 3)
    # Both the true (green) and the predicted (red) outline are drawn.
    assert np.any(np.all(pixels == (40, 220, 60), axis=-1)) and np.any(np.all(pixels == (255, 70, 40), axis=-1))


def test_frames_worth_drawing_lie_inside_true_tubes(dataset):
    videos = sorted(dataset.nframes)
    picks = frames_worth_drawing(dataset, videos, num=3)
    assert len(picks) == 3 and picks[0][0] == videos[0] and picks[-1][0] == videos[-1]
    for video, frame in picks:
        assert any(frame in tube[:, 0] for _, tube in dataset.tubes(video))


def test_captions_of_overlapping_boxes_do_not_cover_each_other():
    placed = [(10, 10, 50, 20)]
    assert clear_of((60, 10, 90, 20), placed) == (60, 10, 90, 20)  # beside it: stays
    assert clear_of((30, 15, 70, 25), placed) == (30, 21, 70, 31)  # moves just below
    placed.append((30, 21, 70, 31))
    assert clear_of((12, 12, 40, 22), placed) == (12, 32, 40, 42)  # below both, not into the second
