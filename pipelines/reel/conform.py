"""Conform: the full reel again, from the source reel and per-shot replacements.

:func:`conform_reel` writes every frame of the source reel in order, taking the frames of a
replaced shot from its replacement (a file with exactly the shot's frame count, frame size
and frame rate), and keeps the source's frame rate, frame count and start timecode. It
streams: packets or frames pass one at a time, whatever the reel's length.

Three ways, chosen per reel (``mode="auto"``) or forced:

* ``"smart"`` (intra-only sources, e.g. ProRes, where every frame is coded on its own):
  the untouched shots' packets are copied unchanged (their pixels are bit-identical: PSNR
  infinite); a replacement in the same codec, profile, pixel format and size is copied too,
  any other is encoded once into the source's codec and profile.
* ``"copy"``: every shot is copied, which for a long-GOP source (H.264) is possible only when
  there is nothing to replace, or the replacements carry the source's exact codec setup and
  every shot starts on a keyframe.
* ``"encode"`` (the fallback for long-GOP sources): every frame decoded and encoded again by
  :class:`~pipelines.media.VideoWriter` (H.264, or ProRes 422 HQ for ProRes sources): the
  untouched shots are unchanged only up to the codec (their PSNR is finite and reported by
  the tests and bench).

The source's audio is carried along (remuxed) unless ``audio`` says otherwise. The output is
written beside its final name and renamed into place only after it has been probed and found
to hold the reel's frame count, rate and timecode: a failed conform leaves no file behind.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import av
import av.container
import numpy as np
from av.video.stream import VideoStream

from pipelines.media import MediaError, MediaNotFoundError
from pipelines.media._audiomux import ArrayFeed, AudioFeed, RemuxFeed, SourceAudio
from pipelines.media._container import open_input
from pipelines.media.audio import Audio
from pipelines.media.probe import MediaInfo, VideoStreamInfo, probe
from pipelines.media.reader import VideoReader
from pipelines.media.writer import Codec, VideoWriter

from .errors import ConformError, ReelNotFoundError, ReplacementMismatchError
from .shots import ShotList

ConformMode = Literal["auto", "smart", "copy", "encode"]
ShotAction = Literal["copied", "replaced (copied)", "replaced (encoded)", "encoded"]
Progress = Callable[[int, int], None]

INTRA_CODECS = frozenset({"prores", "dnxhd", "mjpeg", "ffv1", "rawvideo"})
"""Codecs whose every frame is coded on its own: any frame range can be copied."""

_PRORES_PROFILES = {"apco": "0", "apcs": "1", "apcn": "2", "apch": "3", "ap4h": "4",
                    "ap4x": "5"}
_FORMATS = {".mov": "mov", ".mp4": "mp4", ".mkv": "matroska"}


@dataclass(frozen=True)
class ShotConform:
    """What happened to one shot."""

    shot: int
    frames: int
    action: ShotAction


@dataclass(frozen=True)
class ConformReport:
    """The conformed reel: how it was made, and how fast."""

    path: Path
    mode: Literal["smart", "copy", "encode"]
    frames: int
    frame_rate: Fraction
    timecode: str | None
    shots: tuple[ShotConform, ...]
    seconds: float

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def conform_reel(source: str | os.PathLike[str], shots: ShotList,
                 replacements: Mapping[int, str | os.PathLike[str]],
                 output: str | os.PathLike[str], *, mode: ConformMode = "auto",
                 crf: int = 18, preset: str = "medium",
                 audio: Literal["source"] | Audio | None = "source",
                 progress: Progress | None = None, codec: Codec | None = None
                 ) -> ConformReport:
    """Write the reel ``source`` to ``output`` with shot ``i`` taken from
    ``replacements[i]``; see the module's docstring for the modes. ``codec`` (``"h264"`` or
    ``"prores"``) asks for another codec than the source's (a ProRes master of an H.264
    reel, an H.264 proxy of a ProRes one): every frame is then encoded once."""
    started = time.perf_counter()
    src = Path(source)
    out = Path(output)
    info = _probe(src, "source reel")
    video = info.require_video()
    if video.variable_frame_rate:
        raise ConformError(f"{src.name}: variable frame rate; a reel is conformed at a "
                           "constant rate (conform the source first)")
    try:
        shots.check_matches(info)
    except ConformError:
        raise
    except ValueError as exc:
        raise ConformError(f"{src.name}: the shot list does not describe this reel: {exc}"
                           ) from exc
    container_format = _FORMATS.get(out.suffix.lower())
    if container_format is None:
        raise ConformError(f"{out.name}: the conformed reel is .mov, .mp4 or .mkv")
    if out.resolve() == src.resolve():
        raise ConformError(f"{out.name}: the output cannot overwrite its source")
    reps = _check_replacements(shots, video, replacements)
    chosen = _choose_mode(mode, info, reps, container_format)
    if codec is not None and codec != _native_codec(video.codec):
        if mode in ("smart", "copy"):
            raise ConformError(f"{out.name}: a {codec} output of a {video.codec} source is "
                               "encoded (mode='encode' or 'auto')")
        chosen = "encode"
    tmp = out.with_name(f".{out.name}.part{os.getpid()}{out.suffix}")
    try:
        if chosen == "encode":
            actions = _encode(src, info, shots, reps, tmp, crf, preset, audio, progress,
                              codec or _native_codec(video.codec))
        else:
            actions = _copy(src, info, shots, reps, tmp, container_format, chosen, audio,
                            progress)
        _verify(tmp, out, info, shots)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return ConformReport(out, chosen, shots.frame_count, video.frame_rate, info.timecode,
                         tuple(actions), time.perf_counter() - started)


# --------------------------------------------------------------------------- checks


def _probe(path: Path, what: str) -> MediaInfo:
    try:
        return probe(path, require_video=True)
    except MediaNotFoundError as exc:
        raise ReelNotFoundError(f"{what} {exc.path}: {exc.reason}") from exc
    except MediaError as exc:
        raise ConformError(f"{what} {exc.path}: {exc.reason}") from exc


@dataclass(frozen=True)
class _Replacement:
    path: Path
    info: MediaInfo

    @property
    def video(self) -> VideoStreamInfo:
        return self.info.require_video()


def _check_replacements(shots: ShotList, video: VideoStreamInfo,
                        replacements: Mapping[int, str | os.PathLike[str]]
                        ) -> dict[int, _Replacement]:
    reps: dict[int, _Replacement] = {}
    for index, path in sorted(replacements.items()):
        if not 0 <= index < len(shots):
            raise ConformError(f"replacement for shot {index}: the reel has shots 0-"
                               f"{len(shots) - 1}")
        shot = shots[index]
        info = _probe(Path(path), f"replacement for shot {index}")
        rv = info.require_video()
        problems = []
        if rv.frame_count != shot.frames:
            problems.append(f"{rv.frame_count} frames, the shot has {shot.frames}")
        if (rv.width, rv.height) != (video.width, video.height):
            problems.append(f"{rv.width}x{rv.height}, the reel is {video.width}x{video.height}")
        if rv.frame_rate != video.frame_rate or rv.variable_frame_rate:
            problems.append(f"{float(rv.frame_rate):.3f} fps"
                            f"{' (variable)' if rv.variable_frame_rate else ''}, the reel "
                            f"{float(video.frame_rate):.3f} fps")
        if rv.rotation != video.rotation:
            problems.append(f"rotation {rv.rotation}, the reel {video.rotation}")
        if problems:
            raise ReplacementMismatchError(
                f"replacement for shot {index} ({Path(path).name}, frames {shot.start}-"
                f"{shot.end - 1}, {shot.record_tc_in}): " + "; ".join(problems))
        reps[index] = _Replacement(Path(path), info)
    return reps


def _codec_setup(path: Path, info: MediaInfo) -> tuple[str, str, str, bytes]:
    """(codec, codec tag, pixel format, extradata) of the first video stream."""
    video = info.require_video()
    with open_input(path) as container:
        cc = container.streams[video.index].codec_context
        extradata = bytes(cc.extradata or b"")
        return video.codec, str(cc.codec_tag), video.pix_fmt, extradata


def _copyable(rep: _Replacement, source_setup: tuple[str, str, str, bytes]) -> bool:
    return _codec_setup(rep.path, rep.info) == source_setup


def _choose_mode(mode: ConformMode, info: MediaInfo, reps: dict[int, _Replacement],
                 container_format: str) -> Literal["smart", "copy", "encode"]:
    video = info.require_video()
    intra = video.codec in INTRA_CODECS
    fits = _container_accepts(container_format, video.codec)
    if mode == "encode":
        return "encode"
    if mode == "smart":
        if not intra or not fits:
            raise ConformError(f"{info.path.name}: smart conform needs an intra-only source "
                               f"codec ({', '.join(sorted(INTRA_CODECS))}) that the output "
                               f"container takes; this one is {video.codec}")
        return "smart"
    setup = _codec_setup(info.path, info)
    all_copy = fits and all(_copyable(r, setup) for r in reps.values())
    if mode == "copy":
        if not all_copy:
            raise ConformError(f"{info.path.name}: stream copy needs every replacement in the "
                               f"source's exact codec setup ({video.codec}, same parameters) "
                               "and a container that takes it")
        if not intra and reps:
            raise ConformError(f"{info.path.name}: a long-GOP source ({video.codec}) with "
                               f"{len(reps)} replaced shots cannot be stream-copied; use "
                               "mode='encode' (or 'auto')")
        return "copy"
    if intra and fits:
        return "smart"
    if all_copy and not reps:
        return "copy"
    return "encode"


def _native_codec(codec: str) -> Codec:
    """The writer's codec an encode keeps a source in."""
    return "prores" if codec == "prores" else "h264"


