"""Video and frame-folder readers: metadata, frame-accurate random access, bad input, frame normalisation."""
import logging
import os
import subprocess
from fractions import Fraction
import sys

import av
import numpy as np
import pytest
from PIL import Image

from _fixtures import gray_frames, gray_level, gray_levels, write_truncated_video

from streamact.io.errors import VideoDecodeError, VideoNotFoundError
from streamact.io.frames import to_rgb
from streamact.io.video import FrameFolderReader, VideoReader, open_video
from streamact.io.writer import write_video

NUM_FRAMES = 40
CONTAINERS = [
    pytest.param(ext, codec, marks=pytest.mark.skipif(codec not in av.codecs_available, reason=f"no {codec}"))
    for ext, codec in [("mp4", "libx264"), ("mkv", "libx264"), ("avi", "mpeg4"), ("webm", "libvpx-vp9")]
]


def write_with_gop(path, codec, frames, gop, fps=25):
    """Write with a short keyframe interval so random access has to seek between keyframes."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames[0].shape[:2]
        stream.pix_fmt = "yuv420p"
        stream.gop_size = gop
        stream.bit_rate = 4_000_000  # mpeg4's default quality blurs neighbouring gray levels together
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


@pytest.mark.parametrize("ext,codec", CONTAINERS)
def test_random_access_is_frame_accurate(tmp_path, ext, codec):
    path = write_with_gop(tmp_path / f"clip.{ext}", codec, gray_frames(NUM_FRAMES), gop=6)
    indices = [33, 7, 19, 19, 2, 39, 0, 12]  # unsorted, repeated, both ends, across keyframes
    with open_video(path) as reader:
        assert isinstance(reader, VideoReader)
        assert reader.num_frames == NUM_FRAMES
        assert reader.fps == pytest.approx(25.0)
        assert reader.duration == pytest.approx(NUM_FRAMES / 25.0, abs=0.05)
        assert (reader.height, reader.width) == (48, 64)
        frames = reader.get_frames(indices)
        assert frames.shape == (len(indices), 48, 64, 3) and frames.dtype == np.uint8
        np.testing.assert_allclose(gray_levels(frames), gray_level(indices), atol=3)
        # Random access yields exactly what a sequential decode yields.
        sequential = np.stack(list(reader.iter_frames()))
        assert len(sequential) == NUM_FRAMES
        np.testing.assert_array_equal(frames, sequential[indices])
        # The reader stays usable after a full pass.
        np.testing.assert_array_equal(reader.get_frames([5]), sequential[[5]])


def test_random_access_seeks_instead_of_decoding_from_the_start(tmp_path):
    path = write_with_gop(tmp_path / "long.mp4", "libx264", gray_frames(120, 32, 32), gop=10)
    with VideoReader(path) as reader:
        frames = reader.get_frames([101, 3, 100])
        np.testing.assert_allclose(gray_levels(frames), gray_level([101, 3, 100]), atol=3)
        # Frames 0-3, then a seek to keyframe 100 and frames 100-101, plus what the decoder buffers; not 102.
        assert reader.num_decoded < 30


def test_write_video_mp4_metadata(tmp_path):
    path = write_video(tmp_path / "w.mp4", gray_frames(12), fps=12)
    with open_video(path) as reader:
        assert (reader.num_frames, reader.fps) == (12, 12.0)
        assert reader.duration == pytest.approx(1.0, abs=0.05)
        assert len(reader) == 12


def test_index_out_of_range_raises(tmp_path):
    path = write_video(tmp_path / "short.mp4", gray_frames(5))
    with open_video(path) as reader:
        with pytest.raises(IndexError, match="5"):
            reader.get_frames([0, 5])
        with pytest.raises(IndexError):
            reader.get_frames([-1])
        assert reader.get_frames([]).shape == (0, 48, 64, 3)


def test_missing_path_names_it(tmp_path):
    missing = tmp_path / "nope.mp4"
    with pytest.raises(VideoNotFoundError, match="nope.mp4"):
        open_video(missing)
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError for callers that catch that
        VideoReader(missing)


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.touch()
    with pytest.raises(VideoDecodeError, match="empty.mp4"):
        open_video(path)


def test_text_file_renamed_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 50)
    with pytest.raises(VideoDecodeError, match="notes.mp4"):
        open_video(path)


def test_truncated_mp4(tmp_path):
    path = write_video(tmp_path / "cut.mp4", gray_frames(30))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        with open_video(path) as reader:
            reader.get_frames(range(reader.num_frames))


def test_truncated_faststart_mp4_is_refused_whatever_frames_are_asked_for(tmp_path):
    # With the index at the front the file opens, and the frames before the cut decode; the reader still refuses
    # it as a whole, so no caller gets it in one epoch and not in the next.
    path = write_truncated_video(tmp_path / "faststart.mp4", num_frames=30, width=64)
    with av.open(str(path)) as container:  # the first frames are intact: PyAV decodes them
        assert next(container.decode(video=0)).width == 64
    for frames in ([0], [1, 2], []):
        with pytest.raises(VideoDecodeError, match="faststart.mp4: truncated: the file ends after"):
            with open_video(path) as reader:
                reader.get_frames(frames)


def write_folder(folder, frames, names=None, ext="png"):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        name = names[i] if names else f"{i + 1:05d}.{ext}"
        Image.fromarray(frame).save(folder / name)
    return folder


def test_frame_folder_random_access(tmp_path):
    folder = write_folder(tmp_path / "vid", gray_frames(12, 33, 47), ext="jpg")  # odd size, Jester naming
    with open_video(folder) as reader:
        assert isinstance(reader, FrameFolderReader)
        assert (reader.num_frames, reader.height, reader.width) == (12, 33, 47)
        frames = reader.get_frames([11, 3, 3, 0])
        assert frames.shape == (4, 33, 47, 3) and frames.dtype == np.uint8
        np.testing.assert_allclose(gray_levels(frames), gray_level([11, 3, 3, 0]), atol=2)
        assert len(list(reader.iter_frames())) == 12
        with pytest.raises(IndexError):
            reader.get_frames([12])


def test_frame_folder_sorts_numbers_numerically(tmp_path):
    names = [f"img_{i}.png" for i in range(1, 12)]  # img_10 must follow img_9, not img_1
    folder = write_folder(tmp_path / "vid", gray_frames(11), names=names)
    with FrameFolderReader(folder) as reader:
        np.testing.assert_array_equal(gray_levels(reader.get_frames(range(11))), gray_level(np.arange(11)))


def test_frame_folder_with_missing_frames_warns_and_uses_the_rest(tmp_path, caplog):
    frames = gray_frames(10)
    keep = [0, 1, 2, 5, 6, 9]  # 3, 4, 7, 8 missing from the numbering
    folder = write_folder(tmp_path / "gappy", [frames[i] for i in keep], names=[f"{i + 1:05d}.png" for i in keep])
    with caplog.at_level(logging.WARNING, logger="streamact.io.video"):
        reader = FrameFolderReader(folder)
    assert "4 frame(s) missing" in caplog.text and "gappy" in caplog.text
    assert reader.num_frames == len(keep)
    np.testing.assert_array_equal(gray_levels(reader.get_frames(range(len(keep)))), gray_level(keep))


def test_frame_folder_unreadable_frame(tmp_path):
    folder = write_folder(tmp_path / "vid", gray_frames(3), ext="jpg")
    (folder / "00002.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    with FrameFolderReader(folder) as reader:
        assert reader.get_frames([0]).shape == (1, 48, 64, 3)
        with pytest.raises(VideoDecodeError, match="00002.jpg"):
            reader.get_frames([1])


def test_frame_folder_without_frames(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoNotFoundError, match="empty"):
        open_video(tmp_path / "empty")


def test_frame_folder_grayscale_rgba_and_16bit_frames_become_rgb(tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    Image.fromarray(np.full((9, 11), 100, np.uint8), mode="L").save(folder / "00001.png")
    rgba = np.zeros((9, 11, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 17
    Image.fromarray(rgba, mode="RGBA").save(folder / "00002.png")
    Image.fromarray(np.full((9, 11), 65535, np.uint16)).save(folder / "00003.png")  # 16-bit gray
    with FrameFolderReader(folder) as reader:
        frames = reader.get_frames([0, 1, 2])
    assert frames.shape == (3, 9, 11, 3) and frames.dtype == np.uint8
    assert (frames[0] == 100).all()
    assert (frames[1][..., 0] == 200).all() and (frames[1][..., 1:] == 0).all()  # alpha dropped, not blended
    assert (frames[2] == 255).all()


@pytest.mark.parametrize(
    "frame,expected",
    [
        (np.full((3, 5), 7, np.uint8), 7),  # grayscale (H, W)
        (np.full((3, 5, 1), 7, np.uint8), 7),  # grayscale (H, W, 1)
        (np.full((3, 5, 2), 7, np.uint8), 7),  # grayscale + alpha
        (np.full((3, 5, 4), 7, np.uint8), 7),  # RGBA
        (np.full((3, 5, 3), 65535, np.uint16), 255),  # 16-bit
        (np.full((3, 5, 3), 257 * 7, np.uint16), 7),
        (np.full((3, 5), 0.5, np.float32), 128),  # float in [0, 1]
        (np.full((3, 5, 3), 2.0, np.float64), 255),  # clipped
        (np.ones((3, 5), bool), 255),
    ],
)
def test_to_rgb(frame, expected):
    out = to_rgb(frame)
    assert out.shape == (3, 5, 3) and out.dtype == np.uint8 and out.flags.c_contiguous
    assert (out == expected).all()


def test_to_rgb_keeps_rgb_and_rejects_non_images():
    rgb = np.arange(3 * 5 * 3, dtype=np.uint8).reshape(3, 5, 3)
    assert to_rgb(rgb) is rgb
    rgba = np.dstack([rgb, np.full((3, 5), 9, np.uint8)])
    np.testing.assert_array_equal(to_rgb(rgba), rgb)
    with pytest.raises(ValueError):
        to_rgb(np.zeros((2, 3, 5, 3), np.uint8))
    with pytest.raises(ValueError):
        to_rgb(np.zeros((3, 5, 6), np.uint8))


_ENCODE = """
import hashlib, itertools, os, sys
if sys.argv[1] == "1":
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
from streamact.data.synthetic import iter_stream_frames
from streamact.io.writer import VideoWriter
with VideoWriter(sys.argv[2], fps=12) as writer:
    for frame, _ in itertools.islice(iter_stream_frames(num_gestures=None, seed=0, size=128), 40):
        writer.write(frame)
