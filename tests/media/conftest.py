"""Media made once per test session (per xdist worker) with PyAV, in a temporary folder."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from tests.media import mediagen as gen

BT709 = (1, 1, 1, 1)  # primaries, transfer, matrix, range (tv)

# Timestamps (ms) of the VFR clip's 12 frames on a 25 fps grid (40 ms): slot 3 is missing,
# two frames crowd slot 6 (240 and 250 ms), slots 9-10 are missing.
VFR_PTS_MS = [0, 40, 80, 160, 200, 240, 250, 280, 320, 440, 480, 520]


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def clip_720p(media_dir: Path) -> Path:
    """1 s of GRID upscaled to 1280x720 H.264, BT.709-tagged, timecode 10:00:00:00, AAC."""
    return gen.write_video(
        media_dir / "hd.mp4", gen.grid_frames(25, size=(1280, 720)), colour=BT709,
        timecode="10:00:00:00", audio=(gen.tone(440, 1.0, 48000, 2), 48000))


@pytest.fixture(scope="session")
def clip_ntsc_df(media_dir: Path) -> Path:
    """29.97 fps QuickTime with drop-frame timecode 00:59:59;28 and a 1 s AAC track."""
    return gen.write_video(
        media_dir / "ntsc.mov", gen.grid_frames(30, size=(320, 240)),
        rate=Fraction(30000, 1001), time_base=Fraction(1, 30000),
        pts=[i * 1001 for i in range(30)], timecode="00:59:59;28",
        audio=(gen.tone(1000, 1.0, 48000, 2), 48000))


@pytest.fixture(scope="session")
def clip_vfr(media_dir: Path) -> Path:
    """Variable frame rate (see ``VFR_PTS_MS``), frames numbered by ``marker_frame``."""
    return gen.write_video(
        media_dir / "vfr.mp4", (gen.marker_frame(i, 320, 240) for i in range(12)),
        time_base=Fraction(1, 1000), pts=VFR_PTS_MS, options={"qp": "0"})


@pytest.fixture(scope="session")
def clip_rotated(media_dir: Path) -> Path:
    """A phone-style clip: 360x288 frames with a display matrix of 90 degrees (ccw)."""
    return gen.write_video(media_dir / "rotated.mp4", gen.grid_frames(10), rotation=90)


@pytest.fixture(scope="session")
def clip_odd(media_dir: Path) -> Path:
    """361x287 frames (odd both ways), H.264 4:4:4 so the source itself is exact."""
    return gen.write_video(media_dir / "odd.mp4", gen.grid_frames(10, size=(361, 287)),
                           pix_fmt="yuv444p")


@pytest.fixture(scope="session")
def audio_51(media_dir: Path) -> Path:
    """2 s of 5.1 PCM at 48 kHz, a different tone per channel."""
    samples = np.concatenate([gen.tone(f, 2.0, 48000) for f in
                              (300, 500, 700, 60, 900, 1100)])
    return gen.write_audio(media_dir / "surround.wav", samples, 48000)


@pytest.fixture(scope="session")
def audio_only(media_dir: Path) -> Path:
    """1.5 s of stereo AAC in an M4A: no video stream."""
    return gen.write_audio(media_dir / "dialogue.m4a", gen.tone(220, 1.5, 44100, 2), 44100,
                           codec="aac")
