"""Seeded synthetic gesture videos (Jester-like), written as real mp4 files with Jester-format annotations.

A skin-coloured hand sprite (palm ellipse, four finger capsules and a thumb, drawn as anti-aliased signed-distance
masks with numpy) performs one of `GESTURE_CLASSES` in front of a cluttered scene: a textured background (smooth
colour noise, stripes, rectangles), sometimes a person (face and torso in the same skin tone as the hand), moving
distractor shapes, camera jitter, brightness and colour-cast drift and per-frame Gaussian noise.

The classes probe temporal modelling the way Jester does:

* direction-reversed pairs (`REVERSED_PAIRS`): the second class of a pair is rendered as the first one's clip played
  backwards, so both classes have the same distribution over *sets* of frames and a temporally orderless model
  (plain TSN) cannot tell them apart, while a temporal model (TSM, MixTConv, VTN) can;
* `shake`: an oscillation left and right (its reverse is again a shake);
* static poses (`thumb_up`, `open_palm`, `fist`): only the hand's shape differs, nothing moves beyond tremor;
* `no_gesture`: no hand, or a relaxed hand resting at the bottom edge and drifting slowly.

Timing: `FPS` = 12 (Jester's frame rate). Trimmed clips last 24-36 frames (2-3 s, Jester's typical length); the
gesture itself occupies a random sub-interval of 35-80 % of the clip (random speed, onset and duration) with still
frames before and after.

The renderer shared by every generator of this package: `gesture_trajectory` gives the hand's clean per-frame
parameters, a scene adds everything else one frame at a time, and `render_clip` combines them for a trimmed clip.
The generators:

* `generate_gestures`: trimmed clips, `out_dir/videos/<id>.mp4` plus Jester CSVs;
* `generate_untrimmed`: long videos whose labelled gesture fills a minority of the frames, plus `segments.json`;
* `generate_stream` / `iter_stream_frames`: gestures back to back with a frame-level ground-truth timeline.

Annotation layout (Jester's, with two differences: videos are mp4 files ``videos/<id>.mp4`` instead of frame folders
``<id>/``, and ``test.csv`` carries labels because we have them)::

    out_dir/labels.csv            one class name per line, in class-index order
    out_dir/train.csv, val.csv    "<id>;<class name>" per line, ids are zero-padded integers ("000123")
    out_dir/test.csv              same format
    out_dir/videos/<id>.mp4       H.264, FPS frames per second
    out_dir/generation.json       generator parameters and counts, for reproducing the set

Every clip is rendered from its own generator ``np.random.default_rng((seed, index))`` (untrimmed videos from
``(seed, index, 1)``), so the output does not depend on the number of workers or the order of work, and the first
clips of a larger set equal those of a smaller one with the same seed.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

__all__ = ["GESTURE_CLASSES", "REVERSED_PAIRS", "FPS", "gesture_trajectory", "render_clip"]

FPS = 12

GESTURE_CLASSES = [
    "no_gesture",
    "swipe_left",
    "swipe_right",
    "swipe_up",
    "swipe_down",
    "push",
    "pull",
    "rotate_cw",
    "rotate_ccw",
    "zoom_in",
    "zoom_out",
    "shake",
    "thumb_up",
    "open_palm",
    "fist",
]

# (forward, reversed): the reversed class is the forward class's clip played backwards.
REVERSED_PAIRS = [
    ("swipe_left", "swipe_right"),
    ("swipe_up", "swipe_down"),
    ("push", "pull"),
    ("rotate_cw", "rotate_ccw"),
    ("zoom_in", "zoom_out"),
]
_FORWARD_OF = {rev: fwd for fwd, rev in REVERSED_PAIRS}

# Per-frame hand parameters, one row per frame of a trajectory. Positions and scale are fractions of the frame size
# so trajectories do not depend on the rendering size; angles are degrees, positive = clockwise on screen.
_VISIBLE, _X, _Y, _SCALE, _ANGLE, _MIRROR = range(6)
_POSE = slice(6, 13)
_NUM_PARAMS = 13

# Hand poses: extension of index, middle, ring, pinky (0 = curled to a knuckle, 1 = straight), finger spread
# (degrees between neighbours), thumb extension, thumb direction (degrees from vertical, negative = outwards).
_POSES = {
    "flat": np.array([1.0, 1.0, 1.0, 1.0, 2.5, 0.8, -22.0], np.float32),
    "open_palm": np.array([1.0, 1.0, 1.0, 1.0, 13.0, 1.0, -55.0], np.float32),
    "fist": np.array([0.0, 0.0, 0.0, 0.0, 2.0, 0.8, 80.0], np.float32),
    "thumb_up": np.array([0.0, 0.0, 0.0, 0.0, 2.0, 1.35, -3.0], np.float32),
    "bunched": np.array([0.35, 0.4, 0.4, 0.35, -5.0, 0.4, 25.0], np.float32),
    "relaxed": np.array([0.6, 0.65, 0.6, 0.5, 6.0, 0.6, -30.0], np.float32),
}
_STATIC_CLASSES = ("thumb_up", "open_palm", "fist")  # each holds the pose of the same name

# Sprite geometry in units of the hand scale (palm half-width); +v points down the hand (towards the wrist).
_PALM_CENTER_V, _PALM_A, _PALM_B = 0.05, 0.55, 0.62
_FINGER_BASE_U = np.array([-0.36, -0.12, 0.12, 0.36], np.float32)
_FINGER_BASE_V = -0.38
_FINGER_LENGTH = np.array([0.78, 0.88, 0.82, 0.62], np.float32)
_FINGER_RADIUS = 0.105
_THUMB_BASE = (-0.42, 0.08)
_THUMB_LENGTH, _THUMB_RADIUS = 0.58, 0.125
_WRIST = ((0.0, 0.45), (0.0, 1.0), 0.34)  # capsule (start, end, radius) joining the palm to the sleeve
_SLEEVE = ((-0.28, 1.17), (0.28, 1.17), 0.2)  # a cuff across the end of the wrist
_HAND_EXTENT = 1.55  # farthest sprite point from the palm centre, in hand-scale units, over all poses

# Skin tones from light to dark; a video's tone is a random point between two neighbours.
_SKIN_TONES = np.array(
    [[240, 205, 180], [225, 180, 150], [200, 150, 115], [165, 115, 80], [120, 80, 55], [85, 55, 40]], np.float32
)


# --------------------------------------------------------------------------------------------------------------------
# Signed-distance drawing. Distances are negative inside; a 1-pixel ramp around zero gives anti-aliased edges, which
# keeps slow sub-pixel motion visible instead of jumping a whole pixel at a time.


def _sdf_ellipse(u: np.ndarray, v: np.ndarray, a: float, b: float) -> np.ndarray:
    # Approximate (exact on the axes): good enough for shading and a 1-pixel edge.
    return (np.sqrt((u / a) ** 2 + (v / b) ** 2) - 1.0) * min(a, b)


def _sdf_capsule(
    u: np.ndarray, v: np.ndarray, p0: tuple[float, float], p1: tuple[float, float], r: float
) -> np.ndarray:
    du, dv = p1[0] - p0[0], p1[1] - p0[1]
    pu, pv = u - p0[0], v - p0[1]
    length2 = du * du + dv * dv
    h = np.clip((pu * du + pv * dv) / length2, 0.0, 1.0) if length2 > 1e-12 else 0.0
    return np.sqrt((pu - h * du) ** 2 + (pv - h * dv) ** 2) - r


def _sdf_box(u: np.ndarray, v: np.ndarray, half_u: float, half_v: float) -> np.ndarray:
    qu, qv = np.abs(u) - half_u, np.abs(v) - half_v
    outside = np.sqrt(np.maximum(qu, 0.0) ** 2 + np.maximum(qv, 0.0) ** 2)
    return outside + np.minimum(np.maximum(qu, qv), 0.0)


def _paint(region: np.ndarray, sdf_px: np.ndarray, color: np.ndarray) -> None:
    """Alpha-blend `color` (3,) or (h, w, 3) into `region` in place where `sdf_px` (pixels) is inside."""
    alpha = np.clip(0.5 - sdf_px, 0.0, 1.0)
    region += (color - region) * alpha[..., None]


def _local_coords(
    cx: float, cy: float, scale: float, angle_deg: float, box: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of the pixels in `box` (y0, y1, x0, x1) in an object frame centred at (cx, cy), rotated
    clockwise by `angle_deg` and measured in units of `scale` pixels."""
    y0, y1, x0, x1 = box
    dx = (np.arange(x0, x1, dtype=np.float32) + 0.5 - cx)[None, :]
    dy = (np.arange(y0, y1, dtype=np.float32) + 0.5 - cy)[:, None]
    c, s = math.cos(math.radians(angle_deg)), math.sin(math.radians(angle_deg))
    return (c * dx + s * dy) / scale, (c * dy - s * dx) / scale


