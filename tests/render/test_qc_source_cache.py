"""The kept source mouth series of the render QC (``studio.render.qc_cache``).

The attacker can write ``<data>/qc-source`` (not the HMAC key): a kept series that is not the
studio's, or not for these bytes, this tracking and this instrument, is discarded and measured
afresh, never used (it would forge the "leak" and range figures of every later render)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.qc import dlib_mouth
from studio.render import qc_cache
from studio.render.qc_cache import QCSourceCache

SHOT, MESHES, TRACK = "a" * 64, "b" * 64, 1
SERIES = np.array([np.nan, 0.125, 0.3333333333333333, 0.0, np.nan, 1e-7, 0.25])


@pytest.fixture
def cache(tmp_path: Path) -> QCSourceCache:
    return QCSourceCache(tmp_path / "qc-source", tmp_path / "keys" / "analysis-hmac.key")


def _entry(cache: QCSourceCache) -> Path:
    (path,) = cache.root.glob("*.json")
    return path


def _load(cache: QCSourceCache, shot: str = SHOT, meshes: str = MESHES, track: int = TRACK,
          frames: int = len(SERIES)) -> np.ndarray | None:
    return cache.load(shot, meshes, track, frames)


def test_a_kept_series_loads_bit_for_bit_gaps_included(cache: QCSourceCache) -> None:
    cache.store(SHOT, MESHES, TRACK, SERIES)
    loaded = _load(cache)
    assert loaded is not None
    assert np.array_equal(loaded, SERIES, equal_nan=True)
    assert (cache.key_path.stat().st_mode & 0o777) == 0o600


@pytest.mark.parametrize("other", ["shot", "meshes", "track", "frames", "instrument"])
def test_other_bytes_tracking_or_instrument_never_hit(cache: QCSourceCache, other: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    cache.store(SHOT, MESHES, TRACK, SERIES)
    if other == "instrument":
        monkeypatch.setattr(dlib_mouth, "INSTRUMENT", dlib_mouth.INSTRUMENT + "-changed")
        assert _load(cache) is None
        monkeypatch.undo()
    else:
        changed = {"shot": {"shot": "c" * 64}, "meshes": {"meshes": "d" * 64},
                   "track": {"track": 2}, "frames": {"frames": len(SERIES) + 1}}[other]
        assert _load(cache, **changed) is None  # type: ignore[arg-type]
    assert _load(cache) is not None  # a miss is not a discard: the entry stays


def _edit(path: Path, change: str) -> None:
    doc = json.loads(path.read_text())
    if change == "figure":  # a figure moved, its MAC kept
        doc["body"]["series"][1] = 0.5
    elif change == "mac":
        doc["mac"] = "00" * 32
    elif change == "truncated-series":
        doc["body"]["series"] = doc["body"]["series"][:-1]
    elif change == "key":  # sealed for this entry, renamed to stand for another one
        path.rename(path.with_name("f" * 64 + ".json"))
        return
    elif change == "garbage":
        path.write_bytes(b"\x00not json")
        return
    else:  # padded far past any series the studio writes: refused unread
        doc["padding"] = "x" * (1 << 20)
    path.write_text(json.dumps(doc))


@pytest.mark.parametrize("change", ["figure", "mac", "truncated-series", "garbage", "huge"])
def test_a_tampered_series_is_discarded(cache: QCSourceCache, change: str) -> None:
    cache.store(SHOT, MESHES, TRACK, SERIES)
    path = _entry(cache)
    _edit(path, change)
    assert _load(cache) is None
    assert not path.exists()
    # Measured afresh and kept again, it loads.
    cache.store(SHOT, MESHES, TRACK, SERIES)
    assert _load(cache) is not None


def test_a_series_sealed_for_another_key_is_discarded(cache: QCSourceCache) -> None:
    """An attacker copies the studio's own sound entry of another shot under this one's
    name: its MAC verifies, but it names the other key."""
    cache.store("c" * 64, MESHES, TRACK, SERIES * 2)
    (theirs,) = cache.root.glob("*.json")
    ours = cache.root / f"{cache.key(SHOT, MESHES, TRACK, len(SERIES))}.json"
    ours.write_bytes(theirs.read_bytes())
    assert _load(cache) is None
    assert not ours.exists() and theirs.exists()


def test_a_link_is_discarded_never_followed(cache: QCSourceCache, tmp_path: Path) -> None:
    cache.store(SHOT, MESHES, TRACK, SERIES)
    path = _entry(cache)
    kept = tmp_path / "attacker.json"
    kept.write_bytes(path.read_bytes())  # even a link to a sound copy
    path.unlink()
    path.symlink_to(kept)
    assert _load(cache) is None
    assert not path.is_symlink() and kept.exists()


def test_nothing_is_kept_without_both_hashes_or_when_off(tmp_path: Path,
                                                         cache: QCSourceCache) -> None:
    cache.store(SHOT, "", TRACK, SERIES)
    cache.store("", MESHES, TRACK, SERIES)
    assert not cache.root.exists()
    off = QCSourceCache(cache.root, cache.key_path, enabled=False)
    off.store(SHOT, MESHES, TRACK, SERIES)
    assert not cache.root.exists()


def test_the_least_recently_used_go_first(cache: QCSourceCache,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(qc_cache, "MAX_ENTRIES", 2)
    for track in (1, 2):
        cache.store(SHOT, MESHES, track, SERIES)
    first = cache.root / f"{cache.key(SHOT, MESHES, 1, len(SERIES))}.json"
    os.utime(first, (1, 1))
    assert _load(cache, track=1) is not None  # used: now the most recent
    cache.store(SHOT, MESHES, 3, SERIES)
    assert _load(cache, track=1) is not None and _load(cache, track=3) is not None
    assert _load(cache, track=2) is None
