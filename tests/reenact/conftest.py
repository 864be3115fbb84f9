"""Shared reenactment fixtures: GRID shots analysed once per session, one driver's motion.

The source performer is GRID's bbaf2n, re-encoded with a start timecode (so that timecode
survival is checked on the same render); the driver is brbk7n (another speaker), whose motion
is taken relative to its rest-like frame (it starts with parted lips).
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest

from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.reenact import Motion, extract_motion
from tests.media.mediagen import write_video

ROOT = Path(__file__).resolve().parents[2]
GRID = ROOT / "assets" / "media" / "grid"
ASTRONAUT = ROOT / "assets" / "media" / "astronaut.png"
TIMECODE = "01:00:10:00"


def decode(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="session")
def driver(tmp_path_factory: pytest.TempPathFactory) -> ShotAnalysis:
    """Speaker brbk7n: 75 frames at 25 fps, one face, one blink (frames 21-22)."""
    return analyse_shot(GRID / "brbk7n.mpg", tmp_path_factory.mktemp("driver"), None)


@pytest.fixture(scope="session")
def motion(driver: ShotAnalysis) -> Motion:
    return extract_motion(driver, neutral_frame="rest", embedder="none")


@pytest.fixture(scope="session")
def source(tmp_path_factory: pytest.TempPathFactory) -> ShotAnalysis:
    """Speaker bbaf2n with a start timecode (75 frames, 25 fps, 360×288)."""
    folder = tmp_path_factory.mktemp("source")
    path = write_video(folder / "bbaf2n_tc.mp4", decode(GRID / "bbaf2n.mpg"),
                       timecode=TIMECODE, options={"crf": "12"})
    return analyse_shot(path, folder / "work", None)
