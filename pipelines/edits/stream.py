"""The one streaming loop every face edit runs: frames in → guard → hook → encoder.

Lip-sync and reenactment differ in what drives a face, not in how a shot is walked: both take
the next source frame, let :class:`~pipelines.edits.guard.EditGuard` copy the permitted edited
pixels into it, hand it to the studio's frame hook (the watermark), encode it, and report
progress; both stop at once when cancelled. That loop lives here once, so a change to it (a
cancellation check, progress cadence) reaches both pipelines.

Memory stays flat: one frame is in hand at a time, whatever the clip's length.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from pipelines.edits.guard import EditGuard
from pipelines.media import Frame, VideoWriter

FrameHook = Callable[[int, NDArray[np.uint8]], None]
"""``hook(frame_index, rgb)`` after the faces are edited, before encoding (e.g. a watermark)."""
Progress = Callable[[int, int], None]
"""``progress(frames_written, total)`` after each frame."""


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
    for item in frames:
        if controls.cancelled is not None and controls.cancelled():
            raise InterruptedError(f"{what} cancelled")
        index, rgb = (item.index, item.rgb) if isinstance(item, Frame) else item
        guard.apply(index, rgb)
        if controls.frame_hook is not None:
            controls.frame_hook(index, rgb)
        writer.write(item if isinstance(item, Frame) else rgb)
        written += 1
        if controls.progress is not None:
            controls.progress(written, total)
    return written