def _container_accepts(container_format: str, codec: str) -> bool:
    return not (container_format == "mp4" and codec == "prores")


# --------------------------------------------------------------------------- copy


def _copy(src: Path, info: MediaInfo, shots: ShotList, reps: dict[int, _Replacement],
          tmp: Path, container_format: str, mode: Literal["smart", "copy"],
          audio: Literal["source"] | Audio | None, progress: Progress | None
          ) -> list[ShotConform]:
    video = info.require_video()
    rate = video.frame_rate
    setup = _codec_setup(src, info)
    options: dict[str, str] = {}
    if container_format in ("mov", "mp4"):
        options["movflags"] = "+write_colr"
        options["video_track_timescale"] = str(rate.numerator)
    actions: list[ShotConform] = []
    with open_input(src) as inp, av.open(str(tmp), "w", format=container_format,
                                         options=options) as out:
        vin = inp.streams[video.index]
        if not isinstance(vin, VideoStream):
            raise ConformError(f"{src.name}: the video stream changed since it was probed")
        vout = out.add_stream_from_template(vin)
        vout.time_base = 1 / rate
        vout.codec_context.framerate = rate  # the QuickTime muxer's tmcd track needs it
        if info.timecode:
            vout.metadata["timecode"] = info.timecode
        feed = _audio_feed(out, src, info, video, audio)
        encoder: _ShotEncoder | None = None
        written = 0
        source_packets = _frame_packets(inp, vin, video, src)
        try:
            if mode == "copy" and video.codec not in INTRA_CODECS:
                # nothing replaced (checked): every packet as it is, reordering included
                for packet in inp.demux(vin):
                    if packet.size and not packet.is_discard:
                        _mux_reordered(out, vout, packet, video)
                actions = [ShotConform(s.index, s.frames, "copied") for s in shots]
            for shot in shots if not actions else ():
                rep = reps.get(shot.index)
                if rep is None:
                    for frame, packet in _take(source_packets, shot.start, shot.end, src):
                        _mux(out, vout, packet, frame, rate)
                    actions.append(ShotConform(shot.index, shot.frames, "copied"))
                elif _copyable(rep, setup):
                    with open_input(rep.path) as rin:
                        rv = rin.streams[rep.video.index]
                        assert isinstance(rv, VideoStream)
                        rpackets = _frame_packets(rin, rv, rep.video, rep.path)
                        for frame, packet in _take(rpackets, 0, shot.frames, rep.path):
                            _mux(out, vout, packet, shot.start + frame, rate)
                    _skip(source_packets, shot.start, shot.end, src)
                    actions.append(ShotConform(shot.index, shot.frames, "replaced (copied)"))
                else:
                    encoder = encoder or _ShotEncoder(vin, video)
                    encoder.encode_shot(out, vout, rep, shot.start, rate)
                    _skip(source_packets, shot.start, shot.end, src)
                    actions.append(ShotConform(shot.index, shot.frames, "replaced (encoded)"))
                written = shot.end
                if feed is not None:
                    feed.advance(Fraction(written) / rate)
                if progress is not None:
                    progress(written, shots.frame_count)
            if feed is not None:
                feed.finish()
                feed = None
        finally:
            if feed is not None:
                with contextlib.suppress(av.FFmpegError, OSError):
                    feed.discard()
    return actions