print(hashlib.md5(open(sys.argv[2], "rb").read()).hexdigest())
"""


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity (Linux)")
def test_writer_output_does_not_depend_on_the_visible_cpus(tmp_path):
    # x264 picks its thread count from the CPUs it sees, and the thread count changes the bitstream; the writer
    # fixes it, so generated datasets and the demo stream are the same bytes on every machine.
    digests = [subprocess.run([sys.executable, "-c", _ENCODE, cpus, str(tmp_path / f"{cpus}.mp4")], stdin=subprocess.DEVNULL, check=True,
                              capture_output=True, text=True).stdout.strip() for cpus in ("1", "all")]
    assert digests[0] == digests[1]


NTSC = Fraction(30000, 1001)


@pytest.mark.parametrize("fps,rate", [(12, Fraction(12)), (12.5, Fraction(25, 2)), (float(NTSC), NTSC),
                                      (24000 / 1001, Fraction(24000, 1001)), (NTSC, NTSC)])
def test_writer_keeps_the_exact_frame_rate(tmp_path, fps, rate):
    path = write_video(tmp_path / "r.mp4", gray_frames(10), fps=fps)
    with av.open(str(path)) as container:
        assert container.streams.video[0].average_rate == rate
        assert container.duration / 1e6 == pytest.approx(10 / rate, abs=1e-3)  # was rounded: 12.5 -> 12 frames/s


def test_writer_refuses_a_non_positive_rate(tmp_path):
    with pytest.raises(ValueError, match="frame rate must be positive"):
        write_video(tmp_path / "r.mp4", gray_frames(1), fps=0)


# Counter-clockwise degrees and mirroring as stored in the display matrix, and what a player shows.
ORIENTATIONS = [
    (90, False, lambda image: np.rot90(image, 1)),  # e.g. a phone held upright: stored landscape
    (-90, False, lambda image: np.rot90(image, -1)),  # FFmpeg's "rotate=90" tag (a quarter turn clockwise)
    (180, False, lambda image: np.rot90(image, 2)),
    (0, True, lambda image: image[:, ::-1]),  # a front camera's mirror
    (90, True, lambda image: np.rot90(image, 1)[:, ::-1]),  # turned, then mirrored
]


def assert_shows(frame, expected):
    assert frame.shape == expected.shape
    assert np.abs(frame.astype(int) - expected).mean() < 4  # H.264 at high quality; a wrong turn is off by ~100


@pytest.mark.parametrize("degrees,hflip,display", ORIENTATIONS)
def test_rotation_metadata_is_applied(tagged_video, degrees, hflip, display):
    path, stored = tagged_video("phone.mp4", degrees, hflip)
    expected = display(stored)
    with open_video(path) as reader:
        assert (reader.height, reader.width) == expected.shape[:2]
        for frame in reader.get_frames([4, 1]):
            assert_shows(frame, expected)
        for frame in reader.iter_frames():
            assert_shows(frame, expected)


def test_other_angles_are_used_as_stored_with_a_warning(tagged_video):
    path, stored = tagged_video("tilted.mp4", 45)
    with pytest.warns(UserWarning, match="45 degrees, not a quarter turn"):
        with open_video(path) as reader:
            assert_shows(reader.get_frames([0])[0], stored)


def test_quarter_turn_gives_portrait_frames(tagged_video):
    # The stored picture is 176 wide and 144 high; every player shows it 144 wide and 176 high.
    path, _ = tagged_video("portrait.mp4", -90)
    with open_video(path) as reader:
        assert reader.get_frames([0]).shape == (1, 176, 144, 3)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="counts threads through /proc")
def test_reading_leaves_no_threads_behind(tmp_path, tagged_video):
    # DataLoader workers are forked from the process that built the dataset: a decoder or colour-conversion thread
    # pool left alive there (FFmpeg's default is one thread per CPU) deadlocks them in their first decode.
    path, _ = tagged_video("clip.mp4", 90, num_frames=12)

    def threads():
        return len(os.listdir("/proc/self/task"))

    before = threads()
    with open_video(path) as reader:
        reader.get_frames([3, 9, 0])
        list(reader.iter_frames())
    assert threads() == before
