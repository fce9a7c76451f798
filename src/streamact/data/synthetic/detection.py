"""Seeded synthetic spatio-temporal action detection videos, written in the UCF-24 / JHMDB formats.

Each video shows 1-3 articulated figures (head, torso, arms and legs drawn as anti-aliased capsules and ellipses,
in the style of the gesture renderer) on the cluttered, jittering scenes of the gesture generator (`render._Scene`:
textured background, moving distractor shapes, camera shake, lighting drift, sensor noise). Figures idle or walk
without a label and, during temporal segments, perform one of `DETECTION_CLASSES`:

* direction-reversed pairs (`MOTION_PAIRS`), where the second class is the first one's pose sequence played
  backwards, so single frames cannot separate them, only the order of frames can:
  ``wave_right`` (the raised hand sweeps slowly left to right and snaps back) / ``wave_left``;
  ``squat_down`` (sinks slowly, springs back up) / ``stand_up`` (drops quickly, rises slowly);
* ``jump`` (crouch, take off with arms up, land);
* appearance classes that hold a pose: ``arms_raised`` (both arms up), ``point`` (one arm out sideways).

Boxes are the tight pixel extent of each figure in every frame of its action (after camera shake; clipped to the
frame). Figures overlap each other and, in some videos, pass behind a foreground pillar (occlusion; the box still
covers the whole figure, as in UCF-24's annotations).

Two variants, both in the real formats read by `streamact.data.datasets.detection`:

* ``ucf24`` (untrimmed, UCF101-24-like): ``rgb-images/<video>/00001.jpg`` and ``UCF101v2-GT.pkl``; several action
  segments per video (one tube each) among unlabelled idling and walking; one train/test split;
* ``jhmdb`` (trimmed, JHMDB-21-like): one figure performing one action over the whole clip, one tube per video,
  ``Frames/<video>/00001.png`` and ``JHMDB-GT.pkl`` with three train/test splits.

Both pickles carry ``motion_pairs`` (label-id pairs of `MOTION_PAIRS`). Every video is rendered from its own
generator ``np.random.default_rng((seed, index))``, so output does not depend on the number of workers, and the
first videos of a larger set equal those of a smaller one.
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from streamact.data.datasets.detection import (
    JHMDB_FRAME_PATTERN,
    UCF_FRAME_PATTERN,
    DetectionAnnotations,
    save_detection_annotations,
)
from streamact.data.synthetic.parallel import render_all
from streamact.data.synthetic.render import _SKIN_TONES, _paint, _Scene, _sdf_capsule, _sdf_ellipse, _wobble

__all__ = ["DETECTION_CLASSES", "MOTION_PAIRS", "generate_detection", "render_detection_video"]

DETECTION_CLASSES = ["wave_right", "wave_left", "squat_down", "stand_up", "jump", "arms_raised", "point"]
# (forward, reversed): the reversed class is the forward class's pose sequence played backwards.
MOTION_PAIRS = [("wave_right", "wave_left"), ("squat_down", "stand_up")]
_FORWARD_OF = {rev: fwd for fwd, rev in MOTION_PAIRS}

# Per-frame figure parameters, one row per frame. X and FEET are pixels in the output frame, HEIGHT is the standing
# height in pixels, CROUCH in [0, 1], LIFT (jump) a fraction of the height, STRIDE the leg swing in degrees, and the
# four arm angles are screen angles in degrees (0 = pointing down, 90 = right, 180 = up, -90 = left) of the right
# and left upper arm and forearm.
_X, _FEET, _HEIGHT, _CROUCH, _LIFT, _STRIDE, _RU, _RF, _LU, _LF = range(10)
_NUM_PARAMS = 10
_POSE = slice(_CROUCH, _NUM_PARAMS)  # what actions change; position and size stay the figure's own
_IDLE_ARMS = np.array([12.0, 8.0, -12.0, -8.0], np.float32)
_RAMP = 3  # frames over which an action blends in from (and out to) the idle pose

# Body geometry in units of the standing height (pixels = fraction * HEIGHT).
_THIGH, _SHIN, _HIP_HALF = 0.25, 0.25, 0.045
_TORSO, _SHOULDER_HALF, _NECK = 0.30, 0.09, 0.11
_UPPER_ARM, _FOREARM = 0.16, 0.15
_HEAD_RX, _HEAD_RY = 0.065, 0.08
_RADIUS = {"thigh": 0.05, "shin": 0.042, "torso": 0.08, "shoulders": 0.045, "upper_arm": 0.038, "forearm": 0.032,
           "hand": 0.038, "neck": 0.035}


# --------------------------------------------------------------------------------------------------------------------
# Pose -> body parts. Every part is a capsule (p0, p1, radius) or the head ellipse, in output-frame pixels; the box
# of a figure is the exact extent of these shapes, so it is tight by construction.


@dataclass
class _Part:
    p0: tuple[float, float]
    p1: tuple[float, float]
    radius: float
    color: str  # "skin", "shirt" or "pants"


def _direction(angle_deg: float) -> tuple[float, float]:
    a = math.radians(angle_deg)
    return math.sin(a), math.cos(a)  # y grows downwards: 0 deg points down


def _body(row: np.ndarray, long_sleeves: bool) -> tuple[list[_Part], tuple[float, float, float, float]]:
    """Body parts of one figure (back to front) and its head ellipse (cx, cy, rx, ry)."""
    u = float(row[_HEIGHT])
    bend = 70.0 * float(row[_CROUCH])  # knees splay outwards as the figure squats
    legs = []
    for side in (-1.0, 1.0):
        swing = side * float(row[_STRIDE])
        thigh = _direction(side * bend + swing)
        shin = _direction(-side * 0.3 * bend + swing)
        knee = (side * _HIP_HALF * u + _THIGH * u * thigh[0], _THIGH * u * thigh[1])
        foot = (knee[0] + _SHIN * u * shin[0], knee[1] + _SHIN * u * shin[1])
        legs.append(((side * _HIP_HALF * u, 0.0), knee, foot))
    # Feet on the ground (minus the jump), hips wherever the legs put them.
    ground = float(row[_FEET]) - float(row[_LIFT]) * u - _RADIUS["shin"] * u
    hip_y = ground - max(foot[1] for _, _, foot in legs)
    x = float(row[_X])
    parts = []
    for hip, knee, foot in legs:
        hip, knee, foot = ((x + p[0], hip_y + p[1]) for p in (hip, knee, foot))
        parts += [_Part(hip, knee, _RADIUS["thigh"] * u, "pants"), _Part(knee, foot, _RADIUS["shin"] * u, "pants")]
    shoulder_y = hip_y - _TORSO * u
    parts.append(_Part((x, hip_y), (x, shoulder_y + 0.02 * u), _RADIUS["torso"] * u, "shirt"))
    parts.append(_Part((x - _SHOULDER_HALF * u, shoulder_y), (x + _SHOULDER_HALF * u, shoulder_y),
                       _RADIUS["shoulders"] * u, "shirt"))
    head_y = shoulder_y - _NECK * u
    parts.append(_Part((x, shoulder_y), (x, head_y), _RADIUS["neck"] * u, "skin"))
    for side, upper, fore in ((1.0, row[_RU], row[_RF]), (-1.0, row[_LU], row[_LF])):
        shoulder = (x + side * _SHOULDER_HALF * u, shoulder_y)
        d = _direction(float(upper))
        elbow = (shoulder[0] + _UPPER_ARM * u * d[0], shoulder[1] + _UPPER_ARM * u * d[1])
        d = _direction(float(fore))
        hand = (elbow[0] + _FOREARM * u * d[0], elbow[1] + _FOREARM * u * d[1])
        parts.append(_Part(shoulder, elbow, _RADIUS["upper_arm"] * u, "shirt"))
        parts.append(_Part(elbow, hand, _RADIUS["forearm"] * u, "shirt" if long_sleeves else "skin"))
        parts.append(_Part(hand, hand, _RADIUS["hand"] * u, "skin"))
    return parts, (x, head_y, _HEAD_RX * u, _HEAD_RY * u)


def _extent(parts: list[_Part], head: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """(x_min, y_min, x_max, y_max) of the shapes, in continuous pixel coordinates."""
    xs = [p.p0[0] - p.radius for p in parts] + [p.p1[0] - p.radius for p in parts] + [head[0] - head[2]]
    xe = [p.p0[0] + p.radius for p in parts] + [p.p1[0] + p.radius for p in parts] + [head[0] + head[2]]
    ys = [p.p0[1] - p.radius for p in parts] + [p.p1[1] - p.radius for p in parts] + [head[1] - head[3]]
    ye = [p.p0[1] + p.radius for p in parts] + [p.p1[1] + p.radius for p in parts] + [head[1] + head[3]]
    return min(xs), min(ys), max(xe), max(ye)


def _draw_figure(frame: np.ndarray, row: np.ndarray, colors: dict[str, np.ndarray], long_sleeves: bool,
                 shift: tuple[float, float]) -> tuple[float, float, float, float] | None:
    """Draw one figure into `frame` (float32, in place) moved by `shift` (x, y) pixels.

    Returns:
        The box (x1, y1, x2, y2) of the pixels whose centre lies inside the figure (the "+1" convention: x2 is the
        last covered column), in `frame` coordinates and clipped to it; None if the figure is out of view.
    """
    parts, head = _body(row, long_sleeves)
    parts = [_Part((p.p0[0] + shift[0], p.p0[1] + shift[1]), (p.p1[0] + shift[0], p.p1[1] + shift[1]), p.radius,
                   p.color) for p in parts]
    head = (head[0] + shift[0], head[1] + shift[1], head[2], head[3])
    x_min, y_min, x_max, y_max = _extent(parts, head)
    h, w = frame.shape[:2]
    # Pixel i's centre is i + 0.5 and is painted at full strength when it lies inside a shape.
    x1, y1 = max(0, math.ceil(x_min - 0.5)), max(0, math.ceil(y_min - 0.5))
    x2, y2 = min(w - 1, math.floor(x_max - 0.5)), min(h - 1, math.floor(y_max - 0.5))
    if x2 < x1 or y2 < y1:
        return None
    region = frame[y1 : y2 + 2, x1 : x2 + 2]  # one more pixel for the anti-aliased rim
    px = np.arange(x1, x1 + region.shape[1], dtype=np.float32)[None, :] + 0.5
    py = np.arange(y1, y1 + region.shape[0], dtype=np.float32)[:, None] + 0.5
    for part in parts:
        sdf = _sdf_capsule(px, py, part.p0, part.p1, part.radius)
        # Darker rims separate overlapping limbs, as on the hand sprite.
        shade = 0.7 + 0.35 * np.clip(-sdf / max(part.radius, 1.0), 0.0, 1.0)
        _paint(region, sdf, colors[part.color] * shade[..., None])
    sdf = _sdf_ellipse(px - head[0], py - head[1], head[2], head[3])
    _paint(region, sdf, colors["skin"] * (0.75 + 0.3 * np.clip(-sdf / head[2], 0.0, 1.0))[..., None])
    return float(x1), float(y1), float(x2), float(y2)


# --------------------------------------------------------------------------------------------------------------------
# Actions: the pose columns (crouch, lift, stride, arms) of one action over n frames.


def _ease(p: np.ndarray) -> np.ndarray:
    return p * p * (3.0 - 2.0 * p)


def _cycles(n: int, per_cycle: int, most: int) -> np.ndarray:
    """Phase in [0, 1) within each of a whole number of cycles spanning n frames."""
    count = max(1, min(most, n // per_cycle))
    return (np.arange(n) + 0.5) * count / n % 1.0


def _action_pose(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """Pose columns (n, 8) of action `name`, blended in from and out to the idle pose over `_RAMP` frames."""
    if name in _FORWARD_OF:
        return _action_pose(_FORWARD_OF[name], n, rng)[::-1].copy()
    pose = np.zeros((n, _NUM_PARAMS - _CROUCH), np.float32)
    arms = pose[:, _RU - _CROUCH :]
    arms[:] = _IDLE_ARMS
    side = float(rng.choice([-1.0, 1.0]))  # which arm (right = +1)
    arm = slice(0, 2) if side > 0 else slice(2, 4)
    if name == "wave_right":
        # Slow sweep left to right (70 % of each cycle), quick return; the hand's tilt from vertical, right positive.
        phase = _cycles(n, 9, 3)
        slow = phase < 0.7
        tilt = np.where(slow, -55 + 110 * _ease(np.minimum(phase / 0.7, 1.0)),
                        55 - 110 * _ease(np.clip((phase - 0.7) / 0.3, 0.0, 1.0)))
        arms[:, arm.start] = side * 130.0
        arms[:, arm.start + 1] = 180.0 - tilt
    elif name == "squat_down":
        p = (np.arange(n) + 0.5) / n
        crouch = np.where(p < 0.7, _ease(np.minimum(p / 0.7, 1.0)), 1.0 - _ease(np.clip((p - 0.7) / 0.3, 0.0, 1.0)))
        depth = rng.uniform(0.75, 0.95)
        pose[:, 0] = depth * crouch
        arms[:] += np.array([60.0, 70.0, -60.0, -70.0], np.float32) * crouch[:, None]  # arms forward for balance
    elif name == "jump":
        phase = _cycles(n, 12, 2)
        prep = np.clip(phase / 0.25, 0.0, 1.0)
        flight = np.clip((phase - 0.25) / 0.5, 0.0, 1.0)
        land = np.clip((phase - 0.75) / 0.25, 0.0, 1.0)
        in_flight = (phase >= 0.25) & (phase < 0.75)
        pose[:, 0] = np.where(phase < 0.25, 0.5 * np.sin(math.pi / 2 * prep),
                              np.where(in_flight, 0.1, 0.45 * np.sin(math.pi * land)))
        pose[:, _LIFT - _CROUCH] = np.where(in_flight, rng.uniform(0.18, 0.3) * np.sin(math.pi * flight), 0.0)
        up = np.sin(math.pi * flight) * in_flight
        arms[:] += np.array([120.0, 130.0, -120.0, -130.0], np.float32) * up[:, None]
    elif name == "arms_raised":
        arms[:] = np.array([165.0, 172.0, -165.0, -172.0], np.float32) + rng.uniform(-10, 10, 4)
    elif name == "point":
        arms[:, arm] = side * np.array([90.0, 90.0], np.float32) + rng.uniform(-8, 8, 2)
    else:
        raise ValueError(f"unknown action {name!r}; expected one of {DETECTION_CLASSES}")
    arms += np.stack([_wobble(rng, n, 2.0) for _ in range(4)], axis=1)  # tremor
    # Blend from idle and back with an envelope symmetric in time, so the reversed classes stay exact reverses.
    idle = np.zeros_like(pose[0])
    idle[_RU - _CROUCH :] = _IDLE_ARMS
    t = np.arange(n, dtype=np.float32)
    envelope = np.clip(np.minimum(t + 1, n - t) / (_RAMP + 1), 0.0, 1.0)[:, None]
    return idle + (pose - idle) * envelope


# --------------------------------------------------------------------------------------------------------------------
# Actors: per-frame parameters of one figure over a whole video, and the action segments among them.


@dataclass
class _Actor:
    params: np.ndarray  # (num_frames, _NUM_PARAMS)
    segments: list[tuple[int, int, int]]  # (label id, start, end) 0-based frames, end exclusive
    colors: dict[str, np.ndarray]
    long_sleeves: bool


def _idle_and_walk(rng: np.random.Generator, n: int, x0: float, x_range: tuple[float, float], height: float,
                   walk_spans: list[tuple[int, int]]) -> np.ndarray:
    """Unlabelled behaviour: standing with a little sway, walking to a random spot during `walk_spans`."""
    params = np.zeros((n, _NUM_PARAMS), np.float32)
    params[:, _HEIGHT] = height
    params[:, _RU:] = _IDLE_ARMS + np.stack([_wobble(rng, n, 2.5, smooth=7) for _ in range(4)], axis=1)
    x = np.full(n, x0, np.float32)
    for start, end in walk_spans:
        target = rng.uniform(*x_range)
        progress = (np.arange(end - start) + 1.0) / (end - start)
        x[start:end] = x[start - 1 if start else 0] + (target - x[start - 1 if start else 0]) * progress
        x[end:] = target
        # Strides: about one step per 0.2 heights walked, legs and arms swinging in opposite phase.
        steps = abs(target - x[start]) / (0.2 * height) + 1e-6
        phase = 2 * math.pi * steps * progress
        amplitude = 25.0 * np.sin(math.pi * progress)  # start and stop gently
        params[start:end, _STRIDE] = amplitude * np.sin(phase)
        params[start:end, _RU] -= 0.6 * amplitude * np.sin(phase)
        params[start:end, _LU] += 0.6 * amplitude * np.sin(phase)
    params[:, _X] = x + _wobble(rng, n, 0.003 * height, smooth=9)
    return params


def _make_actor(rng: np.random.Generator, n: int, width: int, height: int, labels: list[int], trimmed: bool) -> _Actor:
    size = rng.uniform(0.5, 0.75) * height
    feet = rng.uniform(0.86, 0.97) * height
    half = 0.5 * size  # wide enough for arms out sideways
    x_range = (half, width - half)
    segments: list[tuple[int, int, int]] = []
    walks: list[tuple[int, int]] = []
    if trimmed:
        segments = [(labels[0], 0, n)]
    else:
        # Action segments of 30-44 frames (room for two AMMA steps whose 21-frame window lies inside) in order,
        # separated by gaps of idling or walking (at least 5 frames).
        t = int(rng.integers(0, min(8, n // 4) + 1))
        for i, label in enumerate(labels):
            length = int(rng.integers(30, 45))
            if i == 0:
                length = min(length, n - t)  # every actor given a label performs at least one action
            elif t + length > n:
                break
            segments.append((label, t, t + length))
            gap = int(rng.integers(5, 16))
            if rng.random() < 0.6 and t + length + gap <= n:
                walks.append((t + length, t + length + gap))
            t += length + gap
        if t < n and rng.random() < 0.5:
            walks.append((t, n))
    params = _idle_and_walk(rng, n, rng.uniform(*x_range), x_range, size, [w for w in walks if w[1] - w[0] >= 3])
    params[:, _FEET] = feet
    for label, start, end in segments:
        params[start:end, _POSE] = _action_pose(DETECTION_CLASSES[label], end - start, rng)
        params[start:end, _X] = params[start, _X]  # actions happen on the spot
    tone = int(rng.integers(len(_SKIN_TONES) - 1))
    skin = _SKIN_TONES[tone] + (_SKIN_TONES[tone + 1] - _SKIN_TONES[tone]) * rng.random()
    colors = {"skin": skin.astype(np.float32), "shirt": rng.uniform(0, 255, 3).astype(np.float32),
              "pants": rng.uniform(0, 200, 3).astype(np.float32)}
    return _Actor(params, segments, colors, bool(rng.random() < 0.5))


def render_detection_video(
    rng: np.random.Generator, *, labels: list[int], num_frames: int, width: int = 160, height: int = 120,
    num_actors: int = 1, trimmed: bool = False, camera_shake: float = 1.0,
) -> tuple[np.ndarray, list[tuple[int, np.ndarray]]]:
    """Render one detection video.

    Args:
        rng: the video's generator; consumed.
        labels: action label ids, performed in order by the first actor (untrimmed: as many as fit; trimmed: the
            first, over the whole clip). Further actors perform a random action or none.
        num_frames: video length.
        width, height: frame size in pixels.
        num_actors: figures in the scene.
        trimmed: JHMDB-style (the first actor's action spans the whole clip, no other actors).
        camera_shake: scale of the camera jitter (0 = still camera; otherwise the same video).

    Returns:
        Frames (num_frames, height, width, 3) uint8 RGB, and the ground-truth tubes as (label id, (n, 5) float32
        rows of 1-based frame, x1, y1, x2, y2).
    """
    side = max(width, height)
    scene = _Scene(rng, side, shake=camera_shake)
    left, top = (side - width) // 2, (side - height) // 2
    actors = [_make_actor(rng, num_frames, width, height, labels, trimmed)]
    for _ in range(num_actors - 1):
        extra = [int(rng.integers(len(DETECTION_CLASSES)))] if rng.random() < 0.6 else []
        actors.append(_make_actor(rng, num_frames, width, height, extra, trimmed=False))
    draw_order = sorted(actors, key=lambda a: float(a.params[0, _FEET]))  # farther (higher feet) first
    pillar = None
    if rng.random() < 0.5:
        pillar_w = rng.uniform(0.06, 0.12) * width
        pillar_x = rng.uniform(0.15, 0.85) * width
        pillar = (pillar_x - pillar_w / 2, pillar_x + pillar_w / 2, rng.uniform(40, 220, 3).astype(np.float32))
    boxes = {id(actor): np.full((num_frames, 4), np.nan, np.float32) for actor in actors}
    frames = np.empty((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):

        def draw(canvas: np.ndarray, offset: tuple[int, int]) -> None:
            view = canvas[top : top + height, left : left + width]
            shift = (-offset[0], -offset[1])
            for actor in draw_order:
                box = _draw_figure(view, actor.params[t], actor.colors, actor.long_sleeves, shift)
                if box is not None:
                    boxes[id(actor)][t] = box
            if pillar is not None:  # a foreground pillar the figures pass behind, moving with the camera
                x0, x1 = int(round(pillar[0] - offset[0])), int(round(pillar[1] - offset[0]))
                view[:, max(0, x0) : max(0, x1)] = pillar[2] * np.linspace(0.8, 1.1, view.shape[0])[:, None, None]

        frames[t] = scene.render_with(draw, rng)[top : top + height, left : left + width]
    tubes = []
    for actor in actors:
        actor_boxes = boxes[id(actor)]
        for label, start, end in actor.segments:
            frame_ids = np.arange(start, end)
            visible = ~np.isnan(actor_boxes[start:end, 0])
            rows = np.concatenate([(frame_ids[visible] + 1)[:, None], actor_boxes[start:end][visible]], axis=1)
            tubes.append((label, rows.astype(np.float32)))
    return frames, tubes


# --------------------------------------------------------------------------------------------------------------------
# Writing a data set.


def _video_name(variant: str, index: int, label: int) -> str:
    if variant == "jhmdb":
        return f"{DETECTION_CLASSES[label]}/{DETECTION_CLASSES[label]}_{index:05d}"
    return f"synth/v_synth_{index:05d}"


def _write_video(task: tuple) -> tuple[int, str, int, list[tuple[int, np.ndarray]]]:
    """Worker: render one video and write its frames. Returns (index, name, num_frames, tubes)."""
    variant, out_dir, seed, index, width, height, lengths, camera_shake = task
    rng = np.random.default_rng((seed, index))
    num_frames = int(rng.integers(lengths[0], lengths[1] + 1))
    trimmed = variant == "jhmdb"
    first = index % len(DETECTION_CLASSES)  # round-robin first label keeps the classes balanced
    labels = [first] + [int(c) for c in rng.integers(len(DETECTION_CLASSES), size=2)]
    num_actors = 1 if trimmed else int(rng.integers(1, 4))
    frames, tubes = render_detection_video(rng, labels=labels, num_frames=num_frames, width=width, height=height,
                                           num_actors=num_actors, trimmed=trimmed, camera_shake=camera_shake)
    name = _video_name(variant, index, first)
    pattern = JHMDB_FRAME_PATTERN if trimmed else UCF_FRAME_PATTERN
    for t, frame in enumerate(frames, start=1):
        path = Path(out_dir) / pattern.format(video=name, frame=t)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(frame).save(path, **({} if trimmed else {"quality": 92}))
    return index, name, num_frames, tubes


def generate_detection(
    out_dir: str | Path,
    *,
    variant: str = "ucf24",
    num_videos: int = 70,
    seed: int = 0,
    width: int = 160,
    height: int = 120,
    frames: tuple[int, int] | None = None,
    test_fraction: float = 0.3,
    camera_shake: float = 1.0,
    num_workers: int = 1,
    progress: bool = True,
) -> dict:
    """Render a synthetic detection data set and write it in the UCF-24 or JHMDB format.

    Args:
        out_dir: dataset folder (frames and the ground-truth pickle go below it).
        variant: "ucf24" (untrimmed, several actors and segments, ``UCF101v2-GT.pkl``, one split) or "jhmdb"
            (trimmed, one tube per video, ``JHMDB-GT.pkl``, three splits).
        num_videos: videos to render (classes are assigned round-robin to each video's first action).
        seed: base seed; video i uses ``default_rng((seed, i))``.
        width, height: frame size in pixels.
        frames: (min, max) frames per video (default 48-80 untrimmed, 32-48 trimmed).
        test_fraction: share of each class's videos in the test split.
        camera_shake: scale of the camera jitter (default 1; 0 = a still camera). Every other random draw is
            the same for any value, so two sets of one seed differ in the shake alone.
        num_workers: processes rendering in parallel (output is identical for any value).
        progress: show a progress bar on stderr.

    Returns:
        A short summary (counts, not the annotations): path of the pickle, videos and frames per split, tubes
        per class, seconds.
    """
    if variant not in ("ucf24", "jhmdb"):
        raise ValueError(f"variant must be 'ucf24' or 'jhmdb', got {variant!r}")
    if num_videos < 2:
        raise ValueError(f"num_videos must be at least 2 (a train and a test video), got {num_videos}")
    if not camera_shake >= 0:
        raise ValueError(f"camera_shake must be >= 0 (0 = a still camera), got {camera_shake!r}")
    if min(width, height) < 48:
        raise ValueError(f"frames must be at least 48x48 pixels to draw a figure, got {width}x{height}")
    lengths = frames or ((32, 48) if variant == "jhmdb" else (48, 80))
    if not 16 <= lengths[0] <= lengths[1]:
        raise ValueError(f"frames must be a (min, max) pair with 16 <= min <= max, got {lengths!r}")
    start_time = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tasks = [(variant, str(out_dir), seed, i, width, height, lengths, camera_shake) for i in range(num_videos)]
    results = render_all(_write_video, tasks, num_workers=num_workers, desc=f"synth detection ({variant})",
                         progress=progress)
    names = [results[i][1] for i in range(num_videos)]
    gttubes: dict[str, dict[int, list[np.ndarray]]] = {}
    for _, name, _, tubes in (results[i] for i in range(num_videos)):
        for label, tube in tubes:
            gttubes.setdefault(name, {}).setdefault(label, []).append(tube)
    # Stratified by the first label: video i is the (i // C)-th draw of its class; draws are i.i.d., so taking the
    # last share of each class's draws is a random split. JHMDB's three splits rotate which draws are tested.
    num_classes = len(DETECTION_CLASSES)
    num_splits = 3 if variant == "jhmdb" else 1
    train_videos, test_videos = [], []
    for split in range(num_splits):
        test = []
        for i in range(num_videos):
            draws = len(range(i % num_classes, num_videos, num_classes))
            num_test = max(1, round(test_fraction * draws)) if draws > 1 else 0
            j = (i // num_classes + split * num_test) % draws
            if j >= draws - num_test:
                test.append(i)
        if not test:  # fewer videos than classes: still one test video
            test = [num_videos - 1 - split % num_videos]
        train_videos.append([names[i] for i in range(num_videos) if i not in test])
        test_videos.append([names[i] for i in test])
    ann = DetectionAnnotations(
        root=out_dir,
        labels=list(DETECTION_CLASSES),
        nframes={results[i][1]: results[i][2] for i in range(num_videos)},
        resolution={name: (height, width) for name in names},
        gttubes=gttubes,
        train_videos=train_videos,
        test_videos=test_videos,
        frame_pattern=JHMDB_FRAME_PATTERN if variant == "jhmdb" else UCF_FRAME_PATTERN,
        motion_pairs=[(DETECTION_CLASSES.index(a), DETECTION_CLASSES.index(b)) for a, b in MOTION_PAIRS],
    )
    pickle_name = "JHMDB-GT.pkl" if variant == "jhmdb" else "UCF101v2-GT.pkl"
    pickle_path = save_detection_annotations(ann, out_dir / pickle_name)
    tubes_per_class = {name: 0 for name in DETECTION_CLASSES}
    for by_label in gttubes.values():
        for label, tubes in by_label.items():
            tubes_per_class[DETECTION_CLASSES[label]] += len(tubes)
    summary = {
        "variant": variant,
        "annotations": str(pickle_path),
        "num_videos": num_videos,
        "num_frames": sum(ann.nframes.values()),
        "size": f"{width}x{height}",
        "splits": [f"{len(a)} train / {len(b)} test" for a, b in zip(train_videos, test_videos)],
        "tubes_per_class": tubes_per_class,
        "motion_pairs": ["/".join(p) for p in MOTION_PAIRS],
        "seed": seed,
        "camera_shake": camera_shake,
        "seconds": round(time.perf_counter() - start_time, 2),
    }
    (out_dir / "generation.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