def _audio_feed(out: av.container.OutputContainer, src: Path, info: MediaInfo,
                video: VideoStreamInfo, audio: Literal["source"] | Audio | None
                ) -> AudioFeed | None:
    if isinstance(audio, Audio):
        return ArrayFeed(out, audio, 192_000)
    if audio == "source" and info.audio:
        return RemuxFeed(out, SourceAudio(src), video.start_time, 192_000)
    return None


def _frame_packets(container: av.container.InputContainer, stream: VideoStream,
                   video: VideoStreamInfo, path: Path) -> Iterator[tuple[int, Any]]:
    """(frame index, packet) in decode order; the index from the packet's timestamp."""
    tb = video.time_base
    for packet in container.demux(stream):
        if packet.size == 0 or packet.is_discard:
            continue
        ts = packet.pts if packet.pts is not None else packet.dts
        if ts is None:
            raise ConformError(f"{path.name}: a packet without a timestamp cannot be placed")
        yield round((Fraction(ts) * tb - video.start_time) * video.frame_rate), packet


def _take(packets: Iterator[tuple[int, Any]], start: int, end: int, path: Path
          ) -> Iterator[tuple[int, Any]]:
    """The packets of frames ``start .. end`` (intra-only: one packet per frame, in order)."""
    for expected in range(start, end):
        item = next(packets, None)
        if item is None:
            raise ConformError(f"{path.name}: the stream ends before frame {expected}")
        frame, packet = item
        if frame != expected:
            raise ConformError(f"{path.name}: packet for frame {frame} where frame {expected} "
                               "was due (reordered or missing frames cannot be copied)")
        yield frame, packet


