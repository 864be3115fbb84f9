"""The one streaming loop every face edit runs: frames in → guard → hook → encoder.

Lip-sync and reenactment differ in what drives a face, not in how a shot is walked: both take
the next source frame, let :class:`~pipelines.edits.guard.EditGuard` copy the permitted edited
pixels into it, hand it to the studio's frame hook (the watermark), encode it, and report
progress; both stop at once when cancelled. That loop lives here once, so a change to it (a
cancellation check, progress cadence) reaches both pipelines.

Two stages overlap: the calling thread edits frame *i* while one writer thread runs the hook
and the encoder on frame *i − 1* (``_WriteBehind``). Measured on a 720p lip-sync render the
one-thread loop kept 1.1 of 2 cores busy: the watermark's key-frame model, the RGB → YUV
conversion and the encoder's own thread release the GIL, so the edit of the next frame can
run beside them. Order is kept (one writer thread, a FIFO); the hook still sees every frame
once, in order, after its edit and before its encode.

Memory stays flat: at most ``WRITE_BEHIND`` edited frames wait for the writer, whatever the
clip's length.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pipelines.edits.guard import EditGuard
from pipelines.media import Frame, VideoWriter

FrameHook = Callable[[int, NDArray[np.uint8]], None]
"""``hook(frame_index, rgb)`` after the faces are edited, before encoding (e.g. a watermark)."""
Progress = Callable[[int, int], None]
"""``progress(frames_done, total)`` after each frame is edited and handed to the writer."""
WRITE_BEHIND = 8
"""Edited frames that may wait for the writer thread (RGB: 2.8 MB each at 720p, 25 MB at
4K). Deep enough to hide part of a watermark key frame (the embedder's model, ~0.2-0.35 s
every 25 frames, while an edit takes ~20 ms): 300 frames of 720p, run stage 13.6-14.3 s with
2, 13.0-13.7 s with 8 (interleaved, QC off)."""
READ_AHEAD = 2
"""Decoded frames the pipelines' readers keep ready (``VideoReader(read_ahead=...)``): the
decode of the next frames runs beside the edit of this one, as the encode of the last does."""


class FrameWriter(Protocol):
    """Where the loop's frames go: a :class:`VideoWriter`, or a chunk's lossless store."""

    def write(self, frame: Frame | NDArray[np.uint8]) -> None: ...


@dataclass(frozen=True)
class StreamControls:
    """What the caller watches or adds while the loop runs (all optional)."""

    progress: Progress | None = None
    cancelled: Callable[[], bool] | None = None
    frame_hook: FrameHook | None = None


def edit_stream(frames: Iterable[Frame | tuple[int, NDArray[np.uint8]]], guard: EditGuard,
                writer: VideoWriter | FrameWriter, *, total: int, controls: StreamControls,
                what: str) -> int:
    """Edit and encode ``frames`` in order; returns how many were written.

    ``frames`` yields decoded :class:`Frame` objects (a video source) or ``(index, rgb)`` pairs
    (frames the caller synthesises, e.g. copies of a still); the rgb is edited in place.
    Raises :class:`InterruptedError` ("``what`` cancelled") as soon as ``controls.cancelled``
    says so; the caller deletes its partial output.
    """
    written = 0
    with _WriteBehind(writer, controls.frame_hook) as behind:
        for item in frames:
            if controls.cancelled is not None and controls.cancelled():
                raise InterruptedError(f"{what} cancelled")
            index, rgb = (item.index, item.rgb) if isinstance(item, Frame) else item
            guard.apply(index, rgb)
            behind.put(index, rgb, item if isinstance(item, Frame) else rgb)
            written += 1
            if controls.progress is not None:
                controls.progress(written, total)
    return written


_DONE = object()


@dataclass(frozen=True)
class _Handed:
    """A frame handed to the writer thread: its index, its edited pixels, what is written."""

    index: int
    rgb: NDArray[np.uint8]
    item: Frame | NDArray[np.uint8]


class _WriteBehind:
    """The hook and the writer on one thread of their own, fed through a bounded queue.

    ``put`` hands a frame over (blocking while ``WRITE_BEHIND`` frames wait) and raises the
    writer thread's error, if it had one, as soon as it is known; leaving the block waits for
    every frame handed over to be written, or, when the block is left by an exception,
    stops the writer after the frame in hand and discards the rest (the caller deletes its
    partial output)."""

    def __init__(self, writer: VideoWriter | FrameWriter, hook: FrameHook | None) -> None:
        self._writer = writer
        self._hook = hook
        self._queue: queue.Queue[object] = queue.Queue(maxsize=WRITE_BEHIND)
        self._error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="edit-stream-writer",
                                        daemon=True)

    def __enter__(self) -> _WriteBehind:
        self._thread.start()
        return self

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job is _DONE or self._stop.is_set():
                return
            assert isinstance(job, _Handed)
            index, rgb, item = job.index, job.rgb, job.item
            try:
                if self._hook is not None:
                    self._hook(index, rgb)
                self._writer.write(item)
            except BaseException as exc:  # handed to the editing thread, raised there
                self._error = exc
                self._stop.set()
                return

    def put(self, index: int, rgb: NDArray[np.uint8],
            item: Frame | NDArray[np.uint8]) -> None:
        while True:
            self._raise_if_failed()
            try:
                self._queue.put(_Handed(index, rgb, item), timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is not None:
            self._stop.set()
        try:
            while self._thread.is_alive():
                try:
                    self._queue.put(_DONE, timeout=0.1)
                    break
                except queue.Full:  # the writer is busy, or stopped with frames left queued
                    if self._stop.is_set():
                        _drain(self._queue)
            self._thread.join()
        except BaseException:
            # Interrupted while waiting (Ctrl-C at the end of a render): the writer stops
            # after the frame in hand and is joined before the caller closes or deletes
            # the file it writes into; further interrupts meanwhile are held back.
            self._stop.set()
            self._join_stopped()
            raise
        if kind is None or (exc is not self._error
                            and not isinstance(exc, (KeyboardInterrupt, SystemExit))):
            # The writer's error came from an earlier frame than the editing thread's own
            # (a truncated source, a cancel): the one-thread loop raised it first.
            self._raise_if_failed()

    def _join_stopped(self) -> None:
        while self._thread.is_alive():
            with contextlib.suppress(BaseException):  # a second interrupt: still join first
                _drain(self._queue)
                self._queue.put_nowait(_DONE)  # wakes a writer waiting for work
                self._thread.join(0.1)


def _drain(q: queue.Queue[object]) -> None:
    try:
        while True:
            q.get_nowait()
    except queue.Empty:
        pass
