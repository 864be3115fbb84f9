"""``probe(path) -> MediaInfo``: what a file holds, measured rather than trusted.

Step 1 of every render ("ingest") needs facts it can hold the output to: the exact frame
count, the frame rate as a rational, the timecode, the audio streams. Containers do not
always state them, and sometimes state them wrongly, so the probe reads every packet of the
video and audio streams (demuxing only: packets are counted and their timestamps kept, no
frame is decoded except the first, which carries the display matrix). That single pass also
finds what the header alone cannot: variable frame rate and truncation.

A frame larger than ``max_pixels`` is refused from the header, before any decoding.
"""

from __future__ import annotations

import dataclasses
import os
import re
from array import array
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import av.container
import numpy as np
from av.audio.stream import AudioStream
from av.packet import Packet
from av.stream import Disposition
from av.video.stream import VideoStream

from . import colour
from ._container import open_input, require_decoder
from .errors import (
    CorruptMediaError,
    EmptyMediaError,
    FrameTooLargeError,
    NotMediaError,
    NoVideoStreamError,
    TruncatedMediaError,
    UnsupportedMediaError,
)

DEFAULT_MAX_PIXELS = 7680 * 4320
"""Largest frame accepted by default: 8K UHD. A 16K frame (4x that) is refused unread."""

STANDARD_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001), Fraction(30),
    Fraction(48), Fraction(50), Fraction(60000, 1001), Fraction(60), Fraction(100),
    Fraction(120000, 1001), Fraction(120),
)

_TIMECODE_RE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;.,]\d{2}$")
# Formats whose header states the duration; for the others FFmpeg derives it from the very
# timestamps we scan, so comparing the two would prove nothing.
_HEADER_DURATION_FORMATS = ("mov", "matroska")


@dataclass(frozen=True)
class VideoStreamInfo:
    """One video stream as the writer must reproduce it.

    ``frame_rate`` is exact for constant-rate video. For variable-rate video it is the
    average rate snapped to the nearest standard rate within 1 % (the rate a conform
    produces). ``rotation`` is counter-clockwise degrees (0/90/180/270) as FFmpeg's display
    matrix states it: frames are stored unrotated, players turn them. Colour tags are
    ffprobe's names, ``None`` where the file leaves them unspecified. ``duration`` and
    ``start_time`` are seconds.
    """

    width: int
    height: int
    frame_rate: Fraction
    time_base: Fraction
    frame_count: int = 0
    index: int = 0
    codec: str = ""
    pix_fmt: str = "yuv420p"
    duration: Fraction = Fraction(0)
    start_time: Fraction = Fraction(0)
    sample_aspect_ratio: Fraction | None = None
    color_primaries: str | None = None
    color_transfer: str | None = None
    color_matrix: str | None = None
    color_range: str | None = None
    rotation: int = 0
    timecode: str | None = None
    variable_frame_rate: bool = False

    @classmethod
    def new(cls, width: int, height: int, frame_rate: Fraction | int, **tags: Any
            ) -> VideoStreamInfo:
        """Describe a stream that has no source file (generated or test video).

        The time base is ``1/frame_rate``; ``tags`` sets any other field by name.
        """
        rate = Fraction(frame_rate)
        return dataclasses.replace(cls(width, height, rate, time_base=1 / rate), **tags)

    @property
    def pixels(self) -> int:
        """Pixels per frame."""
        return self.width * self.height


@dataclass(frozen=True)
class AudioStreamInfo:
    """One audio stream. ``duration`` and ``start_time`` are seconds (``None`` if unknown)."""

    index: int
    codec: str
    sample_rate: int
    channels: int
    layout: str
    duration: Fraction | None
    start_time: Fraction | None = None


@dataclass(frozen=True)
class MediaInfo:
    """What one file holds: container, its first video stream (if any), all audio streams.

    ``size`` is the file size in bytes, ``duration`` the container's duration in seconds,
    ``timecode`` the container-level start timecode (the video stream's, if the container
    has none of its own).
    """

    path: Path
    format_name: str
    size: int
    duration: Fraction | None
    video: VideoStreamInfo | None
    audio: tuple[AudioStreamInfo, ...] = field(default_factory=tuple)
    timecode: str | None = None

    def require_video(self) -> VideoStreamInfo:
        """The video stream, or ``NoVideoStreamError`` for an audio-only file."""
        if self.video is None:
            raise NoVideoStreamError(self.path, "no video stream (audio-only file?)")
        return self.video


