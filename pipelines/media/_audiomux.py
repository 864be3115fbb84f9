"""Audio tracks for ``VideoWriter``, fed in step with the video.

The writer asks each feed to catch up to the time of the last video frame written, so
audio and video packets reach the muxer interleaved and neither side piles up in memory,
however long the programme. Two feeds: packets remuxed from a source file (no re-encode
when the output container accepts the codec, else decoded and encoded to AAC), and an
``Audio`` array encoded to AAC.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, Protocol

import av
import av.container
import numpy as np
from av.audio.stream import AudioStream
from av.packet import Packet

from ._container import open_input, require_decoder
from .audio import Audio
from .errors import MediaError, NoAudioStreamError, UnsupportedMediaError

AAC_FRAME = 1024


@dataclass(frozen=True)
class SourceAudio:
    """Audio stream number ``stream`` (audio streams only) of ``path``, to go with the video.

    ``codec="copy"`` remuxes packets unchanged when the output container accepts the codec
    and falls back to AAC otherwise; ``codec="aac"`` always re-encodes. Timing follows the
    source: packets keep their offset from the source video's first frame (pass the source's
    ``VideoStreamInfo`` as ``like``), so sync is kept; audio before the first frame is cut.
    """

    path: str | os.PathLike[str]
    stream: int = 0
    codec: Literal["copy", "aac"] = "copy"


class AudioFeed(Protocol):
    """What the writer needs from an audio track."""

    def advance(self, until: Fraction | None) -> None:
        """Mux audio up to ``until`` seconds of output time (``None``: to the end)."""

    def finish(self) -> None:
        """Mux the rest, flush the encoder (if any) and release inputs."""

    def discard(self) -> None:
        """Release inputs without writing anything more (the output is being abandoned)."""


def _aac_stream(out: av.container.OutputContainer, rate: int, layout: str,
                bitrate: int) -> AudioStream:
    stream = out.add_stream("aac", rate=rate, layout=layout)
    stream.bit_rate = bitrate
    return stream


_AAC_LAYOUTS = {"mono": "mono", "stereo": "stereo", "5.1": "5.1", "5.1(side)": "5.1",
                "1 channels": "mono", "2 channels": "stereo", "6 channels": "5.1"}


def aac_layout(path: str | os.PathLike[str], layout: str) -> str:
    """The AAC layout for a source layout ("N channels" = order unstated: FFmpeg's default)."""
    if layout not in _AAC_LAYOUTS:
        raise UnsupportedMediaError(
            path, f"channel layout {layout!r} cannot be re-encoded: supported are mono, "
                  "stereo, 5.1")
    return _AAC_LAYOUTS[layout]


class RemuxFeed:
    """Packets of a source file's audio stream, copied or transcoded to AAC."""

    def __init__(self, out: av.container.OutputContainer, source: SourceAudio,
                 video_start: Fraction, bitrate: int) -> None:
        self._out = out
        self._in = open_input(source.path)
        streams = self._in.streams.audio
        if source.stream >= len(streams):
            self._in.close()
            raise NoAudioStreamError(
                source.path, f"audio stream {source.stream} requested, the file has "
                             f"{len(streams)}")
        self._src = streams[source.stream]
        try:
            require_decoder(source.path, self._src)
        except MediaError:
            self._in.close()
            raise
        self._tb = self._src.time_base or Fraction(1, av.time_base)
        self._offset = video_start
        codec = self._src.codec_context.codec.canonical_name
        self.copy = source.codec == "copy" and codec in out.supported_codecs
        cc = self._src.codec_context
        if self.copy:
            self.stream: AudioStream = out.add_stream_from_template(self._src)
        else:
            try:
                layout = aac_layout(source.path, cc.layout.name)
            except MediaError:
                self._in.close()
                raise
            self.stream = _aac_stream(out, cc.sample_rate, layout, bitrate)
        self._packets: Iterator[Packet[AudioStream]] = self._in.demux(self._src)
        self._held: Packet[AudioStream] | None = None
        self._done = False

    def _seconds(self, packet: Packet[AudioStream]) -> Fraction | None:
        ts = packet.pts if packet.pts is not None else packet.dts
        return None if ts is None else Fraction(ts) * self._tb - self._offset

    def advance(self, until: Fraction | None) -> None:
        while not self._done:
            packet = self._held or next(self._packets, None)
            self._held = None
            if packet is None:
                self._done = True
                break
            if packet.size == 0:
                continue
            t = self._seconds(packet)
            if until is not None and t is not None and t > until:
                self._held = packet
                return
            if t is None or t < 0:
                continue  # before the first video frame, or untimed: not placeable
            if self.copy:
                self._mux_copy(packet)
            else:
                self._transcode(packet)

    def _mux_copy(self, packet: Packet[AudioStream]) -> None:
        shift = round(self._offset / self._tb)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self.stream
        self._out.mux(packet)

    def _transcode(self, packet: Packet[AudioStream]) -> None:
        for frame in self._src.decode(packet):
            if frame.pts is not None:
                rate = frame.sample_rate
                start = Fraction(frame.pts) * self._tb - self._offset
                frame.pts = round(start * rate)
                frame.time_base = Fraction(1, rate)
            self._out.mux(self.stream.encode(frame))

    def finish(self) -> None:
        self.advance(None)
        if not self.copy:
            self._out.mux(self.stream.encode(None))
        self._in.close()

    def discard(self) -> None:
        self._in.close()


class ArrayFeed:
    """An ``Audio`` array encoded to AAC, starting with the first video frame."""

    def __init__(self, out: av.container.OutputContainer, audio: Audio, bitrate: int) -> None:
        self._out = out
        self._audio = audio
        self._layout = audio.layout
        self.stream = _aac_stream(out, audio.rate, self._layout, bitrate)
        self._pos = 0

    def advance(self, until: Fraction | None) -> None:
        audio = self._audio
        end = audio.frames if until is None else min(audio.frames,
                                                     math.ceil(until * audio.rate))
        while self._pos < end:
            stop = min(end, self._pos + AAC_FRAME)
            chunk = np.ascontiguousarray(audio.samples[:, self._pos:stop])
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=self._layout)
            frame.sample_rate = audio.rate
            frame.pts = self._pos
            frame.time_base = Fraction(1, audio.rate)
            self._out.mux(self.stream.encode(frame))
            self._pos = stop

    def finish(self) -> None:
        self.advance(None)
        self._out.mux(self.stream.encode(None))

    def discard(self) -> None:
        """Nothing to release: the array belongs to the caller."""
