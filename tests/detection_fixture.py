"""A tiny spatio-temporal detection dataset in the UCF101v2-GT.pkl layout, written into a folder for tests."""
from pathlib import Path

import numpy as np
from PIL import Image

from streamact.data.datasets.detection import DetectionAnnotations, save_detection_annotations

SIZE = (48, 64)  # (h, w) of the source frames


def write_tiny_detection_set(root: Path, *, num_videos: int = 4, num_frames: int = 16, seed: int = 0) -> Path:
    """Videos of one bright square moving right (label 0) or left (label 1) over noise, a motion pair; one tube per
    video covering frames 3..num_frames. Returns the pickle's path."""
    rng = np.random.default_rng(seed)
    h, w = SIZE
    gttubes, nframes, resolution = {}, {}, {}
    videos = [f"cls/v_{i:02d}" for i in range(num_videos)]
    for i, video in enumerate(videos):
        label = i % 2
        rows = []
        for f in range(1, num_frames + 1):
            frame = rng.integers(0, 60, (h, w, 3), dtype=np.uint8)
            if f >= 3:
                step = f - 3
                x1 = 8 + 2 * step if label == 0 else w - 24 - 2 * step
                y1 = 12
                frame[y1:y1 + 16, x1:x1 + 16] = 230
                rows.append([f, x1, y1, x1 + 15, y1 + 15])
            path = root / "rgb-images" / video / f"{f:05d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(frame).save(path, quality=95)
        gttubes[video] = {label: [np.array(rows, np.float32)]}
        nframes[video], resolution[video] = num_frames, (h, w)
    half = num_videos // 2
    ann = DetectionAnnotations(root=root, labels=["move_right", "move_left"], nframes=nframes, resolution=resolution,
                               gttubes=gttubes, train_videos=[videos[:max(half, 2)]], test_videos=[videos[half:]],
                               motion_pairs=[(0, 1)])
    return save_detection_annotations(ann, root / "UCF101v2-GT.pkl")