@dataclass
class _Scan:
    """Per-stream tallies from the single demux pass."""

    packets: int = 0
    pts: array[int] = field(default_factory=lambda: array("q"))
    missing_pts: int = 0
    first: int | None = None
    end: int | None = None
    last_duration: int = 0
    corrupt: int = 0
    last_corrupt: bool = False

    def add(self, pts: int | None, duration: int | None, corrupt: bool) -> None:
        self.packets += 1
        self.last_corrupt = corrupt
        self.corrupt += corrupt
        if pts is None:
            self.missing_pts += 1
            return
        self.pts.append(pts)
        dur = duration or 0
        self.first = pts if self.first is None else min(self.first, pts)
        if self.end is None or pts + dur > self.end:
            self.end = pts + dur
            self.last_duration = dur


def probe(path: str | os.PathLike[str], *, max_pixels: int = DEFAULT_MAX_PIXELS,
          require_video: bool = False) -> MediaInfo:
    """Describe the media file at ``path``; raise a ``MediaError`` subclass if it is unusable.

    ``require_video`` turns an audio-only file into ``NoVideoStreamError`` (the render path);
    leave it off to probe dubbed dialogue or M&E stems.
    """
    p = Path(path)
    with open_input(p) as container:
        vs = _first_video_stream(container)
        audio_streams = list(container.streams.audio)
        for stream in [*audio_streams, *([vs] if vs is not None else [])]:
            require_decoder(p, stream)
        if vs is None and not audio_streams:
            raise NotMediaError(p, "the file has no audio or video stream")
        if vs is None and require_video:
            raise NoVideoStreamError(p, "no video stream (audio-only file)")
        if vs is not None:
            _check_size(p, vs, max_pixels)
        scans, first_frame = _scan(p, container, vs, audio_streams)
        _check_complete(p, container, vs, audio_streams, scans)
        video = None
        if vs is not None:
            video = _video_info(p, container, vs, scans[vs.index], first_frame)
        audio = tuple(_audio_info(s, scans[s.index]) for s in audio_streams)
        duration = Fraction(container.duration, av.time_base) if container.duration else None
        timecode = _timecode_tag(container.metadata) or (video.timecode if video else None)
        return MediaInfo(p, container.format.name, p.stat().st_size, duration, video, audio,
                         timecode)


def _first_video_stream(container: av.container.InputContainer) -> VideoStream | None:
    for s in container.streams.video:
        if not s.disposition & Disposition.attached_pic:  # cover art is not video
            return s
    return None


def _check_size(path: Path, vs: VideoStream, max_pixels: int) -> None:
    width, height = vs.codec_context.width, vs.codec_context.height
    if width <= 0 or height <= 0:
        raise CorruptMediaError(path, "the video stream does not state its frame size")
    if width * height > max_pixels:
        raise FrameTooLargeError(
            path, f"{width}x{height} frames ({width * height:,} pixels) exceed the limit of "
                  f"{max_pixels:,} pixels per frame; refused before decoding")


def _scan(path: Path, container: av.container.InputContainer, vs: VideoStream | None,
          audio_streams: list[AudioStream]) -> tuple[dict[int, _Scan], av.VideoFrame | None]:
    """Demux every packet once; decode only until the first video frame appears."""
    streams: list[VideoStream | AudioStream] = [*audio_streams]
    if vs is not None:
        streams.insert(0, vs)
    scans = {s.index: _Scan() for s in streams}
    first_frame: av.VideoFrame | None = None
    try:
        for packet in container.demux(streams):
            if packet.size == 0:
                continue
            if packet.is_discard:
                continue  # coded but not meant to be shown (e.g. trimmed by an edit list)
            pts = packet.pts if packet.pts is not None else packet.dts
            scans[packet.stream.index].add(pts, packet.duration, packet.is_corrupt)
            if vs is not None and first_frame is None and packet.stream.index == vs.index:
                first_frame = _decode_first(path, vs, packet)
        if vs is not None and first_frame is None and scans[vs.index].packets:
            first_frame = _decode_first(path, vs, None)
    except av.FFmpegError as exc:
        got = scans[vs.index].packets if vs is not None else 0
        raise TruncatedMediaError(
            path, f"reading stopped after {got} video packets ({exc}): truncated or damaged"
        ) from exc
    return scans, first_frame


