"""Reels built once per test session from the GRID clips, with their hand-labelled shots."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.reel.shots import ShotList
from tests.reel import reelgen


@pytest.fixture(scope="session")
def reel_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reel")


@pytest.fixture(scope="session")
def test_reel(reel_dir: Path) -> Path:
    """``reelgen.TEST_REEL`` as H.264 (360x288, 25 fps, 386 frames), timecode 01:00:00:00,
    with a stereo AAC track."""
    return reelgen.build_reel(reel_dir / "reel.mp4", reelgen.TEST_REEL,
                              timecode="01:00:00:00", audio=True)


@pytest.fixture(scope="session")
def test_reel_truth() -> ShotList:
    return reelgen.truth(reelgen.TEST_REEL, start_timecode="01:00:00:00")
