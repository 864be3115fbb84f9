"""One exception family for everything the media layer refuses.

The studio turns any ``MediaError`` into a refusal a person can read, so each subclass names
one cause and each message says what was found in which file. Callers that only need "is
this usable?" catch ``MediaError``; callers that react differently (ask for a re-export of a
truncated upload, offer to conform a VFR clip) catch the subclass.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipelines.errors import PipelineError, PipelineNotFoundError


class MediaError(PipelineError):
    """Base class: the file at ``path`` cannot be handled safely, for ``reason``."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class MediaNotFoundError(MediaError, PipelineNotFoundError):
    """The path does not exist (or is not a regular file)."""


class NotMediaError(MediaError):
    """The bytes are not audio or video that FFmpeg recognises."""


class TruncatedMediaError(MediaError):
    """The file starts like media but ends early (a cut upload or an unfinished export)."""


class CorruptMediaError(MediaError):
    """The container is readable but a frame or packet inside it is damaged."""


class EmptyMediaError(MediaError):
    """A zero-length file, or a stream that holds no frames."""


class NoVideoStreamError(MediaError):
    """Video was required (reading frames, rendering) but the file has only audio/data."""


class NoAudioStreamError(MediaError):
    """Audio was required but the file has no audio stream (or not the one asked for)."""


class FrameTooLargeError(MediaError):
    """The declared frame size exceeds the configured pixel limit; refused before decoding."""


class UnsupportedMediaError(MediaError):
    """Valid media that this layer deliberately does not handle (codec, layout, rate)."""


class VariableFrameRateError(MediaError):
    """Variable-frame-rate video was given where a constant rate is required."""


class VariableFrameRateWarning(UserWarning):
    """Variable-frame-rate video is being conformed to a constant rate (frames dup/dropped)."""
