"""Seeded synthetic datasets, written as real mp4 files in real annotation formats.

One module per generator, all drawing with one renderer (`render`):

* `gestures`: trimmed Jester-like gesture clips with Jester-format CSVs (`generate_gestures`);
* `untrimmed`: long videos whose labelled gesture fills a minority of the frames (`generate_untrimmed`);
* `streams`: gestures back to back with a frame-level ground-truth timeline (`generate_stream`, `iter_stream_frames`),
  and train / val / test sets of streams in the IPN Hand format (`generate_stream_set`);
* `backgrounds`: empty scenes for background MixUp (`generate_backgrounds`);
* `detection`: figures performing actions, with boxes and tubes in the UCF-24 / JHMDB pickle format
  (`generate_detection`).

Every video is rendered from its own seeded generator, so the output does not depend on the number of workers or
the order of work.
"""
from streamact.data.synthetic.backgrounds import generate_backgrounds
from streamact.data.synthetic.detection import DETECTION_CLASSES, MOTION_PAIRS, generate_detection
from streamact.data.synthetic.gestures import generate_gestures
from streamact.data.synthetic.render import FPS, GESTURE_CLASSES, REVERSED_PAIRS, gesture_trajectory, render_clip
from streamact.data.synthetic.streams import generate_stream, generate_stream_set, iter_stream_frames
from streamact.data.synthetic.untrimmed import generate_untrimmed

__all__ = [
    "GESTURE_CLASSES",
    "REVERSED_PAIRS",
    "FPS",
    "gesture_trajectory",
    "render_clip",
    "generate_gestures",
    "generate_untrimmed",
    "generate_stream",
    "generate_stream_set",
    "generate_backgrounds",
    "iter_stream_frames",
    "DETECTION_CLASSES",
    "MOTION_PAIRS",
    "generate_detection",
]
