"""The reel's shots as files, and a character's dub cut to a shot: what one shot's render
(:class:`studio.render.job.RenderJob`) takes as its source and its dub.

:func:`cut_shots` reads the reel once, in order, and encodes the frames of each wanted shot
into its own file (H.264 at a near-transparent CRF, the shot's record timecode), so cutting
any number of shots costs one decode of the reel, and memory holds one frame at a time.
Every shot file is checked to hold exactly the shot's frame count before it is renamed into
place: a shot file that exists is a whole one.
"""

from __future__ import annotations

import os
import wave
from collections.abc import Iterator, Mapping, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipelines.media import probe
from pipelines.media.audio import Audio
from pipelines.media.reader import Frame, VideoReader
from pipelines.media.writer import VideoWriter
from pipelines.reel import ShotList
from studio.errors import ReelInputError

#: Quality of the cut shots: they are encoded once more by the render (and the untouched
#: regions of a rendered shot once more by the conform), so the cut stays near transparent.
CUT_CRF = 10


def cut_shots(reel: Path, shots: ShotList, wanted: Mapping[int, Path], *,
              crf: int = CUT_CRF, preset: str = "fast") -> None:
    """Write shot ``i`` of ``reel`` to ``wanted[i]`` (``.mp4``) for every ``i`` asked."""
    if not wanted:
        return
    order = sorted(wanted)
    with VideoReader(reel) as reader:
        like = reader.output
        frames = iter(reader)
        position = 0
        for index in order:
            shot = shots[index]
            target = wanted[index]
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.stem}.part{os.getpid()}{target.suffix}")
            try:
                while position < shot.start:
                    _next(frames, position, reel)
                    position += 1
                with VideoWriter(tmp, like, codec="h264", crf=crf, preset=preset,
                                 timecode=shot.record_tc_in) as writer:
                    for _ in range(shot.frames):
                        writer.write(_next(frames, position, reel).rgb)
                        position += 1
                got = probe(tmp).require_video().frame_count
                if got != shot.frames:
                    raise ReelInputError(f"{reel.name}: shot {index} cut to {got} frames, "
                                         f"not {shot.frames}")
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)


def _next(frames: Iterator[Frame], position: int, reel: Path) -> Frame:
    item = next(frames, None)
    if item is None:
        raise ReelInputError(f"{reel.name}: the reel ends at frame {position}, before its "
                             "shot list does")
    return item


def shot_audio(audio: Audio, start: int, end: int, rate: Fraction) -> Audio:
    """Samples of ``audio`` (which starts at the reel's first frame) displayed with reel
    frames ``start .. end``, padded with silence where the stem is shorter."""
    first = round(Fraction(start) / rate * audio.rate)
    count = round(Fraction(end - start) / rate * audio.rate)
    out = np.zeros((audio.samples.shape[0], count), dtype=np.float32)
    piece = audio.samples[:, first:first + count]
    out[:, :piece.shape[1]] = piece
    return Audio(out, audio.rate)


def write_wav(audio: Audio, path: Path) -> Path:
    """16-bit PCM WAV (what every reader takes), written beside and renamed into place."""
    return _write_pcm(audio.samples, audio.rate, path)


def write_channels(channels: Sequence[Audio], path: Path) -> Path:
    """Mono signals of one rate as the channels of one WAV, in order (a dub with a speaker
    per channel: discrete channels, read back with ``load_channels``)."""
    rates = {c.rate for c in channels}
    if len(rates) != 1 or any(c.channels != 1 for c in channels):
        raise ValueError("write_channels takes mono signals of one rate")
    length = max(c.frames for c in channels)
    samples = np.zeros((len(channels), length), np.float32)
    for i, c in enumerate(channels):
        samples[i, :c.frames] = c.samples[0]
    return _write_pcm(samples, rates.pop(), path)


def _write_pcm(samples: NDArray[np.float32], rate: int, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part{os.getpid()}")
    pcm = np.clip(np.round(samples.T * 32767.0), -32768, 32767).astype("<i2")
    try:
        with wave.open(str(tmp), "wb") as fh:
            fh.setnchannels(samples.shape[0])
            fh.setsampwidth(2)
            fh.setframerate(rate)
            fh.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
