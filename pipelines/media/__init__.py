"""Media I/O for the studio: probe, stream frames in and out, audio, loudness, timecode.

Everything here is about pixels and samples; nothing knows of consent. The rules it keeps
(docs/ARCHITECTURE.md): streaming (memory does not grow with clip length), frame-accurate
(frame count, rate, time base, size, timecode and colour tags survive a round trip), and
fail closed (every unusable input is a ``MediaError`` with a reason a person can read).
"""

from ._audiomux import SourceAudio
from .audio import (
    DOWNMIX,
    EBU_R128,
    NETFLIX_DIALOG,
    TRUE_PEAK_CEILING,
    Audio,
    downmix,
    limit,
    load_audio,
    load_channels,
    measure_loudness,
    mix,
    normalise,
    resample,
    true_peak,
)
from .errors import (
    CorruptMediaError,
    EmptyMediaError,
    FrameTooLargeError,
    MediaError,
    MediaNotFoundError,
    NoAudioStreamError,
    NotMediaError,
    NoVideoStreamError,
    TruncatedMediaError,
    UnsupportedMediaError,
    VariableFrameRateError,
    VariableFrameRateWarning,
)
from .probe import DEFAULT_MAX_PIXELS, AudioStreamInfo, MediaInfo, VideoStreamInfo, probe
from .reader import Frame, VideoReader, upright
from .timecode import frame_to_timecode, timecode_at, timecode_to_frame
from .writer import VideoWriter, copy_video

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "DOWNMIX",
    "EBU_R128",
    "NETFLIX_DIALOG",
    "TRUE_PEAK_CEILING",
    "Audio",
    "AudioStreamInfo",
    "CorruptMediaError",
    "EmptyMediaError",
    "Frame",
    "FrameTooLargeError",
    "MediaError",
    "MediaInfo",
    "MediaNotFoundError",
    "NoAudioStreamError",
    "NoVideoStreamError",
    "NotMediaError",
    "SourceAudio",
    "TruncatedMediaError",
    "UnsupportedMediaError",
    "VariableFrameRateError",
    "VariableFrameRateWarning",
    "VideoReader",
    "VideoStreamInfo",
    "VideoWriter",
    "copy_video",
    "downmix",
    "frame_to_timecode",
    "limit",
    "load_audio",
    "load_channels",
    "measure_loudness",
    "mix",
    "normalise",
    "probe",
    "resample",
    "timecode_at",
    "timecode_to_frame",
    "true_peak",
    "upright",
]
