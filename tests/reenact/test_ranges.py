"""A reenactment rendered in frame ranges (``run_reenact_range``, for the chunks of a long shot
on render workers) gives the frames a whole render gives, state carried across frames included.

The source is brbk7n, who blinks at frames 21-22, driven by bbaf2n (eyes open there): the
embedded backend pastes the last open-eyed frame over the blink (state from earlier frames).
Without its mouth exemplar the face also takes a synthetic mouth from the first frame it
paints an open mouth on. A range starting on the blink must reach both as a whole render does.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray

from pipelines.edits import EditPermits
from pipelines.edits.stream import StreamControls
from pipelines.faces.analysis import ShotAnalysis
from pipelines.media import Frame
from pipelines.reenact import EmbeddedReenact, ReenactJob, extract_motion, run_reenact
from pipelines.reenact.pipeline import run_reenact_range

RANGES = [(0, 20), (21, 40), (41, 74)]


class _Frames:
    """A range's writer (and a whole render's frame hook): keeps each frame's pixels."""

    def __init__(self) -> None:
        self.rgb: list[NDArray[np.uint8]] = []

    def write(self, frame: Frame | NDArray[np.uint8]) -> None:
        self.rgb.append((frame.rgb if isinstance(frame, Frame) else frame).copy())

    def __call__(self, index: int, rgb: NDArray[np.uint8]) -> None:
        self.write(rgb)


@pytest.fixture(scope="module")
def job(driver: ShotAnalysis, source: ShotAnalysis, tmp_path_factory: pytest.TempPathFactory
        ) -> ReenactJob:
    shot = replace(driver, exemplars={})  # no exemplar: the synthetic mouth is carried state
    tid = shot.tracks[0].track_id
    motion = extract_motion(source, neutral_frame="rest", embedder="none")
    return ReenactJob(shot, {tid: motion}, tmp_path_factory.mktemp("whole") / "whole.mp4",
                      permits=EditPermits.all_frames([tid]))


@pytest.fixture(scope="module")
def whole(job: ReenactJob) -> list[NDArray[np.uint8]]:
    frames = _Frames()
    run_reenact(job, EmbeddedReenact(), frame_hook=frames)
    return frames.rgb


def _range(job: ReenactJob, frames: tuple[int, int]) -> list[NDArray[np.uint8]]:
    out = _Frames()
    run_reenact_range(job, EmbeddedReenact(), frames, out, controls=StreamControls())
    return out.rgb


def test_ranges_give_the_whole_renders_frames(job: ReenactJob,
                                              whole: list[NDArray[np.uint8]]) -> None:
    parts = [f for r in RANGES for f in _range(job, r)]
    assert len(parts) == len(whole) == 75
    assert [i for i, (a, b) in enumerate(zip(whole, parts, strict=True))
            if not np.array_equal(a, b)] == []


def test_the_frames_before_a_range_that_leave_state_are_rendered_first(
        job: ReenactJob, whole: list[NDArray[np.uint8]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Without the warm-up, the range on the blink has no open-eyed frame to paste and takes
    # its synthetic mouth from a later frame: its faces differ from the whole render's.
    import pipelines.reenact.pipeline as pipeline

    monkeypatch.setattr(pipeline, "at_frames", lambda wanted: (lambda index: None))
    cold = _range(job, RANGES[1])
    differs = [i for i, f in enumerate(cold, RANGES[1][0]) if not np.array_equal(f, whole[i])]
    assert differs, "the range did not depend on earlier frames: the test shows nothing"


def test_a_range_of_a_still_is_refused(job: ReenactJob, tmp_path: Path) -> None:
    from pipelines.reenact import ReenactError, StillSource

    still = replace(job, source=StillSource(tmp_path / "x.png"))
    with pytest.raises(ReenactError, match="video source"):
        run_reenact_range(still, EmbeddedReenact(), (0, 1), _Frames(),
                          controls=StreamControls())
