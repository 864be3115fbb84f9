"""The QC's kept copy of dlib's frontal face detector (``dlib_mouth._frontal_detector``): it is
dlib's own detector (the same faces on real frames), and a copy whose bytes are not exactly
dlib's is never loaded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dlib  # type: ignore[import-untyped]
import pytest

from pipelines.media import VideoReader
from pipelines.qc import dlib_mouth

GRID = Path(__file__).resolve().parents[2] / "assets" / "media" / "grid"

pytestmark = pytest.mark.skipif(
    str(dlib.__version__) not in dlib_mouth.FRONTAL_DETECTOR_SHA256,
    reason="no pinned detector bytes for this dlib version (the slow path only)")


@pytest.fixture(autouse=True)
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


def _copy() -> Path:
    return dlib_mouth._detector_copy(dlib_mouth.FRONTAL_DETECTOR_SHA256[str(dlib.__version__)])


def _boxes(detector: Any) -> list[list[tuple[int, int, int, int]]]:
    out = []
    for clip in ("bbaf2n.mpg", "lrwp9a.mpg"):
        with VideoReader(GRID / clip) as reader:
            for index, frame in enumerate(reader):
                if index % 5 == 0:
                    gray = dlib_mouth._gray(frame.rgb)
                    out.append([(r.left(), r.top(), r.right(), r.bottom())
                                for r in detector(gray, 0)])
    return out


def _no_slow_path(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse() -> Any:
        raise AssertionError("dlib's built-in detector was unpacked: the copy was not used")

    monkeypatch.setattr(dlib, "get_frontal_face_detector", refuse)


def test_the_kept_copy_finds_the_faces_dlibs_own_detector_finds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    own = dlib_mouth._frontal_detector()  # no copy yet: dlib's own, and a copy kept
    assert _copy().is_file()
    _no_slow_path(monkeypatch)
    kept = dlib_mouth._frontal_detector()
    expected = _boxes(own)
    assert sum(map(len, expected)) >= 25  # a face in every sampled frame
    assert _boxes(kept) == expected


@pytest.mark.parametrize("change", ["flipped-byte", "truncated", "other-tail", "huge"])
def test_a_copy_that_is_not_dlibs_detector_is_never_loaded(
        change: str, monkeypatch: pytest.MonkeyPatch) -> None:
    dlib_mouth._frontal_detector()
    copy = _copy()
    data = bytearray(copy.read_bytes())
    if change == "flipped-byte":  # one weight of a filter changed
        data[len(data) // 2] ^= 0x01
    elif change == "truncated":
        del data[-100:]
    elif change == "other-tail":
        data[-8:] = bytes(8)  # its tail (a threshold or a weight) zeroed
    else:
        data += bytes(2 << 20)
    copy.write_bytes(bytes(data))
    unpacked: list[int] = []
    real = dlib.get_frontal_face_detector

    def counting() -> Any:
        unpacked.append(1)
        return real()

    monkeypatch.setattr(dlib, "get_frontal_face_detector", counting)
    detector = dlib_mouth._frontal_detector()
    assert unpacked == [1]  # dlib's own, not the copy
    assert _boxes(detector)[0]
    # ... and a sound copy is back in its place.
    _no_slow_path(monkeypatch)
    dlib_mouth._frontal_detector()


def test_other_dlib_versions_keep_no_copy(monkeypatch: pytest.MonkeyPatch,
                                          cache_home: Path) -> None:
    monkeypatch.setattr(dlib_mouth, "FRONTAL_DETECTOR_SHA256", {})
    assert dlib_mouth._frontal_detector() is not None
    assert not cache_home.exists()
