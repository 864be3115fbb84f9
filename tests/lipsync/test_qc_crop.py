"""The QC meter reads only the face between detections (issue 16: QC on every render): the
same figures as reading the whole frame, on the demo shot and on it at 720p."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.media import VideoReader
from pipelines.qc import dlib_mouth
from pipelines.qc.dlib_mouth import MouthMeter

from .conftest import GRID


def _series(frames: list[np.ndarray]) -> np.ndarray:
    meter = MouthMeter()
    return np.array([meter.measure(f) for f in frames])


@pytest.mark.parametrize("scale", [1.0, 2.5])
def test_the_crop_gives_the_whole_frames_figures(scale: float,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    with VideoReader(GRID / "bbaf2n.mpg") as reader:
        frames = [f.rgb for f in reader][:40]
    if scale != 1.0:  # 360×288 → 900×720: a face of a 720p shot
        frames = [np.asarray(cv2.resize(f, None, fx=scale, fy=scale,
                                        interpolation=cv2.INTER_CUBIC), dtype=np.uint8)
                  for f in frames]
    cropped = _series(frames)
    monkeypatch.setattr(dlib_mouth, "CROP_MARGIN", 1e6)  # a "crop" that is the whole frame
    whole = _series(frames)
    assert np.isfinite(cropped).all()
    np.testing.assert_array_equal(cropped, whole)
