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


@pytest.fixture(scope="session")
def prores_reel(reel_dir: Path) -> Path:
    """The test reel as ProRes 422 HQ in QuickTime (intra-only: shots copy as packets),
    timecode 01:00:00:00, stereo AAC."""
    return reelgen.build_reel(reel_dir / "reel.mov", reelgen.TEST_REEL, codec="prores",
                              pix_fmt="yuv422p10le", options={"profile": "3"},
                              timecode="01:00:00:00", audio=True)
