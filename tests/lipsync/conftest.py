"""Shared lip-sync fixtures: GRID shots analysed once per worker, dubs prepared from GRID audio."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.lipsync import SpeechDrive, drive_from_recording
from pipelines.media import load_audio
from pipelines.speech.dub import PreparedDub, prepare_dub

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"


@pytest.fixture(scope="session")
def shot_a(tmp_path_factory: pytest.TempPathFactory) -> ShotAnalysis:
    """Speaker A (bbaf2n): a closed-lipped speaker, 75 frames, one face."""
    return analyse_shot(GRID / "bbaf2n.mpg", tmp_path_factory.mktemp("shot_a"), None)


@pytest.fixture(scope="session")
def dub_b(shot_a: ShotAnalysis) -> PreparedDub:
    """Speaker B's (brbk7n) recorded sentence as a dub for shot A."""
    frames = shot_a.scan.frame_count
    assert shot_a.info.video is not None
    return prepare_dub(load_audio(GRID / "brbk7n.mpg"),
                       Fraction(frames) / shot_a.info.video.frame_rate)


@pytest.fixture(scope="session")
def drive_b(shot_a: ShotAnalysis, dub_b: PreparedDub) -> SpeechDrive:
    assert shot_a.info.video is not None
    return drive_from_recording(dub_b, shot_a.info.video.frame_rate, shot_a.scan.frame_count)
