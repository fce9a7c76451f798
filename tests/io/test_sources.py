"""Frame sources: files, folders, OpenCV captures, synthetic ground truth, bad input and realtime pacing."""
import time

import av
import numpy as np
import pytest
from PIL import Image

from _fixtures import GRAY_STEP, gray_frames, gray_levels, write_truncated_video

from streamact.data.synthetic import GESTURE_CLASSES, iter_stream_frames
from streamact.io.errors import VideoDecodeError, VideoNotFoundError
from streamact.io.sources import FrameSource, open_source
from streamact.io.writer import write_video

def packet_spans(path):
    """(position, size) in the file of each video packet, in stream order."""
    with av.open(str(path)) as container:
        return [(p.pos, p.size) for p in container.demux(video=0) if p.size]


def test_video_file(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gray_frames(20), fps=12)
    with open_source(path) as source:
        assert isinstance(source, FrameSource)
        assert (source.fps, source.num_frames, source.live) == (12.0, 20, False)
        items = list(source)
    frames, stamps = zip(*items)
    assert all(f.shape == (48, 64, 3) and f.dtype == np.uint8 for f in frames)
    np.testing.assert_allclose(gray_levels(frames), GRAY_STEP * np.arange(20), atol=2)
    np.testing.assert_allclose(stamps, np.arange(20) / 12, atol=1e-3)
    assert (source.num_corrupt, source.num_dropped, source.error, source.label) == (0, 0, None, None)


def test_fps_overrides_file_timestamps(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gray_frames(5), fps=12)
    with open_source(str(path), fps=25) as source:
        assert source.fps == 25
        np.testing.assert_allclose([t for _, t in source], np.arange(5) / 25)


def test_frame_folder_with_gray_rgba_size_changes_and_a_corrupt_image(tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (30, 40), dtype=np.uint8)).save(folder / "1.png")  # grayscale
    Image.fromarray(rng.integers(0, 256, (30, 40, 4), dtype=np.uint8)).save(folder / "2.png")  # RGBA
    (folder / "3.jpg").write_bytes(b"\xff\xd8 not a jpeg")  # corrupt: skipped and counted
    Image.fromarray(rng.integers(0, 256, (50, 20, 3), dtype=np.uint8)).save(folder / "10.png")  # another size
    with open_source(folder, fps=10) as source:
        assert source.num_frames == 4
        items = list(source)
    assert [f.shape for f, _ in items] == [(30, 40, 3), (30, 40, 3), (50, 20, 3)]
    assert [t for _, t in items] == [0.0, 0.1, 0.2]
    assert (source.num_corrupt, source.error) == (1, None)


def test_synthetic_source_exposes_ground_truth(tmp_path):
    expected = list(iter_stream_frames(num_gestures=2, seed=1, size=48))
    with open_source("synthetic:gestures?seed=1&num=2&size=48") as source:
        assert source.class_names == GESTURE_CLASSES and source.fps == 12
        labels, frames = [], []
        for frame, _ in source:
            frames.append(frame)
            labels.append(source.label)
    assert labels == [label for _, label in expected]
    assert len(set(labels)) > 1
    np.testing.assert_array_equal(frames[-1], expected[-1][0])


@pytest.mark.parametrize("spec,match", [
    ("synthetic:gestures?speed=3", "unknown option"),
    ("synthetic:faces", "unknown synthetic source"),
    ("synthetic:gestures?num=many", "num must be an integer"),
    ("synthetic:gestures?size=0", "size must be positive"),
])
def test_bad_synthetic_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        open_source(spec)


def test_corrupt_frame_is_skipped_and_counted(tmp_path):
    path = write_video(tmp_path / "clip.mp4", gray_frames(30), fps=12)
    pos, size = packet_spans(path)[10]
    data = bytearray(path.read_bytes())
    data[pos:pos + size] = np.random.default_rng(0).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))
    with open_source(path) as source:
        frames = [f for f, _ in source]
    assert (len(frames), source.num_corrupt, source.error) == (29, 1, None)


def test_truncated_file_ends_cleanly_with_the_error(tmp_path):
    # The index at the front (faststart) lets the file open; the data runs out in the middle of the stream.
    path = write_truncated_video(tmp_path / "cut.mp4", num_frames=30)
    with open_source(path) as source:
        frames = [f for f, _ in source]
    assert 0 < len(frames) < 30
    assert isinstance(source.error, VideoDecodeError)
    assert "truncated" in str(source.error) and "cut.mp4" in str(source.error)


def test_missing_inputs_name_themselves(tmp_path):
    with pytest.raises(VideoNotFoundError, match="nothing.mp4"):
        open_source(tmp_path / "nothing.mp4")
    (tmp_path / "notes.mp4").write_text("not a video\n" * 20)
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        open_source(tmp_path / "notes.mp4")


@pytest.mark.parametrize("spec", [97, "97"])
def test_nonexistent_camera_is_a_clear_error(spec):
    pytest.importorskip("cv2")
    with pytest.raises(VideoNotFoundError, match="camera 97"):
        open_source(spec)


def test_opencv_capture_converts_bgr_to_rgb(tmp_path):
    pytest.importorskip("cv2")
    red = np.zeros((48, 64, 3), np.uint8)
    red[..., 0] = 220
    path = write_video(tmp_path / "red.mp4", [red] * 6, fps=12)
    with open_source(f"file://{path}") as source:  # a URL goes through OpenCV like a network stream
        assert (source.num_frames, source.live) == (6, False)
        frames = [f for f, _ in source]
    assert len(frames) == 6 and source.error is None
    r, g, b = frames[0].reshape(-1, 3).mean(axis=0)
    assert r > 150 and g < 60 and b < 60


def test_realtime_drops_frames_when_the_consumer_is_slow(tmp_path):
    path = write_video(tmp_path / "fast.mp4", gray_frames(40), fps=50)
    with open_source(path, realtime=True) as source:
        seen, indices = [], []
        for frame, _ in source:
            seen.append(frame)
            indices.append(source.index)
            time.sleep(0.06)  # three frame periods per frame: a model too slow for the camera
    assert source.num_dropped > 0
    assert len(seen) + source.num_dropped == 40
    # Frames arrive in order and the newest frame is always delivered.
    assert np.all(np.diff(gray_levels(seen)) > 0)
    assert gray_levels(seen)[-1] == pytest.approx(GRAY_STEP * 39, abs=2)
    # `index` keeps the source's numbering: it jumps over the dropped frames
    assert gray_levels(seen) == pytest.approx([GRAY_STEP * i for i in indices], abs=2)
    assert indices[-1] == 39 and np.diff(indices).max() > 1


def test_without_realtime_every_frame_is_delivered(tmp_path):
    path = write_video(tmp_path / "fast.mp4", gray_frames(10), fps=50)
    with open_source(path) as source:
        indices = []
        for _ in source:
            time.sleep(0.03)
            indices.append(source.index)
    assert (indices, source.num_dropped) == (list(range(10)), 0)


def test_close_stops_iteration():
    source = open_source("synthetic:gestures?num=inf&size=32")
    assert next(source)[0].shape == (32, 32, 3)
    source.close()
    source.close()
    assert list(source) == []


def test_file_source_applies_rotation_metadata(tagged_video):
    # What `recognize` analyses and writes to its annotated video: the picture as players show it.
    path, stored = tagged_video("phone.mp4", -90)
    with open_source(path) as source:
        frames = [frame for frame, _ in source]
    assert len(frames) == 6
    for frame in frames:
        assert frame.shape == (176, 144, 3)
        assert np.abs(frame.astype(int) - np.rot90(stored, -1)).mean() < 4