def _decode_first(path: Path, vs: VideoStream, packet: Packet[Any] | None
                  ) -> av.VideoFrame | None:
    """Feed one packet to the decoder (``None`` flushes it); the first frame, if out."""
    try:
        frames = vs.decode(packet)
    except av.FFmpegError as exc:
        raise CorruptMediaError(path, f"the first video frame cannot be decoded ({exc})"
                                ) from exc
    return frames[0] if frames else None


def _check_complete(path: Path, container: av.container.InputContainer,
                    vs: VideoStream | None, audio_streams: list[AudioStream],
                    scans: dict[int, _Scan]) -> None:
    """Refuse files that end early or hold nothing; the checks the header makes possible."""
    for index, scan in scans.items():
        if scan.corrupt:
            if scan.last_corrupt:
                raise TruncatedMediaError(
                    path, f"the last packet of stream {index} is incomplete: truncated file")
            raise CorruptMediaError(path, f"stream {index} has {scan.corrupt} damaged packets")
    if vs is not None:
        counted = scans[vs.index].packets
        if counted == 0:
            raise EmptyMediaError(path, "the video stream holds no complete frame")
        if vs.frames and counted < vs.frames:
            raise TruncatedMediaError(
                path, f"the container declares {vs.frames} video frames but only {counted} "
                      "are present: truncated file")
    elif all(scans[s.index].packets == 0 for s in audio_streams):
        raise EmptyMediaError(path, "the audio stream holds no samples")
    if container.duration and container.format.name.startswith(_HEADER_DURATION_FORMATS):
        declared = Fraction(container.duration, av.time_base)
        ends = [Fraction(scan.end) * _tb(s) for s in ([vs] if vs else []) + audio_streams
                if (scan := scans[s.index]).end is not None]
        start = Fraction(container.start_time or 0, av.time_base)
        reached = max(ends, default=Fraction(0)) - start
        if reached < declared - Fraction(1, 2) and reached < declared * Fraction(95, 100):
            raise TruncatedMediaError(
                path, f"the header says {float(declared):.3f} s but the streams end at "
                      f"{float(reached):.3f} s: truncated file")


def _tb(stream: VideoStream | AudioStream) -> Fraction:
    return stream.time_base or Fraction(1, av.time_base)


def _video_info(path: Path, container: av.container.InputContainer, vs: VideoStream,
                scan: _Scan, first_frame: av.VideoFrame | None) -> VideoStreamInfo:
    if first_frame is None:
        raise CorruptMediaError(path, "no video frame could be decoded")
    cc = vs.codec_context
    tb = _tb(vs)
    declared = vs.average_rate or vs.guessed_rate or vs.base_rate
    rate, vfr, duration = _timing(scan, tb, Fraction(declared) if declared else None)
    if rate is None:
        raise UnsupportedMediaError(path, "the video stream states no frame rate")
    start = Fraction(scan.first) * tb if scan.first is not None else Fraction(0)
    return VideoStreamInfo(
        width=cc.width,
        height=cc.height,
        frame_rate=rate,
        time_base=tb,
        frame_count=scan.packets,
        index=vs.index,
        codec=cc.codec.canonical_name,
        pix_fmt=cc.pix_fmt or first_frame.format.name,
        duration=duration if duration is not None else scan.packets / rate,
        start_time=start,
        sample_aspect_ratio=vs.sample_aspect_ratio or None,
        color_primaries=_tag(colour.PRIMARIES, cc.color_primaries, first_frame.color_primaries),
        color_transfer=_tag(colour.TRANSFER, cc.color_trc, first_frame.color_trc),
        color_matrix=_tag(colour.MATRIX, cc.colorspace, first_frame.colorspace),
        color_range=_tag(colour.RANGE, cc.color_range, first_frame.color_range),
        rotation=_rotation(first_frame, vs.metadata),
        timecode=_stream_timecode(container, vs),
        variable_frame_rate=vfr,
    )