def _clip_box(shape: tuple[int, ...], cx: float, cy: float, radius: float) -> tuple[int, int, int, int] | None:
    y0, y1 = max(0, int(cy - radius)), min(shape[0], int(cy + radius) + 2)
    x0, x1 = max(0, int(cx - radius)), min(shape[1], int(cx + radius) + 2)
    return (y0, y1, x0, x1) if y0 < y1 and x0 < x1 else None


def _draw_hand(
    frame: np.ndarray, params: np.ndarray, skin: np.ndarray, sleeve: np.ndarray, offset: tuple[int, int]
) -> None:
    """Draw the hand described by one trajectory row into `frame` (float32, H x W x 3) in place."""
    size = frame.shape[0]
    scale = float(params[_SCALE]) * size
    cx, cy = float(params[_X]) * size - offset[0], float(params[_Y]) * size - offset[1]
    box = _clip_box(frame.shape, cx, cy, _HAND_EXTENT * scale)
    if box is None or scale < 1.0:
        return
    u, v = _local_coords(cx, cy, scale, float(params[_ANGLE]), box)
    u = u * params[_MIRROR]  # a left hand is a mirrored right hand
    region = frame[box[0] : box[1], box[2] : box[3]]
    ext, spread, thumb_ext, thumb_angle = params[_POSE][:4], params[_POSE][4], params[_POSE][5], params[_POSE][6]
    # Edge darkening over ~0.3 hand units gives every part an outline, so fingers stay visible on top of the palm.
    shade_width = 0.3

    def paint_part(sdf: np.ndarray, color: np.ndarray = skin) -> None:
        shade = 0.68 + 0.37 * np.clip(-sdf / shade_width, 0.0, 1.0)
        _paint(region, sdf * scale, color * shade[..., None])

    # Back to front: a wrist in a sleeve (so the sprite reads as a hand and its orientation is visible), palm,
    # fingers, thumb.
    paint_part(_sdf_capsule(u, v, *_WRIST))
    paint_part(_sdf_capsule(u, v, *_SLEEVE), sleeve)
    paint_part(_sdf_ellipse(u, v - _PALM_CENTER_V, _PALM_A, _PALM_B))
    for i in range(4):
        direction = math.radians(float(spread) * (i - 1.5))
        base = (float(_FINGER_BASE_U[i]), _FINGER_BASE_V)
        length = float(_FINGER_LENGTH[i] * ext[i])
        tip = (base[0] + length * math.sin(direction), base[1] - length * math.cos(direction))
        paint_part(_sdf_capsule(u, v, base, tip, _FINGER_RADIUS))
    direction = math.radians(float(thumb_angle))
    length = _THUMB_LENGTH * float(thumb_ext)
    tip = (_THUMB_BASE[0] + length * math.sin(direction), _THUMB_BASE[1] - length * math.cos(direction))
    paint_part(_sdf_capsule(u, v, _THUMB_BASE, tip, _THUMB_RADIUS))


