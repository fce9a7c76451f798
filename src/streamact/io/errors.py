"""Typed errors raised by video sources; datasets turn `VideoDecodeError` into skipped, counted samples."""

from streamact.errors import UserError

__all__ = ["VideoError", "VideoNotFoundError", "VideoDecodeError"]


class VideoError(UserError):
    """Base class for every video input problem. Always names the offending path."""


class VideoNotFoundError(VideoError, FileNotFoundError):
    """The path does not exist (or a frame folder has no frames)."""


class VideoDecodeError(VideoError):
    """The file exists but is corrupt, truncated, empty or not a video."""
