"""One frame range of a shot edited apart, from the state a whole render reaches there.

Render workers take frame ranges of a long shot (``studio.render.chunks``); the head encodes
their frames once, so a range must edit its frames exactly as a render of the whole shot
does. Two things make that more than "decode, skip to the range, edit":

* **Frame numbering.** Frames are numbered by the reader (a conformed constant-rate
  timeline), as in a whole render, so a range's frame ``i`` is the whole render's frame ``i``.
* **State carried across frames.** Some backends keep what they saw on earlier frames: the
  embedded lip-sync its neutral lip reference and synthetic mouth (taken on the first frames
  it renders), the embedded reenactment the same mouth and the last frame whose eyes were
  open (pasted over a blink). A range rendered from its first frame alone would take other
  ones. So the frames before the range that leave such state are edited too, onto a
  throwaway copy (never written), in order: the :data:`WarmUp` plan says which.

Everything else (the guard, the hook, the writer) is :func:`pipelines.edits.stream.edit_stream`,
the loop a whole render runs.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterator

from pipelines.edits.guard import EditGuard, GuardReport, TrackChange
from pipelines.edits.stream import FrameWriter, StreamControls, edit_stream
from pipelines.media import Frame, VideoReader

WarmUp = Callable[[int], int | None]
"""``warm(index)``, asked at each frame ``index`` before the range: the next frame (``index``
or later) that must be edited onto a throwaway copy, or None when no frame before the range
is needed any more."""


def edit_range(reader: VideoReader, guard: EditGuard, frames: tuple[int, int],
               writer: FrameWriter, *, controls: StreamControls, what: str,
               warm: WarmUp | None = None) -> int:
    """Frames ``first..last`` of ``reader`` edited through ``guard`` into ``writer`` (module
    docstring); returns how many were written. The guard's changes and report cover the range
    only."""
    first, last = frames

    def ranged() -> Iterator[Frame]:
        for frame in reader:
            if frame.index > last:
                return
            if frame.index < first:
                if warm is not None and warm(frame.index) == frame.index:
                    guard.apply(frame.index, frame.rgb.copy())
                continue
            if frame.index == first:
                start_at(guard, first)
            yield frame

    return edit_stream(ranged(), guard, writer, total=last - first + 1, controls=controls,
                       what=what)


def start_at(guard: EditGuard, first: int) -> None:
    """The guard as it starts frame ``first`` of a range: edits of earlier frames (another
    range writes them) passed over, and nothing recorded of the warm-up frames."""
    for tid, edit in guard.pending.items():
        while edit is not None and edit.frame_index < first:
            edit = next(guard.iterators[tid], None)
        guard.pending[tid] = edit
    guard.changes = {tid: TrackChange(tid) for tid in guard.changes}
    guard.report = GuardReport()


def until_settled(guard: EditGuard, settled: Callable[[object], bool] | None) -> WarmUp | None:
    """The warm-up of a backend whose carried state is all taken on the first frames it
    renders (``settled(edit)``: that track's state is taken): every frame from the shot's
    start until each pending edit is settled, then none. None: the backend keeps no state."""
    if settled is None:
        return None
    done = False

    def warm(index: int) -> int | None:
        nonlocal done
        done = done or all(settled(e) for e in guard.pending.values() if e is not None)
        return None if done else index

    return warm


def at_frames(wanted: set[int]) -> WarmUp:
    """The warm-up of a backend that named the frames whose state the range needs."""
    ordered = sorted(wanted)

    def warm(index: int) -> int | None:
        at = bisect.bisect_left(ordered, index)
        return ordered[at] if at < len(ordered) else None

    return warm