# --------------------------------------------------------------------------------------------------------------------
# Scene: everything but the hand. It advances one frame per `render` call and stays bounded in memory, so the same
# object renders a 30-frame clip or an endless stream.


def _upsample(low: np.ndarray, n: int) -> np.ndarray:
    """Bilinear upsampling of a (k, k, 3) grid to (n, n, 3) as two small matrix products."""
    k = low.shape[0]
    pos = np.linspace(0.0, k - 1.0, n)
    i0 = np.minimum(pos.astype(int), k - 2)
    w = (pos - i0).astype(np.float32)
    interp = np.zeros((n, k), np.float32)
    interp[np.arange(n), i0] = 1.0 - w
    interp[np.arange(n), i0 + 1] = w
    return np.einsum("yi,ijc,xj->yxc", interp, low, interp)


def _background(rng: np.random.Generator, n: int, skin: np.ndarray) -> np.ndarray:
    """A cluttered (n, n, 3) float32 texture: smooth colour noise or stripes, rectangles, grain, maybe a person."""
    k = int(rng.integers(3, 9))
    img = _upsample(rng.uniform(0, 255, (k, k, 3)).astype(np.float32), n)
    if rng.random() < 0.5:
        period, theta, phase = rng.uniform(5, 30), rng.uniform(0, math.pi), rng.uniform(0, 2 * math.pi)
        axis = np.arange(n, dtype=np.float32)
        along = axis[None, :] * math.cos(theta) + axis[:, None] * math.sin(theta)
        wave = np.sin(2 * math.pi * along / period + phase)
        alpha = (0.5 * (wave + 1.0) * rng.uniform(0.3, 0.8)).astype(np.float32)
        img += (rng.uniform(0, 255, 3).astype(np.float32) - img) * alpha[..., None]
    for _ in range(int(rng.integers(3, 16))):
        h, w = (int(a) for a in rng.integers(n // 16, n // 3, size=2))
        y, x = int(rng.integers(-h // 2, n)), int(rng.integers(-w // 2, n))
        region = img[max(0, y) : y + h, max(0, x) : x + w]
        region += (rng.uniform(0, 255, 3).astype(np.float32) - region) * rng.uniform(0.5, 1.0)
    if rng.random() < 0.6:
        _draw_person(img, rng, skin)
    # Lower the clutter's saturation and contrast by random amounts so that some scenes are garish and others plain.
    gray = img.mean(axis=2, keepdims=True)
    img = gray + (img - gray) * rng.uniform(0.25, 1.0)
    mean = img.mean(axis=(0, 1))
    img = mean + (img - mean) * rng.uniform(0.4, 1.0)
    img += rng.normal(0.0, rng.uniform(2, 10), img.shape).astype(np.float32)  # static grain (texture, not noise)
    return np.clip(img, 0, 255).astype(np.float32)


def _draw_person(img: np.ndarray, rng: np.random.Generator, skin: np.ndarray) -> None:
    """A face and torso behind the hand, in the hand's skin tone, so colour alone cannot find the hand."""
    n = img.shape[0]
    cx, cy, r = rng.uniform(0.2, 0.8) * n, rng.uniform(0.1, 0.35) * n, rng.uniform(0.08, 0.14) * n
    torso_box = _clip_box(img.shape, cx, cy + 2.6 * r, 2.2 * r)
    if torso_box is not None:
        u, v = _local_coords(cx, cy + 2.6 * r, r, 0.0, torso_box)
        region = img[torso_box[0] : torso_box[1], torso_box[2] : torso_box[3]]
        _paint(region, _sdf_box(u, v - 0.4, 1.6, 1.6) * r, rng.uniform(0, 255, 3).astype(np.float32))
    face_box = _clip_box(img.shape, cx, cy, 1.3 * r)
    if face_box is not None:
        u, v = _local_coords(cx, cy, r, 0.0, face_box)
        region = img[face_box[0] : face_box[1], face_box[2] : face_box[3]]
        _paint(region, _sdf_ellipse(u, v, 0.8, 1.0) * r, skin * rng.uniform(0.85, 1.0))


@dataclass
class _Distractor:
    """A moving non-hand shape (ellipse, box or ring) in view coordinates (pixels)."""

    kind: int
    x: float
    y: float
    vx: float
    vy: float
    radius: float
    aspect: float
    angle: float
    spin: float
    color: np.ndarray

    @classmethod
    def spawn(cls, rng: np.random.Generator, size: int, *, at_edge: bool) -> "_Distractor":
        radius = rng.uniform(0.04, 0.11) * size
        speed, heading = rng.uniform(0.0, 2.5) * size / 160, rng.uniform(0, 2 * math.pi)
        x, y = rng.uniform(0, size, 2)
        if at_edge:
            # Re-enter from just outside the border, heading inwards, so the scene stays populated forever.
            side = int(rng.integers(4))
            pos = (-radius, size + radius)[side % 2]
            x, y = (pos, y) if side < 2 else (x, pos)
            heading = math.atan2(size / 2 - y, size / 2 - x) + rng.uniform(-0.6, 0.6)
            speed = max(speed, 0.5)
        return cls(
            kind=int(rng.integers(3)),
            x=float(x),
            y=float(y),
            vx=speed * math.cos(heading),
            vy=speed * math.sin(heading),
            radius=float(radius),
            aspect=float(rng.uniform(0.5, 1.0)),
            angle=float(rng.uniform(0, 180)),
            spin=float(rng.uniform(-6, 6)),
            color=rng.uniform(0, 255, 3).astype(np.float32),
        )

    def draw(self, frame: np.ndarray, offset: tuple[int, int]) -> None:
        cx, cy = self.x - offset[0], self.y - offset[1]
        box = _clip_box(frame.shape, cx, cy, self.radius + 1)
        if box is None:
            return
        u, v = _local_coords(cx, cy, self.radius, self.angle, box)
        if self.kind == 0:
            sdf = _sdf_ellipse(u, v, 1.0, self.aspect)
        elif self.kind == 1:
            sdf = _sdf_box(u, v, 0.7, 0.7 * self.aspect)
        else:
            sdf = np.abs(_sdf_ellipse(u, v, 0.85, 0.85)) - 0.15
        _paint(frame[box[0] : box[1], box[2] : box[3]], sdf * self.radius, self.color)

    def step(self, size: int) -> bool:
        """Move one frame; False once the shape has left the view for good."""
        self.x, self.y, self.angle = self.x + self.vx, self.y + self.vy, self.angle + self.spin
        r = self.radius
        return -r <= self.x <= size + r and -r <= self.y <= size + r


class _Scene:
    """Background, person, distractors, camera jitter, lighting and sensor noise of one video.

    Args:
        rng: the video's generator; the scene draws its layout from it at construction and its per-frame randomness
            (jitter, noise, respawned distractors) from the generator passed to `render`.
        size: output frame size (square).
        shake: scale of the camera jitter (0 = a still camera); the random draws are the same for any value, so
            a video differs from its shaken twin in the jitter alone.
    """

    def __init__(self, rng: np.random.Generator, size: int, *, shake: float = 1.0) -> None:
        self.size = size
        self.margin = max(2, round(0.05 * size))  # room for camera jitter around the view
        tone = int(rng.integers(len(_SKIN_TONES) - 1))
        skin = _SKIN_TONES[tone] + (_SKIN_TONES[tone + 1] - _SKIN_TONES[tone]) * rng.random()
        self.skin = (skin * rng.uniform(0.92, 1.08, 3)).astype(np.float32)
        self.sleeve = rng.uniform(0, 255, 3).astype(np.float32)
        self.background = _background(rng, size + 2 * self.margin, self.skin)
        num_distractors = int(rng.choice([0, 1, 1, 2, 2, 3]))
        self.distractors = [_Distractor.spawn(rng, size, at_edge=False) for _ in range(num_distractors)]
        self.jitter_sigma = shake * rng.uniform(0.2, 1.2) * size / 160
        self.offset = np.zeros(2)
        self.color_cast = (rng.uniform(0.8, 1.15) * rng.uniform(0.92, 1.08, 3)).astype(np.float32)
        # Lighting drifts as a slow sinusoid: bounded for endless streams and direction-free, so a reversed clip is
        # as likely as a forward one.
        self.flicker = rng.uniform(0.0, 0.25)
        self.flicker_period = rng.uniform(30, 200)
        self.flicker_phase = rng.uniform(0, 2 * math.pi)
        self.noise_sigma = rng.uniform(2, 9)
        self.t = 0

    def render(self, hand: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Render the next frame with the hand described by one trajectory row; returns (H, W, 3) uint8."""

        def draw(frame: np.ndarray, offset: tuple[int, int]) -> None:
            if hand[_VISIBLE] > 0:
                _draw_hand(frame, hand, self.skin, self.sleeve, offset)

        return self.render_with(draw, rng)

    def render_with(
        self, draw: Callable[[np.ndarray, tuple[int, int]], None], rng: np.random.Generator
    ) -> np.ndarray:
        """Render the next frame, calling ``draw(frame, offset)`` to paint the foreground (float32 frame, in place)
        after the background and distractors and before lighting and noise; `offset` is the camera jitter (x, y) in
        pixels, to subtract from scene coordinates. Returns (H, W, 3) uint8."""
        size, m = self.size, self.margin
        ox, oy = (int(round(o)) for o in self.offset)
        frame = self.background[m + oy : m + oy + size, m + ox : m + ox + size].copy()
        for d in self.distractors:
            d.draw(frame, (ox, oy))
        draw(frame, (ox, oy))
        light = 1.0 + self.flicker * math.sin(2 * math.pi * self.t / self.flicker_period + self.flicker_phase)
        frame *= self.color_cast * light
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * self.noise_sigma
        np.clip(frame, 0, 255, out=frame)
        self._advance(rng)
        return frame.astype(np.uint8)

    def _advance(self, rng: np.random.Generator) -> None:
        # Camera shake as a mean-reverting random walk: jittery but never drifting out of the margin.
        self.offset = np.clip(0.8 * self.offset + rng.normal(0.0, self.jitter_sigma, 2), -self.margin, self.margin)
        for i, d in enumerate(self.distractors):
            if not d.step(self.size):
                self.distractors[i] = _Distractor.spawn(rng, self.size, at_edge=True)
        self.t += 1


# --------------------------------------------------------------------------------------------------------------------
# Trajectories: the clean per-frame hand parameters of one gesture.


def _wobble(rng: np.random.Generator, n: int, amplitude: float, smooth: int = 5) -> np.ndarray:
    """Smooth zero-mean random motion (hand tremor, idle drift) with standard deviation about `amplitude`."""
    noise = rng.standard_normal(n + smooth - 1)
    kernel = np.ones(smooth) / smooth
    out = np.convolve(noise, kernel, mode="valid")
    return (out * amplitude * math.sqrt(smooth)).astype(np.float32)


def _progress(rng: np.random.Generator, n: int, hold: bool) -> np.ndarray:
    """Per-frame linear gesture progress in [0, 1]; with `hold`, the motion takes a random 35-80 % of the frames
    at a random onset (onset and duration distributions are symmetric in time, as reversed classes need)."""
    if hold:
        shortest = min(n, max(6, math.ceil(0.35 * n)))
        duration = int(rng.integers(shortest, max(shortest, int(0.8 * n)) + 1))
        onset = int(rng.integers(0, n - duration + 1))
    else:
        duration, onset = n, 0
    return np.clip((np.arange(n) - onset + 0.5) / duration, 0.0, 1.0).astype(np.float32)


def _ease(p: np.ndarray) -> np.ndarray:
    """Smoothstep: a hand accelerates and decelerates instead of starting and stopping at full speed."""
    return p * p * (3.0 - 2.0 * p)


def _hand(rng: np.random.Generator, n: int, pose: str) -> np.ndarray:
    """A visible hand at a random place, size, tilt and handedness, holding `pose`, with a little tremor."""
    traj = np.zeros((n, _NUM_PARAMS), np.float32)
    traj[:, _VISIBLE] = 1.0
    traj[:, _X] = rng.uniform(0.35, 0.65) + _wobble(rng, n, 0.004)
    traj[:, _Y] = rng.uniform(0.38, 0.62) + _wobble(rng, n, 0.004)
    traj[:, _SCALE] = rng.uniform(0.095, 0.135)
    traj[:, _ANGLE] = rng.uniform(-15, 15) + _wobble(rng, n, 1.5)
    traj[:, _MIRROR] = rng.choice([-1.0, 1.0])
    traj[:, _POSE] = _POSES[pose]
    return traj


def gesture_trajectory(class_name: str, rng: np.random.Generator, num_frames: int, *, hold: bool = True) -> np.ndarray:
    """Clean per-frame hand parameters of one gesture (no scene, no noise).

    The reversed class of a pair draws exactly what its forward class draws and returns it backwards, so for equal
    generator states ``gesture_trajectory(b, ...) == gesture_trajectory(a, ...)[::-1]`` for every (a, b) in
    `REVERSED_PAIRS`.

    Args:
        class_name: one of `GESTURE_CLASSES`.
        rng: random generator; consumed.
        num_frames: trajectory length.
        hold: place the motion in a random sub-interval (random onset and speed) with still frames before and after,
            as in a trimmed clip; False makes the motion span every frame (gestures embedded in untrimmed videos and
            streams, whose label boundaries must be frame-exact).

    Returns:
        float32 array (num_frames, 13): visible, x, y, scale, angle, mirror, then the pose (finger extensions,
        spread, thumb extension, thumb angle); x, y and scale are fractions of the frame size.
    """
    if class_name not in GESTURE_CLASSES:
        raise ValueError(f"unknown gesture class {class_name!r}; expected one of {GESTURE_CLASSES}")
    if num_frames < 1:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if class_name in _FORWARD_OF:
        return gesture_trajectory(_FORWARD_OF[class_name], rng, num_frames, hold=hold)[::-1].copy()
    n = num_frames
    if class_name == "no_gesture":
        traj = _hand(rng, n, "relaxed")
        if rng.random() < 0.5:
            traj[:, _VISIBLE] = 0.0
        else:
            # Resting low, partly out of view, drifting slowly: present but not gesturing.
            traj[:, _Y] = rng.uniform(0.8, 0.95) + _wobble(rng, n, 0.012, smooth=9)
            traj[:, _X] += _wobble(rng, n, 0.02, smooth=9)
        return traj
    if class_name in _STATIC_CLASSES:
        return _hand(rng, n, class_name)
    traj = _hand(rng, n, "flat")
    linear = _progress(rng, n, hold)
    p = _ease(linear)
    if class_name in ("swipe_left", "swipe_up"):
        amplitude = rng.uniform(0.3, 0.55)
        axis = _X if class_name == "swipe_left" else _Y
        # Centre the sweep so both ends stay in view; screen left and up are decreasing x and y.
        centre = rng.uniform(0.15 + amplitude / 2, 0.85 - amplitude / 2)
        traj[:, axis] += centre - traj[0, axis] + amplitude * (0.5 - p)
        traj[:, _Y if axis == _X else _X] += rng.uniform(-0.08, 0.08) * (p - 0.5)
    elif class_name == "push":
        # Moving towards the camera: the hand grows (geometric, as perspective does).
        start, end = rng.uniform(0.6, 0.75), rng.uniform(1.45, 1.75)
        traj[:, _SCALE] *= start * (end / start) ** p
    elif class_name == "rotate_cw":
        traj[:, _ANGLE] += rng.uniform(100, 170) * (p - 0.5)
    elif class_name == "zoom_in":
        traj[:, _POSE] = _POSES["bunched"] + (_POSES["open_palm"] - _POSES["bunched"]) * p[:, None]
    elif class_name == "shake":
        # Whole cycles, so the hand is back at rest when the shaking stops, and at least 6 frames per cycle, so the
        # oscillation is not aliased at 12 frames/s.
        active = int(np.count_nonzero((linear > 0) & (linear < 1)))
        most = max(1, min(3, active // 6))
        cycles = int(rng.integers(min(2, most), most + 1))
        amplitude = rng.uniform(0.05, 0.1) * rng.choice([-1.0, 1.0])
        # The envelope eases the hand in and out of the oscillation, also when the motion spans the whole clip.
        traj[:, _X] += amplitude * np.sin(2 * math.pi * cycles * linear) * np.sin(math.pi * linear)
    return traj


def _canonical(class_name: str) -> tuple[str, bool]:
    """(class rendered, whether its frames are then reversed)."""
    return (_FORWARD_OF[class_name], True) if class_name in _FORWARD_OF else (class_name, False)


def render_clip(class_name: str, rng: np.random.Generator, size: int = 160, num_frames: int = 32) -> np.ndarray:
    """Render one trimmed gesture clip.

    The reversed class of a pair is its forward class's whole clip (hand, distractors, jitter, lighting and noise)
    played backwards, so for equal generator states ``render_clip(b, ...) == render_clip(a, ...)[::-1]`` exactly.

    Args:
        class_name: one of `GESTURE_CLASSES`.
        rng: random generator; consumed.
        size: frame height and width in pixels.
        num_frames: clip length.

    Returns:
        uint8 array (num_frames, size, size, 3), RGB.
    """
    rendered, reverse = _canonical(class_name)
    scene = _Scene(rng, size)
    traj = gesture_trajectory(rendered, rng, num_frames)
    frames = np.stack([scene.render(row, rng) for row in traj])
    return frames[::-1].copy() if reverse else frames

