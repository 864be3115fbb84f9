"""Test media made with PyAV: clips with the properties probe and writer must handle.

Everything is written under a pytest temporary folder; only ``assets/`` is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import av.container
import numpy as np
from av.audio.stream import AudioStream
from av.video.reformatter import ColorRange, Colorspace, VideoReformatter
from av.video.stream import VideoStream
from numpy.typing import NDArray

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets" / "media"
GRID = sorted((ASSETS / "grid").glob("*.mpg"))
ASTRONAUT = ASSETS / "astronaut.png"

RGB = NDArray[np.uint8]


def grid_frames(count: int, *, size: tuple[int, int] | None = None) -> Iterator[RGB]:
    """``count`` frames of the GRID clips one after another (cycling), optionally rescaled.

    Streams: never more than one decoded frame at a time.
    """
    made = 0
    reformatter = VideoReformatter()
    while made < count:
        for path in GRID:
            with av.open(str(path)) as container:
                for frame in container.decode(video=0):
                    if made == count:
                        return
                    width, height = size or (frame.width, frame.height)
                    rgb = reformatter.reformat(
                        frame, width=width, height=height, format="rgb24",
                        src_colorspace=Colorspace.ITU601, src_color_range=ColorRange.MPEG,
                        interpolation="BICUBIC").to_ndarray()
                    yield np.ascontiguousarray(rgb)
                    made += 1


def marker_frame(i: int, width: int, height: int) -> RGB:
    """A frame that shows ``i`` (0-255) as 8 black/white bars: survives lossy coding."""
    rgb = np.zeros((height, width, 3), np.uint8)
    bar = width // 8
    for bit in range(8):
        if i >> bit & 1:
            rgb[:, bit * bar:(bit + 1) * bar] = 255
    return rgb


def read_marker(rgb: RGB) -> int:
    """The number ``marker_frame`` drew."""
    bar = rgb.shape[1] // 8
    return sum(1 << bit for bit in range(8)
               if rgb[:, bit * bar + bar // 4: bit * bar + 3 * bar // 4].mean() > 128)


def write_video(path: Path, frames: Iterable[RGB], *, rate: Fraction | int = 25,
                codec: str = "libx264", pix_fmt: str = "yuv420p",
                time_base: Fraction | None = None, pts: Sequence[int] | None = None,
                timecode: str | None = None, rotation: int = 0,
                colour: tuple[int, int, int, int] | None = None,
                options: dict[str, str] | None = None,
                container_options: dict[str, str] | None = None,
                audio: tuple[NDArray[np.float32], int] | None = None,
                audio_codec: str = "aac") -> Path:
    """Encode RGB ``frames``; ``pts`` (in ``time_base`` units) makes variable-rate video."""
    layouts = {1: "mono", 2: "stereo", 6: "5.1"}
    with av.open(str(path), "w", options=container_options or {}) as out:
        stream = out.add_stream(codec, rate=Fraction(rate))
        assert isinstance(stream, VideoStream)
        first = True
        astream: AudioStream | None = None
        if audio is not None:
            samples, arate = audio
            added = out.add_stream(audio_codec, rate=arate, layout=layouts[samples.shape[0]])
            assert isinstance(added, AudioStream)
            astream = added
        for i, rgb in enumerate(frames):
            if first:
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = pix_fmt
                stream.codec_context.options = {"preset": "ultrafast", **(options or {})} \
                    if codec == "libx264" else (options or {})
                if time_base is not None:
                    stream.time_base = time_base
                    stream.codec_context.time_base = time_base
                if colour is not None:
                    cc = stream.codec_context
                    cc.color_primaries, cc.color_trc, cc.colorspace, cc.color_range = colour
                if timecode:
                    stream.metadata["timecode"] = timecode
                if rotation:
                    stream.set_display_rotation(rotation)
                first = False
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=pix_fmt)
            if colour is not None:
                (frame.color_primaries, frame.color_trc, frame.colorspace,
                 frame.color_range) = colour
            frame.pts = pts[i] if pts is not None else i
            if time_base is not None:
                frame.time_base = time_base
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if astream is not None and audio is not None:
            _encode_audio(out, astream, *audio)
    return path


def _encode_audio(out: av.container.OutputContainer, stream: AudioStream,
                  samples: NDArray[np.float32], rate: int) -> None:
    layout = {1: "mono", 2: "stereo", 6: "5.1"}[samples.shape[0]]
    fmt = "fltp" if stream.codec_context.name in ("aac", "flac", "libmp3lame") else "s16p"
    for start in range(0, samples.shape[1], 1024):
        chunk = np.ascontiguousarray(samples[:, start:start + 1024])
        if fmt == "s16p":
            chunk = np.ascontiguousarray((np.clip(chunk, -1, 1) * 32767).astype(np.int16))
        frame = av.AudioFrame.from_ndarray(chunk, format=fmt, layout=layout)
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def write_audio(path: Path, samples: NDArray[np.float32], rate: int,
                codec: str = "pcm_s16le") -> Path:
    """An audio-only file."""
    layout = {1: "mono", 2: "stereo", 4: "quad", 6: "5.1"}[samples.shape[0]]
    with av.open(str(path), "w") as out:
        stream = out.add_stream(codec, rate=rate, layout=layout)
        assert isinstance(stream, AudioStream)
        fmt = "s16" if codec in ("pcm_s16le", "pcm_mulaw") else "fltp"
        for start in range(0, samples.shape[1], 1024):
            chunk = samples[:, start:start + 1024]
            if fmt == "s16":  # packed: [1, samples * channels]
                data = (np.clip(chunk, -1, 1) * 32767).astype(np.int16).T.reshape(1, -1)
            else:
                data = np.ascontiguousarray(chunk)
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data), format=fmt,
                                               layout=layout)
            frame.sample_rate = rate
            frame.pts = start
            frame.time_base = Fraction(1, rate)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def tone(freq: float, seconds: float, rate: int, channels: int = 1,
         amplitude: float = 0.25) -> NDArray[np.float32]:
    """A sine in every channel, [channels, samples] float32."""
    t = np.arange(round(seconds * rate)) / rate
    wave = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return np.ascontiguousarray(np.repeat(wave[None, :], channels, axis=0))


def y4m_header_only(path: Path, width: int, height: int) -> Path:
    """A YUV4MPEG2 file that declares ``width x height`` and holds a few bytes of one frame."""
    header = f"YUV4MPEG2 W{width} H{height} F25:1 Ip A1:1 C420jpeg\nFRAME\n".encode()
    path.write_bytes(header + bytes(4096))
    return path


def lavfi_frames(graph: str, size: tuple[int, int], count: int) -> list[RGB]:
    """``count`` RGB frames of an FFmpeg lavfi source; ``|`` separates the source from a
    filter chain (the size goes to the source): ``"testsrc|hue=H=t"``."""
    source, _, chain = graph.partition("|")
    name, _, opts = source.partition("=")
    spec = f"{name}={opts + ':' if opts else ''}size={size[0]}x{size[1]}:rate=25"
    if chain:
        spec += "," + chain
    frames: list[RGB] = []
    with av.open(spec, format="lavfi") as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= count:
                break
    return frames


def strip_by_reencode(src: Path, dst: Path, *, crf: int, size: tuple[int, int] = (360, 288)
                      ) -> Path:
    """What a platform does to an upload: the frames re-encoded to plain H.264, every byte of
    metadata (and so any C2PA manifest) gone; only an invisible watermark can survive."""
    with av.open(str(src)) as source, av.open(str(dst), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        stream.options = {"crf": str(crf)}
        for frame in source.decode(video=0):
            out.mux(stream.encode(frame.reformat(format="yuv420p")))
        out.mux(stream.encode(None))
    return dst
