"""``VideoWriter``: encode RGB frames to a file that matches its source.

What a post house checks on a returned clip: same frame count, frame rate, time base,
resolution, start timecode, colour tags, rotation and audio. The writer takes them all from
``like`` (the source's ``VideoStreamInfo``) and gives frame ``i`` the timestamp ``i`` in units
of ``1/frame_rate``, so nothing can drift.

Codecs: ``"h264"`` (libx264, CRF 18 by default, 4:2:0 8-bit: the delivery/review format) and
``"prores"`` (prores_ks profile 3 = 422 HQ, 4:2:2 10-bit in QuickTime: the master format).

Odd frame sizes: 4:2:0 needs even width and height. Padding would change the declared size
and cropping would lose a row of picture, so an odd-sized source is encoded as H.264 4:4:4
(High 4:4:4 Predictive profile) at its exact size, with a ``UserWarning``: every pixel kept,
but some hardware players do not decode that profile. ProRes 4:2:2 has no such constraint.

On an exception inside the ``with`` block the partial file is deleted: a crash never leaves
something that looks like an output.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path
from types import TracebackType
from typing import Literal

import av
import av.container
import numpy as np
from av.video.reformatter import Interpolation, VideoReformatter
from av.video.stream import VideoStream
from numpy.typing import NDArray

from . import colour
from ._audiomux import ArrayFeed, AudioFeed, RemuxFeed, SourceAudio
from .audio import Audio
from .probe import VideoStreamInfo
from .reader import Frame
from .timecode import parse as parse_timecode

Codec = Literal["h264", "prores"]

_FORMATS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
_CODECS = ("h264", "prores")
# Chroma is averaged (area) when subsampled, with exact rounding: of swscale's choices the
# one that loses least in a decode -> encode round trip (~45.6 dB for 4:2:0 before the codec,
# against ~44.8 dB with the default bilinear).
_TO_YUV = Interpolation.AREA | Interpolation.ACCURATE_RND


class VideoWriter:
    """Write frames like ``like``; use as a context manager, ``write`` each frame in order.

    ``audio`` is ``SourceAudio(path)`` (remux the source's track) or an ``Audio`` array
    (encoded to AAC at ``audio_bitrate``) or ``None``. ``timecode`` overrides
    ``like.timecode`` (the start timecode written as the ``timecode`` tag: a tmcd track in
    MP4/QuickTime, a tag in Matroska). ``crf`` and ``preset`` apply to H.264 only.
    """

    def __init__(self, path: str | os.PathLike[str], like: VideoStreamInfo, *,
                 codec: Codec = "h264", crf: int = 18, preset: str = "medium",
                 audio: SourceAudio | Audio | None = None, timecode: str | None = None,
                 audio_bitrate: int = 192_000, threads: int = 0) -> None:
        self.path = Path(path)
        self.like = like
        self.codec = codec
        self.format = _FORMATS.get(self.path.suffix.lower())
        if self.format is None:
            raise ValueError(f"{self.path.name}: output must end in one of {sorted(_FORMATS)}")
        if codec not in _CODECS:
            raise ValueError(f"codec {codec!r}: choose 'h264' or 'prores'")
        if codec == "prores" and self.format == "mp4":
            raise ValueError("ProRes goes in QuickTime (.mov) or Matroska (.mkv), not MP4")
        if not 0 <= crf <= 51:
            raise ValueError(f"crf {crf} outside 0-51")
        self.timecode = timecode if timecode is not None else like.timecode
        if self.timecode is not None:
            parse_timecode(self.timecode, like.frame_rate)  # refuse a label the rate lacks
        self.pix_fmt = self._pixel_format()
        self.frames_written = 0
        self._crf, self._preset, self._threads = crf, preset, threads
        self._audio_source = audio
        self._audio_bitrate = audio_bitrate
        self._container: av.container.OutputContainer | None = None
        self._stream: VideoStream | None = None
        self._feed: AudioFeed | None = None
        self._reformatter = VideoReformatter()
        self._matrix = colour.conversion_matrix(like.color_matrix, like.height)
        self._range = colour.conversion_range(like.color_range)
        self._tags = (
            colour.value_of(colour.PRIMARIES, like.color_primaries),
            colour.value_of(colour.TRANSFER, like.color_transfer),
            colour.value_of(colour.MATRIX, like.color_matrix),
            colour.value_of(colour.RANGE, like.color_range, colour.RANGE_UNSPECIFIED),
        )

    def _pixel_format(self) -> str:
        if self.codec == "prores":
            return "yuv422p10le"
        if self.like.width % 2 or self.like.height % 2:
            warnings.warn(
                f"{self.path.name}: odd frame size {self.like.width}x{self.like.height}; "
                "encoding H.264 4:4:4 (High 4:4:4 Predictive) to keep every pixel",
                UserWarning, stacklevel=3)
            return "yuv444p"
        return "yuv420p"

    def __enter__(self) -> VideoWriter:
        self.open()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def open(self) -> None:
        """Create the file and its streams (``__enter__`` does this)."""
        if self._container is not None:
            return
        like = self.like
        options: dict[str, str] = {}
        if self.format in ("mp4", "mov"):
            options["movflags"] = "+write_colr"
            if like.time_base.numerator == 1:
                options["video_track_timescale"] = str(like.time_base.denominator)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        out = self._container = av.open(str(self.path), mode="w", format=self.format,
                                        options=options)
        try:
            self._stream = self._video_stream(out)
            if isinstance(self._audio_source, SourceAudio):
                self._feed = RemuxFeed(out, self._audio_source, like.start_time,
                                       self._audio_bitrate)
            elif isinstance(self._audio_source, Audio):
                self._feed = ArrayFeed(out, self._audio_source, self._audio_bitrate)
        except BaseException:
            self.abort()
            raise

    def _video_stream(self, out: av.container.OutputContainer) -> VideoStream:
        like = self.like
        if self.codec == "h264":
            stream = out.add_stream("libx264", rate=like.frame_rate)
        else:
            stream = out.add_stream("prores_ks", rate=like.frame_rate)
        stream.width, stream.height = like.width, like.height
        stream.pix_fmt = self.pix_fmt
        stream.time_base = like.time_base
        cc = stream.codec_context
        cc.time_base = 1 / like.frame_rate
        if self.codec == "h264":
            cc.options = {"crf": str(self._crf), "preset": self._preset}
            # Frame threads, not libavcodec's default slice threads (two slices per frame):
            # 720p encodes ran 74 fps instead of 55 on 2 cores. Neither makes x264's bytes
            # reproducible here (the same frames encoded with threads gave other bytes now
            # and then, identical input buffers checked; one thread always gave the same):
            # a render's bytes are hashed after encoding, and tests compare pixels.
            cc.thread_type = "FRAME"
        else:
            cc.options = {"profile": "3", "vendor": "apl0"}
        cc.thread_count = self._threads
        cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = self._tags
        if like.sample_aspect_ratio:
            cc.sample_aspect_ratio = like.sample_aspect_ratio
        if self.timecode is not None:
            stream.metadata["timecode"] = self.timecode
        if like.rotation % 360:
            stream.set_display_rotation(like.rotation % 360)
        return stream

    def write(self, frame: Frame | NDArray[np.uint8]) -> None:
        """Encode the next frame: a ``Frame`` (its index must be the next one) or RGB pixels.

        Pixels are ``height x width x 3`` uint8 at exactly the size of ``like``.
        """
        if self._container is None or self._stream is None:
            raise RuntimeError("VideoWriter is not open (use it as a context manager)")
        if isinstance(frame, Frame):
            if frame.index != self.frames_written:
                raise ValueError(f"frame {frame.index} written as frame {self.frames_written}"
                                 ": frames must arrive in order, none skipped")
            rgb = frame.rgb
        else:
            rgb = frame
        expected = (self.like.height, self.like.width, 3)
        if rgb.shape != expected or rgb.dtype != np.uint8:
            raise ValueError(f"frame is {rgb.shape} {rgb.dtype}; expected {expected} uint8")
        video = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        yuv = self._reformatter.reformat(
            video, format=self.pix_fmt, dst_colorspace=self._matrix,
            dst_color_range=self._range, interpolation=_TO_YUV)
        yuv.color_primaries, yuv.color_trc, yuv.colorspace, yuv.color_range = self._tags
        yuv.pts = self.frames_written
        yuv.time_base = 1 / self.like.frame_rate
        self._container.mux(self._stream.encode(yuv))
        self.frames_written += 1
        if self._feed is not None:
            self._feed.advance(self.frames_written / self.like.frame_rate)

    def close(self) -> None:
        """Flush encoders, write the rest of the audio, finish the file."""
        out, self._container = self._container, None
        if out is None:
            return
        try:
            if self._stream is not None:
                out.mux(self._stream.encode(None))
            if self._feed is not None:
                self._feed.finish()
            out.close()
        except BaseException:
            self._container = out
            self.abort()
            raise

    def abort(self) -> None:
        """Stop and delete the partial file."""
        out, self._container = self._container, None
        if out is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                out.close()
        if self._feed is not None:
            with contextlib.suppress(av.FFmpegError, OSError):
                self._feed.discard()
        self.path.unlink(missing_ok=True)


def copy_video(source: str | os.PathLike[str], destination: str | os.PathLike[str], *,
               codec: Codec = "h264", crf: int = 18, preset: str = "medium",
               with_audio: bool = True) -> int:
    """Decode ``source`` and encode it again like itself: the floor of every pipeline.

    Returns the number of frames written.
    """
    from .reader import VideoReader

    with VideoReader(source) as reader:
        audio = SourceAudio(source) if with_audio and reader.info.audio else None
        with VideoWriter(destination, reader.output, codec=codec, crf=crf, preset=preset,
                         audio=audio) as writer:
            for frame in reader:
                writer.write(frame)
            return writer.frames_written


