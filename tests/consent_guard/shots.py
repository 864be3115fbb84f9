"""Hostile shots built from the GRID clips: the consenting performer (bbaf2n, enrolled by the
demo seed) turns into, meets or crosses a stranger who never consented.

Each builder decodes the clips with PyAV, composes the frames (the same arithmetic as
ffmpeg's ``xfade=fade``/``xfade=wipeleft``, ``hstack`` and ``overlay``) and encodes the shot
losslessly enough for the tests' purpose: the render decodes the very file the tests decode,
so "bit-identical to the source" compares decoded frames of one file. Each shot also says
where the stranger is, frame by frame (a rectangle, or None where absent).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from numpy.typing import NDArray

from tests.media.mediagen import write_video

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"
PERFORMER = GRID / "bbaf2n.mpg"
STRANGER = GRID / "lbax4n.mpg"
"""A stranger: another GRID speaker, never enrolled."""

RGB = NDArray[np.uint8]
Box = tuple[int, int, int, int]  # x0, y0, x1, y1


def frames_of(path: Path) -> list[RGB]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@dataclass(frozen=True)
class Shot:
    path: Path
    frames: int
    stranger: Callable[[int], Box | None]
    """Where the stranger's pixels are on a frame (None: nowhere)."""


def _encode(path: Path, frames: list[RGB]) -> Path:
    # Near-lossless x264 so the composed pixels survive; the tests compare decoded frames of
    # this file, never the arrays above.
    return write_video(path, frames, rate=25, options={"crf": "4"})


def dissolve(folder: Path, start: int = 15, length: int = 30, total: int = 60) -> Shot:
    """xfade=fade: the performer dissolves into the stranger over ``length`` frames."""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    out = []
    for i in range(total):
        t = min(max((i - start + 1) / (length + 1), 0.0), 1.0)
        out.append(np.round(a[i] * (1 - t) + b[i] * t).astype(np.uint8))
    h, w = out[0].shape[:2]
    return Shot(_encode(folder / "dissolve.mp4", out), total,
                lambda i: (0, 0, w, h) if i >= start else None)


def wipe(folder: Path, start: int = 15, length: int = 30, total: int = 60) -> Shot:
    """xfade=wipeleft: the stranger's picture wipes the performer's from right to left."""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    h, w = a[0].shape[:2]
    edges = []
    out = []
    for i in range(total):
        t = min(max((i - start + 1) / (length + 1), 0.0), 1.0)
        edge = round(w * (1 - t))
        frame = a[i].copy()
        frame[:, edge:] = b[i][:, edge:]
        out.append(frame)
        edges.append(edge)
    return Shot(_encode(folder / "wipe.mp4", out), total,
                lambda i: (edges[i], 0, w, h) if edges[i] < w else None)


def hard_cut(folder: Path, at: int = 30, total: int = 60,
             stranger: Path = STRANGER) -> Shot:
    """A hard cut from the performer to another speaker at frame ``at``."""
    a, b = frames_of(PERFORMER), frames_of(stranger)
    out = [a[i] if i < at else b[i] for i in range(total)]
    h, w = out[0].shape[:2]
    return Shot(_encode(folder / "cut.mp4", out), total,
                lambda i: (0, 0, w, h) if i >= at else None)


def side_by_side(folder: Path, enters: int = 20, total: int = 60) -> Shot:
    """hstack: the performer on the left; the stranger enters on the right at ``enters``."""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    half = 180
    out = []
    for i in range(total):
        right = b[i][:, 90:90 + half] if i >= enters else np.full_like(b[i][:, :half], 40)
        out.append(np.ascontiguousarray(np.hstack([a[i][:, 90:90 + half], right])))
    h = out[0].shape[0]
    return Shot(_encode(folder / "side.mp4", out), total,
                lambda i: (half, 0, 2 * half, h) if i >= enters else None)


