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