def _skip(packets: Iterator[tuple[int, Any]], start: int, end: int, path: Path) -> None:
    for _ in _take(packets, start, end, path):
        pass


def _mux(out: av.container.OutputContainer, stream: VideoStream, packet: Any, frame: int,
         rate: Fraction) -> None:
    packet.stream = stream
    packet.time_base = 1 / rate
    packet.pts = packet.dts = frame
    packet.duration = 1
    out.mux(packet)


def _mux_reordered(out: av.container.OutputContainer, stream: VideoStream, packet: Any,
                   video: VideoStreamInfo) -> None:
    """A packet of a long-GOP stream, its pts and dts moved to frame units from frame 0."""
    def frame(ts: int) -> int:
        return round((Fraction(ts) * video.time_base - video.start_time) * video.frame_rate)

    pts, dts = packet.pts, packet.dts
    packet.stream = stream
    packet.time_base = 1 / video.frame_rate
    if pts is not None:
        packet.pts = frame(pts)
    if dts is not None:
        packet.dts = frame(dts)
    packet.duration = 1
    out.mux(packet)


class _ShotEncoder:
    """Encodes a replacement into the source's intra codec and profile (smart mode)."""

    def __init__(self, vin: VideoStream, video: VideoStreamInfo) -> None:
        self.video = video
        self.tag = str(vin.codec_context.codec_tag)
        self.pix_fmt = video.pix_fmt
        if video.codec != "prores":
            raise ConformError(f"smart conform re-encodes replacements only into ProRes; "
                               f"the source is {video.codec} (use mode='encode')")
        self.profile = _PRORES_PROFILES.get(self.tag, "3")

    def encode_shot(self, out: av.container.OutputContainer, vout: VideoStream,
                    rep: _Replacement, start: int, rate: Fraction) -> None:
        ctx = av.CodecContext.create("prores_ks", "w")
        assert isinstance(ctx, av.video.codeccontext.VideoCodecContext)
        ctx.width, ctx.height = self.video.width, self.video.height
        ctx.pix_fmt = self.pix_fmt
        ctx.time_base = 1 / rate
        ctx.framerate = rate
        ctx.options = {"profile": self.profile, "vendor": "apl0"}
        index = muxed = 0  # an intra codec returns one packet per frame, in order
        with open_input(rep.path) as rin:
            stream = rin.streams[rep.video.index]
            if not isinstance(stream, VideoStream):
                raise ConformError(f"{rep.path.name}: the video stream changed since the probe")
            for frame in rin.decode(stream):
                yuv = frame.reformat(format=self.pix_fmt)
                yuv.pts = index
                yuv.time_base = 1 / rate
                for packet in ctx.encode(yuv):
                    _mux(out, vout, packet, start + muxed, rate)
                    muxed += 1
                index += 1
        for packet in ctx.encode(None):
            _mux(out, vout, packet, start + muxed, rate)
            muxed += 1
        if muxed != rep.video.frame_count:
            raise ConformError(f"{rep.path.name}: encoded {muxed} frames of "
                               f"{rep.video.frame_count}")