def crossing(folder: Path, total: int = 60, width: int = 480) -> Shot:
    """overlay: the performer walks left to right, the stranger right to left, in front."""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    crop = 160
    span = width - crop
    h = a[0].shape[0]
    xs_a = [round(span * i / (total - 1)) for i in range(total)]
    xs_b = [span - x for x in xs_a]
    out = []
    for i in range(total):
        canvas = np.full((h, width, 3), 40, np.uint8)
        canvas[:, xs_a[i]:xs_a[i] + crop] = a[i][:, 100:100 + crop]
        canvas[:, xs_b[i]:xs_b[i] + crop] = b[i][:, 100:100 + crop]
        out.append(canvas)
    # The stranger's face (lbax4n's face spans x 125-249, y 91-249 of its clip, i.e. 25-149
    # of the crop): their picture's backdrop may sit inside the performer's face region, which
    # the performer's grant covers, but their face never does.
    return Shot(_encode(folder / "crossing.mp4", out), total,
                lambda i: (xs_b[i] + 25, 90, min(width, xs_b[i] + 150), 250))


def walk_in(folder: Path, total: int = 75, leave: tuple[int, int] = (20, 32),
            enter: tuple[int, int] = (34, 46)) -> Shot:
    """The performer walks out to the left; the stranger walks in from the left into the same
    place a few frames later (within the tracker's patience; on GRID the cut detector also
    fires as they move, so the stranger's face gets a track of its own)."""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    h, w = a[0].shape[:2]
    crop = 200

    def offset(i: int, span: tuple[int, int], out: bool) -> int:
        t = min(max((i - span[0]) / (span[1] - span[0]), 0.0), 1.0)
        home = 80
        return round(home - (home + crop) * (t if out else 1 - t))

    out_frames, boxes = [], []
    for i in range(total):
        canvas = np.full((h, w, 3), 40, np.uint8)
        box = None
        for src, x in ((a[i], offset(i, leave, True)) if i < leave[1] else (None, 0),
                       (b[i], offset(i, enter, False)) if i >= enter[0] else (None, 0)):
            if src is None:
                continue
            x0, x1 = max(x, 0), min(x + crop, w)
            if x1 > x0:
                canvas[:, x0:x1] = src[:, 80 + (x0 - x):80 + (x1 - x)]
                if src is b[i]:
                    # lbax4n's face: x 125-249 of its clip, 45-169 of the crop
                    fx0, fx1 = max(x + 45, 0), min(x + 170, w)
                    box = (fx0, 90, fx1, 250) if fx1 > fx0 else None
        out_frames.append(canvas)
        boxes.append(box)
    return Shot(_encode(folder / "walk_in.mp4", out_frames), total, lambda i: boxes[i])


def swap_behind(folder: Path, total: int = 75, covered: tuple[int, int] = (33, 37),
                slide: int = 8) -> Shot:
    """Someone passes in front of the performer (a bar slides across the face); behind it the
    performer is replaced by the stranger in the very same place, over the same backdrop. (The
    histogram cut detector still reads the bar as cuts on GRID, so the stranger gets a track of
    their own; the wipe is the shot where one track carries on into the stranger.)"""
    a, b = frames_of(PERFORMER), frames_of(STRANGER)
    w = a[0].shape[1]
    fx0, fy0, fx1, fy1 = 95, 70, 265, 270  # the face and hair of either clip, pasted whole
    bar = 190
    start, end = covered[0] - slide, covered[1] + slide
    out = []
    for i in range(total):
        frame = a[i].copy()
        if i >= covered[0]:
            frame[fy0:fy1, fx0:fx1] = b[i][fy0:fy1, fx0:fx1]
        if start <= i <= end:
            if i < covered[0]:
                x1 = round(85 + bar * (i - start + 1) / slide)
                x0 = x1 - bar
            elif i <= covered[1]:
                x0 = 85
            else:
                x0 = round(85 + bar * (i - covered[1]) / slide)
            x1 = x0 + bar
            frame[:, max(x0, 0):min(x1, w)] = 60
        out.append(frame)
    return Shot(_encode(folder / "swap.mp4", out), total,
                lambda i: (fx0, fy0, fx1, fy1) if i >= covered[0] else None)