def _tag(table: dict[int, str], stream_value: int, frame_value: int) -> str | None:
    """A colour tag from the stream parameters, else from the first frame's bitstream.

    Some muxers (ProRes in QuickTime without a ``colr`` atom) leave the stream parameters
    unspecified while the frames carry the tags.
    """
    return colour.name_of(table, stream_value) or colour.name_of(table, frame_value)


def _timing(scan: _Scan, tb: Fraction, declared: Fraction | None
            ) -> tuple[Fraction | None, bool, Fraction | None]:
    """(frame rate, variable?, duration) from the packet timestamps.

    A stream is constant-rate when every gap between consecutive presentation timestamps is
    the mean gap, give or take one tick of the time base (for rounding: 29.97 fps in a
    1/1000 time base alternates 33 and 34) plus 1 %. A missing frame, a duplicated timestamp
    or a phone's wandering clock all fail that test.
    """
    n = len(scan.pts)
    if n < 2 or scan.missing_pts:
        return declared, False, None
    pts = np.sort(np.frombuffer(scan.pts, dtype=np.int64))
    span = int(pts[-1] - pts[0])
    if span <= 0:
        return declared, True, None
    mean = Fraction(span, n - 1)
    deltas = np.diff(pts).astype(np.float64)
    tolerance = 1.0 + 0.01 * float(mean)
    vfr = bool(np.any(np.abs(deltas - float(mean)) > tolerance))
    measured = 1 / (mean * tb)
    if not vfr and declared and abs(declared - measured) <= measured / 500:
        rate = declared
    else:
        rate = _snap_rate(measured, Fraction(1, 100) if vfr else Fraction(1, 500))
    duration = n / rate if not vfr else mean * n * tb
    return rate, vfr, duration


def _snap_rate(measured: Fraction, tolerance: Fraction) -> Fraction:
    best = min(STANDARD_RATES, key=lambda r: abs(r - measured))
    if abs(best - measured) <= measured * tolerance:
        return best
    return measured.limit_denominator(1001)


def _rotation(frame: av.VideoFrame, metadata: dict[str, str]) -> int:
    """Counter-clockwise degrees: the display matrix if present, else the old ``rotate`` tag.

    The ``rotate`` tag (written by older phones and muxers) counts clockwise.
    """
    degrees = round(frame.rotation) % 360
    if degrees == 0:
        tag = {k.lower(): v for k, v in metadata.items()}.get("rotate")
        if tag is not None:
            try:
                degrees = (-int(float(tag))) % 360
            except ValueError:
                degrees = 0
    return degrees


def _timecode_tag(metadata: dict[str, str]) -> str | None:
    for key, value in metadata.items():
        if key.lower() == "timecode" and _TIMECODE_RE.match(value.strip()):
            return value.strip()
    return None


def _stream_timecode(container: av.container.InputContainer, vs: VideoStream) -> str | None:
    """The video stream's timecode tag, else a timecode (tmcd) track's, else the container's."""
    found = _timecode_tag(vs.metadata)
    if found is None:
        for s in container.streams:
            if s.type == "data" and (found := _timecode_tag(s.metadata)):
                break
    return found or _timecode_tag(container.metadata)


def _audio_info(stream: AudioStream, scan: _Scan) -> AudioStreamInfo:
    cc = stream.codec_context
    tb = _tb(stream)
    start = stream.start_time if stream.start_time is not None else scan.first
    duration: Fraction | None = None
    if scan.end is not None and start is not None:
        duration = Fraction(scan.end - max(start, scan.first or 0)) * tb
    elif stream.duration:
        duration = Fraction(stream.duration) * tb
    return AudioStreamInfo(
        index=stream.index,
        codec=cc.codec.canonical_name,
        sample_rate=cc.sample_rate,
        channels=cc.channels,
        layout=cc.layout.name,
        duration=duration,
        start_time=Fraction(start) * tb if start is not None else None,
    )


