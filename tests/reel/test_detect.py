"""Shot detection against the hand-labelled test reel (cuts, dissolves, fades, no-face shots)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.reel.detect import DetectorSettings, ShotDetector, detect_shots
from pipelines.reel.errors import ReelInputError, ReelNotFoundError
from pipelines.reel.evaluate import score
from pipelines.reel.shots import ShotList, TransitionKind
from tests.media import mediagen as gen


def test_test_reel_every_transition_found(test_reel: Path, test_reel_truth: ShotList) -> None:
    shots = detect_shots(test_reel)
    result = score(shots, test_reel_truth, tolerance=2)
    print(result.summary())
    assert result.overall.recall == 1.0, result.missed
    assert result.overall.precision == 1.0, result.spurious
    assert not result.kind_confusions
    assert result.max_boundary_error <= 1  # cuts exact; a dissolve's middle, a fade's end
    assert result.max_span_error <= 2
    assert all(e == 0 for t, e in zip(test_reel_truth.transitions, result.boundary_errors,
                                      strict=True) if t.kind is TransitionKind.CUT)
    assert shots.frame_count == test_reel_truth.frame_count == 386
    assert shots.start_timecode == "01:00:00:00"
    assert shots[1].record_tc_in == "01:00:01:05"  # shot 2 starts at frame 30 (25 fps)


def test_one_clip_is_one_shot(tmp_path: Path) -> None:
    """A talking head (mouth, blinks, head motion) over 150 frames: no cut, no dissolve."""
    clip = gen.write_video(tmp_path / "one.mp4", gen.grid_frames(75))
    shots = detect_shots(clip)
    assert len(shots) == 1
    assert shots[0].transition_in is None and shots.tail is None


def test_camera_motion_is_not_a_dissolve(tmp_path: Path) -> None:
    """A continuous zoom (mandelbrot), a moving test pattern and a fine texture that is
    flat at thumbnail size (cellauto: not black, no fade): one shot each."""
    for graph in ("mandelbrot", "testsrc2", "cellauto"):
        frames = gen.lavfi_frames(graph, (320, 240), 60)
        clip = gen.write_video(tmp_path / f"{graph}.mp4", frames)
        assert len(detect_shots(clip)) == 1, graph


def test_detector_memory_is_bounded() -> None:
    """1200 frames: the detector holds a fixed number of thumbnails and numbers."""
    settings = DetectorSettings()
    detector = ShotDetector(settings)
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 255, (52, 64, 3)).astype(np.float32)
    for i in range(1200):
        if i % 150 == 0:
            base = rng.uniform(0, 255, (52, 64, 3)).astype(np.float32)
        detector.push(base + rng.normal(0, 1, base.shape).astype(np.float32))
        assert len(detector._ring) <= detector.ring_size
        assert len(detector._d1) <= detector.delay + settings.cut_window + 2
        assert len(detector._flat) <= detector.delay + 1
    transitions = detector.finish()
    assert [t.boundary for t in transitions] == list(range(150, 1200, 150))
    shots = ShotList.from_transitions(transitions, 1200, Fraction(25))
    assert len(shots) == 8


def test_bad_reels_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReelNotFoundError, match="no such file"):
        detect_shots(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    with pytest.raises(ReelInputError, match="not an audio or video file"):
        detect_shots(text)
    audio = gen.write_audio(tmp_path / "a.wav", gen.tone(440, 0.5, 16000), 16000)
    with pytest.raises(ReelInputError, match="no video stream"):
        detect_shots(audio)
