"""Shared media for the face tests: GRID clips and the astronaut, decoded once per worker.

Only ``assets/media`` is used (redistributable, attributed there). Frames are decoded with PyAV
directly, as ``pipelines.media`` is not a dependency of these tests.
"""

from __future__ import annotations

import functools
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from numpy.typing import NDArray

from pipelines.faces import DlibEmbedder, FaceObservation, ScanResult, scan_video

MEDIA = Path(__file__).resolve().parents[2] / "assets" / "media"
GRID_NAMES = sorted(p.stem for p in (MEDIA / "grid").glob("*.mpg"))
assert len(GRID_NAMES) == 6, GRID_NAMES

Frame = NDArray[np.uint8]


@functools.cache
def grid_frames(name: str) -> tuple[Frame, ...]:
    """All 75 frames of one GRID clip (360×288 RGB), read-only."""
    with av.open(str(MEDIA / "grid" / f"{name}.mpg")) as container:
        frames = tuple(
            np.asarray(f.to_ndarray(format="rgb24"), dtype=np.uint8)
            for f in container.decode(video=0)
        )
    for f in frames:
        f.flags.writeable = False
    return frames


@functools.cache
def astronaut() -> Frame:
    bgr = cv2.imread(str(MEDIA / "astronaut.png"), cv2.IMREAD_COLOR)
    assert bgr is not None
    rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    rgb.flags.writeable = False
    return rgb


@pytest.fixture(scope="session")
def dlib_embedder() -> DlibEmbedder:
    return DlibEmbedder()


class Recorder:
    """``on_frame`` callback that keeps each frame's (track_id, observation) pairs."""

    def __init__(self) -> None:
        self.frames: list[list[tuple[int, FaceObservation]]] = []

    def __call__(self, index: int, rgb: Frame, faces: list[tuple[int, FaceObservation]]) -> None:
        assert index == len(self.frames)
        self.frames.append(faces)

    def ids(self) -> list[list[int]]:
        return [[tid for tid, _ in faces] for faces in self.frames]


@pytest.fixture(scope="session")
def grid_scans() -> dict[str, tuple[ScanResult, Recorder]]:
    """Every GRID clip scanned once without an embedder (mesh + tracking only)."""
    out: dict[str, tuple[ScanResult, Recorder]] = {}
    for name in GRID_NAMES:
        rec = Recorder()
        out[name] = (scan_video(grid_frames(name), None, keep_landmarks=True, on_frame=rec), rec)
    return out
