"""Fixtures the provenance tests share: a studio signing identity and real media to sign.

Module-scoped, so each test module gets its own local CA and files (a module that needs other
media defines its own ``media``, which takes precedence)."""

from __future__ import annotations

from pathlib import Path

import pytest

from studio.provenance.certificates import LocalIdentity, create_local_identity
from tests.provenance.test_c2pa import GRID, make_mp4, make_png, make_wav, remux


@pytest.fixture(scope="module")
def identity(tmp_path_factory: pytest.TempPathFactory) -> LocalIdentity:
    return create_local_identity(tmp_path_factory.mktemp("keys") / "c2pa", "Test Dubbing Studio")


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One second of GRID bbaf2n as H.264 (and the same remuxed to MKV), another speaker's
    clip, a reference still and a dub WAV."""
    d = tmp_path_factory.mktemp("media")
    clip = make_mp4(GRID / "bbaf2n.mpg", d / "shot.mp4")
    return {
        "clip": clip,
        "other": make_mp4(GRID / "brbk7n.mpg", d / "other.mp4"),
        "ref": make_png(GRID / "bbaf2n.mpg", d / "reference.png"),
        "wav": make_wav(d / "dub.wav"),
        "mkv": remux(clip, d / "shot.mkv"),
    }
