"""The reenactment pipeline end to end on real GRID footage and a still."""

from __future__ import annotations

import json
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.edits import EditPermits
from pipelines.faces import FaceMeshDetector, eye_opening, mouth_opening
from pipelines.faces.analysis import ShotAnalysis
from pipelines.media import VideoReader, probe
from pipelines.reenact import (
    EmbeddedReenact,
    Motion,
    ReenactError,
    ReenactJob,
    ReenactOptions,
    ReenactResult,
    StillSource,
    run_reenact,
)
from pipelines.reenact.pipeline import load_still

from .conftest import ASTRONAUT, TIMECODE


def _frames(path: Path) -> Iterator[np.ndarray]:
    with VideoReader(path) as reader:
        for frame in reader:
            yield frame.rgb


def _r(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


class Capture:
    """Frame hook: mouth and eye openings of the rendered frames, and what changed."""

    def __init__(self, original: Iterator[np.ndarray]) -> None:
        self.original = original
        self.detector = FaceMeshDetector(static=False)
        self.mouth: list[float] = []
        self.eyes: list[float] = []
        self.changed: list[np.ndarray] = []

    def __call__(self, index: int, rgb: np.ndarray) -> None:
        self.changed.append(np.argwhere(np.any(rgb != next(self.original), axis=2)))
        faces = self.detector.detect(rgb)
        self.mouth.append(mouth_opening(faces[0].landmarks) if faces else np.nan)
        self.eyes.append(eye_opening(faces[0].landmarks).mean if faces else np.nan)


def driver_curves(driver: ShotAnalysis) -> tuple[np.ndarray, np.ndarray]:
    lm = driver.landmarks(driver.tracks[0].track_id)
    return (np.array([mouth_opening(m) for m in lm.meshes]),
            np.array([eye_opening(m).mean for m in lm.meshes]))


@pytest.fixture(scope="module")
def rendered(source: ShotAnalysis, motion: Motion, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[ReenactResult, Capture]:
    capture = Capture(_frames(source.source))
    out = tmp_path_factory.mktemp("render") / "reenacted.mov"
    job = ReenactJob(source, {source.tracks[0].track_id: motion}, out,
                     permits=EditPermits.all_frames([source.tracks[0].track_id]))
    return run_reenact(job, EmbeddedReenact(), frame_hook=capture), capture


def test_the_performer_follows_the_drivers_mouth_and_eyes(
        rendered: tuple[ReenactResult, Capture], driver: ShotAnalysis) -> None:
    _, capture = rendered
    mouth, eyes = driver_curves(driver)
    assert not np.isnan(capture.mouth).any()
    assert _r(np.array(capture.mouth), mouth) > 0.8
    # The driver's one blink (frames 21-22) reaches the performer's lids.
    out_eyes = np.array(capture.eyes)
    assert out_eyes[20:24].min() < np.median(out_eyes) - 0.03
    assert _r(out_eyes, eyes) > 0.25


def test_video_source_keeps_frames_rate_size_and_timecode(
        rendered: tuple[ReenactResult, Capture], source: ShotAnalysis) -> None:
    result, _ = rendered
    info = probe(result.output).require_video()
    assert info.frame_count == result.frame_count == 75
    assert info.frame_rate == 25 and (info.width, info.height) == (360, 288)
    assert info.timecode == TIMECODE


def test_pixels_outside_the_face_are_untouched(rendered: tuple[ReenactResult, Capture]) -> None:
    result, capture = rendered
    (change,) = result.changes
    x0, y0, x1, y1 = change.box
    assert change.frames == 75
    assert (x1 - x0) * (y1 - y0) < 0.4 * 360 * 288
    for where in capture.changed:
        if len(where):
            assert where[:, 1].min() >= x0 and where[:, 1].max() < x1
            assert where[:, 0].min() >= y0 and where[:, 0].max() < y1
    assert sum(len(w) > 0 for w in capture.changed) >= 70


def test_sidecar_records_the_driver_and_the_report(rendered: tuple[ReenactResult, Capture],
                                                   motion: Motion) -> None:
    result, _ = rendered
    doc = json.loads(result.sidecar.read_text())
    assert doc["backend"] == "embedded-mesh-reenact" and doc["frame_count"] == 75
    (face,) = doc["faces"]
    assert face["driver"]["video_sha256"] == motion.identity.video_sha256
    assert face["report"]["faceless_frames"] == 0
    assert doc["options"]["head_pose"] is False


def test_still_source_becomes_a_driver_length_video(tmp_path: Path, motion: Motion,
                                                    driver: ShotAnalysis) -> None:
    still = load_still(ASTRONAUT)
    capture = Capture(iter([still] * 1000))
    out = tmp_path / "astronaut.mp4"
    turned = Motion(motion.frame_rate, motion.deltas,
                    np.concatenate([np.full((75, 1), 30.0, np.float32), motion.pose[:, 1:]],
                                   axis=1),
                    motion.present, motion.neutral_frame, motion.features, motion.identity)
    job = ReenactJob(StillSource(ASTRONAUT, Fraction(30)), {0: turned}, out,
                     ReenactOptions(head_pose=True), permits=EditPermits.all_frames([0]))
    result = run_reenact(job, EmbeddedReenact(), frame_hook=capture)
    info = probe(out).require_video()
    assert info.frame_count == result.frame_count == 90  # 3 s of driver at 30 fps
    assert info.frame_rate == 30 and (info.width, info.height) == (512, 512)
    assert result.reports[0].pose_clamped_frames == 90  # yaw 30° asked, 20° given
    mouth, _ = driver_curves(driver)
    at30 = np.interp(np.arange(90) / 30 * 25, np.arange(75), mouth)
    assert _r(np.array(capture.mouth), at30) > 0.6
    doc = json.loads(result.sidecar.read_text())
    assert doc["still"] is True and doc["faces"][0]["report"]["pose_clamped_frames"] == 90


def test_errors_leave_nothing(tmp_path: Path, source: ShotAnalysis, motion: Motion) -> None:
    out = tmp_path / "cancelled.mp4"
    calls = iter(range(1000))
    with pytest.raises(InterruptedError):
        run_reenact(ReenactJob(source, {source.tracks[0].track_id: motion}, out,
                               permits=EditPermits.all_frames([source.tracks[0].track_id])),
                    EmbeddedReenact(), cancelled=lambda: next(calls) > 20)
    with pytest.raises(KeyError, match="no face track 99"):
        run_reenact(ReenactJob(source, {99: motion}, tmp_path / "x.mp4",
                               permits=EditPermits.all_frames([99])), EmbeddedReenact())
    with pytest.raises(ReenactError, match="no face 3"):
        run_reenact(ReenactJob(StillSource(ASTRONAUT), {3: motion}, tmp_path / "y.mp4",
                               permits=EditPermits.all_frames([3])),
                    EmbeddedReenact())
    assert not list(tmp_path.iterdir())
