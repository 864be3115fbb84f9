"""Closing eyes are painted with lid skin, not left as a squashed eye."""

from __future__ import annotations

import numpy as np

from pipelines.faces import FaceMeshDetector, eye_opening
from pipelines.faces.analysis import ShotAnalysis
from pipelines.media import VideoReader
from pipelines.reenact.embedded import (
    LEFT_EYE_RING,
    RIGHT_EYE_RING,
    _paint_closed_lids,
    lid_gap,
)
from pipelines.reenact.model import LID_PAIRS


def test_painted_lids_close_the_eye_and_touch_nothing_else(source: ShotAnalysis) -> None:
    tid = source.tracks[0].track_id
    with VideoReader(source.source) as reader:
        frame = next(iter(reader))
    mesh = source.landmarks(tid).mesh(frame.index)
    assert mesh is not None
    # In a render the warp has already brought the lids together; here the eye is painted
    # where it is, open, to see that the paint alone reads as a closed eye.
    target = np.asarray(mesh[:, :2], dtype=np.float64).copy()
    closed = target.copy()
    for upper, lower in LID_PAIRS:
        closed[upper] = closed[lower]
    assert lid_gap(closed) < 0.05 * lid_gap(target)
    rgb = frame.rgb.copy()
    _paint_closed_lids(rgb, target, 1.0)
    changed = np.argwhere(np.any(rgb != frame.rgb, axis=2))
    assert len(changed) > 20
    eyes = target[list(RIGHT_EYE_RING) + list(LEFT_EYE_RING)]
    lo, hi = eyes.min(axis=0) - 4, eyes.max(axis=0) + 4
    assert (changed[:, 1] >= lo[0]).all() and (changed[:, 1] <= hi[0]).all()
    assert (changed[:, 0] >= lo[1]).all() and (changed[:, 0] <= hi[1]).all()
    # A face mesh reads the painted eyes as (much more) closed than the original.
    with FaceMeshDetector(static=True) as det:
        before = eye_opening(det.detect(frame.rgb)[0].landmarks).mean
        after = eye_opening(det.detect(rgb)[0].landmarks).mean
    assert after < 0.7 * before, (before, after)
    untouched = frame.rgb.copy()
    _paint_closed_lids(untouched, target, 0.0)
    assert np.array_equal(untouched, frame.rgb)