# --------------------------------------------------------------------------- encode


def _encode(src: Path, info: MediaInfo, shots: ShotList, reps: dict[int, _Replacement],
            tmp: Path, crf: int, preset: str, audio: Literal["source"] | Audio | None,
            progress: Progress | None, codec: Codec) -> list[ShotConform]:
    feed: SourceAudio | Audio | None = None
    if isinstance(audio, Audio):
        feed = audio
    elif audio == "source" and info.audio:
        feed = SourceAudio(src)
    actions: list[ShotConform] = []
    reader = VideoReader(src)
    like = reader.output
    with reader, VideoWriter(tmp, like, codec=codec, crf=crf, preset=preset, audio=feed,
                             timecode=info.timecode) as writer:
        frames = iter(reader)
        for shot in shots:
            rep = reps.get(shot.index)
            if rep is None:
                for _ in range(shot.frames):
                    writer.write(next(frames).rgb)
                actions.append(ShotConform(shot.index, shot.frames, "encoded"))
            else:
                with VideoReader(rep.path) as rreader:
                    for frame in rreader:
                        writer.write(np.ascontiguousarray(frame.rgb))
                for _ in range(shot.frames):
                    next(frames)  # the source's frames of a replaced shot are read past
                actions.append(ShotConform(shot.index, shot.frames, "replaced (encoded)"))
            if progress is not None:
                progress(shot.end, shots.frame_count)
    return actions


# --------------------------------------------------------------------------- verify


def _verify(tmp: Path, out: Path, info: MediaInfo, shots: ShotList) -> None:
    try:
        got = probe(tmp, require_video=True)
    except MediaError as exc:
        raise ConformError(f"{out.name}: the conformed reel is unreadable: {exc.reason}"
                           ) from exc
    v = got.require_video()
    src = info.require_video()
    problems = []
    if v.frame_count != shots.frame_count:
        problems.append(f"{v.frame_count} frames, not {shots.frame_count}")
    if v.frame_rate != src.frame_rate:
        problems.append(f"{v.frame_rate} fps, not {src.frame_rate}")
    if (got.timecode or None) != (info.timecode or None):
        problems.append(f"timecode {got.timecode}, not {info.timecode}")
    if problems:
        raise ConformError(f"{out.name}: the conformed reel came out wrong: "
                           + "; ".join(problems))
