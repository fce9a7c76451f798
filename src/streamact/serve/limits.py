"""The limits of one `streamact serve` server (no dependencies, so the CLI can show the defaults)."""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Limits"]


@dataclass(frozen=True)
class Limits:
    """What one server accepts; each limit, when hit, is answered with its own error code (see `serve.app`).

    Attributes:
        max_streams: streams open at once (browser connections and server-side sources together).
        max_message_bytes: size of one WebSocket message (an encoded frame).
        max_frame_pixels: width x height of one decoded frame, checked from the image header before decoding.
        max_fps: frames per second one stream may send; faster frames are refused and counted.
        idle_timeout_s: a stream that receives no frame for this long is closed and its state freed.
        history: results kept per stream for polling.
        subscriber_queue: messages buffered per subscriber before its oldest are dropped.
    """

    max_streams: int = 16
    max_message_bytes: int = 2_000_000
    max_frame_pixels: int = 1920 * 1080
    max_fps: float = 30.0
    idle_timeout_s: float = 30.0
    history: int = 256
    subscriber_queue: int = 64
