"""``VideoReader``: stream RGB frames from a file, one at a time, frame-accurately.

Every stage of a render consumes frames in order and never needs to seek, so the reader is a
plain iterator over ``Frame`` objects: the decoder's own small queue plus the frame in hand is
all it holds, whatever the clip's length. Frames are as stored (not rotated; see
``VideoStreamInfo.rotation`` and ``upright``) so that the writer can reproduce the source
pixel for pixel and re-apply the same display matrix.

Variable-frame-rate input cannot be written back with "one output frame per input frame at
pts = index" without changing its timing, so it is either refused (default) or conformed to a
constant rate, duplicating and dropping frames by timestamp, with a warning.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import threading
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from fractions import Fraction
from types import TracebackType
from typing import Literal

import av
import av.container
import numpy as np
from av.video.reformatter import VideoReformatter
from numpy.typing import NDArray

from . import colour
from ._container import open_input
from .errors import (
    CorruptMediaError,
    TruncatedMediaError,
    VariableFrameRateError,
    VariableFrameRateWarning,
)
from .probe import DEFAULT_MAX_PIXELS, MediaInfo, VideoStreamInfo, probe

VfrPolicy = Literal["refuse", "conform"]


@dataclass(frozen=True, eq=False)
class Frame:
    """One picture: its position in the output (``index``), its time, its pixels.

    ``pts`` is seconds (exact). ``rgb`` is ``height x width x 3`` uint8, C-contiguous and
    owned by this frame: a stage may modify it in place.
    """

    index: int
    pts: Fraction
    rgb: NDArray[np.uint8]


class VideoReader:
    """Sequential RGB frames of the first video stream of ``path``.

    Use as a context manager and iterate once::

        with VideoReader(path) as reader:
            for frame in reader:
                ...

    ``on_vfr="conform"`` accepts variable-frame-rate input and emits it at ``conform_rate``
    (default: ``info.video.frame_rate``, the snapped average rate): each output slot shows
    the latest source frame whose timestamp rounds to that slot or before; frames between
    slots are dropped, gaps are filled by repeating. ``frame_count`` is then the conformed
    count and ``output`` describes the conformed stream (pass it to ``VideoWriter``).
    The probe runs in the constructor, so a bad file fails there, before any work.
    """

    def __init__(self, path: str | os.PathLike[str], *, on_vfr: VfrPolicy = "refuse",
                 conform_rate: Fraction | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
                 threads: int = 0, read_ahead: int = 0) -> None:
        self.info: MediaInfo = probe(path, max_pixels=max_pixels, require_video=True)
        self.video: VideoStreamInfo = self.info.require_video()
        self.path = self.info.path
        self._threads = threads
        if read_ahead < 0:
            raise ValueError("read_ahead is a number of frames, >= 0")
        self._read_ahead = read_ahead
        self._ahead: _ReadAhead | None = None
        self._container: av.container.InputContainer | None = None
        self._started = False
        self._reformatter = VideoReformatter()
        self._matrix = colour.conversion_matrix(self.video.color_matrix, self.video.height)
        self._range = colour.conversion_range(self.video.color_range)
        self.conforming = False
        self.frame_rate: Fraction = self.video.frame_rate
        self.frame_count: int = self.video.frame_count
        self.output: VideoStreamInfo = self.video
        """The stream the frames form (the source's, or its conformed version): the writer's
        ``like``."""
        if self.video.variable_frame_rate:
            if on_vfr == "refuse":
                raise VariableFrameRateError(
                    self.path, f"variable frame rate (average {float(self.video.frame_rate):.3f}"
                               " fps): conform it to a constant rate first, or open it with "
                               "on_vfr='conform'")
            self.conforming = True
            self.frame_rate = Fraction(conform_rate or self.video.frame_rate)
            self.frame_count = max(1, round(self.video.duration * self.frame_rate))
            self.output = dataclasses.replace(
                self.video, frame_rate=self.frame_rate, time_base=1 / self.frame_rate,
                frame_count=self.frame_count, duration=self.frame_count / self.frame_rate,
                variable_frame_rate=False)
            warnings.warn(VariableFrameRateWarning(
                f"{self.path}: variable frame rate; conforming {self.video.frame_count} frames "
                f"to {self.frame_count} frames at {self.frame_rate} fps (frames are "
                "duplicated or dropped by timestamp)"), stacklevel=2)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Release the decoder and the file (also done at the end of iteration). A read-ahead
        thread is stopped and joined first: the file is never closed under its decode (a
        consumer that raised may leave the iteration unfinished until its traceback goes)."""
        if self._ahead is not None:
            self._ahead.stop()
        if self._container is not None:
            self._container.close()
            self._container = None

    def __iter__(self) -> Iterator[Frame]:
        if self._started:
            raise RuntimeError("a VideoReader iterates once; open a new one to read again")
        self._started = True
        frames = self._conformed() if self.conforming else self._constant()
        try:
            if self._read_ahead:
                self._ahead = _ReadAhead(frames, self._read_ahead)
                yield from self._ahead
            else:
                yield from frames
        finally:
            frames.close()
            self.close()

    def _constant(self) -> Generator[Frame]:
        count = 0
        for frame in self._decoded():
            yield Frame(count, self._seconds(frame, count), self._rgb(frame))
            count += 1
        if count != self.video.frame_count:
            raise TruncatedMediaError(
                self.path, f"decoded {count} frames but the stream holds "
                           f"{self.video.frame_count}: frames are missing or undecodable")

    def _conformed(self) -> Generator[Frame]:
        start = self.video.start_time
        rate = self.frame_rate
        pending: av.VideoFrame | None = None
        next_slot = 0
        for count, frame in enumerate(self._decoded()):
            slot = round((self._seconds(frame, count) - start) * rate)
            if pending is not None:
                yield from self._slots(pending, next_slot, min(slot, self.frame_count))
                next_slot = max(next_slot, min(slot, self.frame_count))
            pending = frame
        if pending is not None:
            yield from self._slots(pending, next_slot, self.frame_count)

    def _slots(self, frame: av.VideoFrame, first: int, end: int) -> Iterator[Frame]:
        """``frame`` at slots ``first..end - 1``: the decoded pixels, a fresh copy each time
        but the last. Copies are taken from the untouched decode, never from a frame already
        handed out (a consumer edits its frames in place, maybe while this runs ahead)."""
        if first >= end:
            return
        start, rate = self.video.start_time, self.frame_rate
        rgb = self._rgb(frame)
        for slot in range(first, end):
            yield Frame(slot, start + slot / rate, rgb if slot == end - 1 else rgb.copy())

    def _decoded(self) -> Iterator[av.VideoFrame]:
        container = self._container = open_input(self.path)
        stream = container.streams[self.video.index]
        if not isinstance(stream, av.video.stream.VideoStream):
            raise CorruptMediaError(self.path, "the video stream changed since it was probed")
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = self._threads
        decoded = 0
        try:
            for packet in container.demux(stream):
                try:
                    frames = packet.decode()
                except av.FFmpegError as exc:
                    raise CorruptMediaError(
                        self.path, f"frame {decoded} cannot be decoded: {exc}") from exc
                for frame in frames:
                    decoded += 1
                    yield frame
        except av.FFmpegError as exc:
            raise TruncatedMediaError(
                self.path, f"reading stopped after {decoded} frames: {exc}") from exc

    def _seconds(self, frame: av.VideoFrame, count: int) -> Fraction:
        if frame.pts is None:
            return self.video.start_time + count / self.video.frame_rate
        return Fraction(frame.pts) * self.video.time_base

    def _rgb(self, frame: av.VideoFrame) -> NDArray[np.uint8]:
        if (frame.width, frame.height) != (self.video.width, self.video.height):
            raise CorruptMediaError(
                self.path, f"frame size changed mid-stream to {frame.width}x{frame.height}")
        rgb = self._reformatter.reformat(
            frame, format="rgb24", src_colorspace=self._matrix, src_color_range=self._range
        ).to_ndarray()
        return np.ascontiguousarray(rgb, dtype=np.uint8)


_END = object()


@dataclass(frozen=True)
class _Failed:
    error: BaseException


class _ReadAhead:
    """``frames`` decoded on a thread of their own, at most ``depth`` ahead of the consumer.

    The decode and the YUV → RGB conversion release the GIL, so a render's edit of one frame
    runs beside the decode of the next. Errors are raised in the consumer, in order (after
    the frames decoded before them). ``stop`` (a consumer that stops early, or the reader's
    ``close``) lets the thread finish the frame in hand and joins it, so the file is never
    closed under a running decode.
    """

    def __init__(self, frames: Iterator[Frame], depth: int) -> None:
        self._frames = frames
        self._handed: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, name="video-reader",
                                        daemon=True)
        self._thread.start()

    def _produce(self) -> None:
        try:
            for frame in self._frames:
                if not self._hand(frame):
                    return
            self._hand(_END)
        except BaseException as exc:  # raised again in the consumer, after what came before
            self._hand(_Failed(exc))

    def _hand(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._handed.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[Frame]:
        try:
            while True:
                item = self._handed.get()
                if item is _END:
                    return
                if isinstance(item, _Failed):
                    raise item.error
                assert isinstance(item, Frame)
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def upright(rgb: NDArray[np.uint8], rotation: int) -> NDArray[np.uint8]:
    """The frame as a player shows it, given ``VideoStreamInfo.rotation`` (counter-clockwise).

    For analysis only (face detection wants upright faces); write frames back unrotated.
    """
    turns = (rotation // 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, k=turns)) if turns else rgb
