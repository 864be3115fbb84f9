"""Recorded face meshes bound to what the tracking wrote (``landmark_file.meshes_digest``).

The mesh files live in shared staging: whoever can write it could move a face (an edit lands
outside the tracked face) or swap two tracks (an edit lands on another person). A folder is
read once, checked against the recorder's digest and served from memory: files changed before
the check are refused, files changed after it change nothing."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.landmark_file import (
    MESH_SHAPE,
    LandmarkDigestError,
    LandmarkRecorder,
    TrackLandmarks,
    load_checked,
)
from pipelines.faces.landmarks import FaceObservation
from pipelines.faces.scan import ScanResult
from pipelines.faces.tracking import Track


def _obs(x: float) -> FaceObservation:
    mesh = np.zeros(MESH_SHAPE, np.float32)
    mesh[:, 0] = x
    return FaceObservation((0, 0, 1, 1), mesh, 0.9)


def _recorded(folder: Path) -> str:
    """Two faces: track 1 at x 100 on frames 0-4, track 2 at x 300 on frames 2-6."""
    with LandmarkRecorder(folder) as rec:
        for frame in range(7):
            faces = [(1, _obs(100 + frame))] if frame < 5 else []
            faces += [(2, _obs(300 + frame))] if frame >= 2 else []
            rec.add(frame, faces)
    return rec.digest()


def _move(path: Path, dx: float) -> None:
    meshes = np.fromfile(path, dtype=np.float32).reshape(-1, *MESH_SHAPE)
    meshes[:, :, 0] += dx
    with path.open("r+b") as fh:  # in place, same size: only the bytes differ
        fh.write(meshes.tobytes())


@pytest.mark.parametrize("private", [False, True], ids=["in_memory", "private_copy"])
def test_checked_meshes_are_the_recorded_ones_held_in_memory_or_a_private_copy(
        tmp_path: Path, private: bool) -> None:
    digest = _recorded(tmp_path)
    into = tmp_path / "mine" if private else None
    tracks = load_checked(tmp_path, digest, into=into)
    assert sorted(tracks) == [1, 2]
    for track_id in (1, 2):
        on_disk = TrackLandmarks(tmp_path, track_id)
        assert np.array_equal(tracks[track_id].frames, on_disk.frames)
        assert np.array_equal(tracks[track_id].meshes, on_disk.meshes)
    # A private copy is memory-mapped (flat in the shot's length) and read-only.
    assert (tracks[1].mapped is not None) == private
    assert not tracks[1].meshes.flags.writeable
    if into is not None:
        assert sorted(p.name for p in into.iterdir()) \
            == ["track-1.f32", "track-1.idx", "track-2.f32", "track-2.idx"]
        assert {p.stat().st_mode & 0o777 for p in into.iterdir()} == {0o400}
        assert into.stat().st_mode & 0o077 == 0
        assert tracks[1].mapped == into / "track-1.f32"
    # Changed on disk after the check: what was checked is what is served.
    _move(tmp_path / "track-1.f32", 120.0)
    assert float(tracks[1].mesh(0)[0, 0]) == 100.0  # type: ignore[index]


@pytest.mark.parametrize("private", [False, True], ids=["in_memory", "private_copy"])
@pytest.mark.parametrize("attack", ["move", "swap", "drop_frames", "add_track", "remove"])
def test_meshes_changed_since_the_tracking_are_refused(tmp_path: Path, attack: str,
                                                       private: bool) -> None:
    digest = _recorded(tmp_path)
    if attack == "move":  # every point of track 1 120 px to the right
        _move(tmp_path / "track-1.f32", 120.0)
    elif attack == "swap":  # the two faces' files exchanged: an edit on the other person
        for suffix in (".f32", ".idx"):
            one, two = tmp_path / f"track-1{suffix}", tmp_path / f"track-2{suffix}"
            os.replace(one, tmp_path / "aside")
            os.replace(two, one)
            os.replace(tmp_path / "aside", two)
    elif attack == "drop_frames":  # the same meshes shifted to other frames
        frames = np.fromfile(tmp_path / "track-1.idx", dtype=np.int32) + 1
        frames.tofile(tmp_path / "track-1.idx")
    elif attack == "add_track":
        for suffix in (".f32", ".idx"):
            (tmp_path / f"track-9{suffix}").write_bytes(
                (tmp_path / f"track-1{suffix}").read_bytes())
    else:
        (tmp_path / "track-2.f32").unlink()
    with pytest.raises(LandmarkDigestError, match="not those the tracking recorded"):
        load_checked(tmp_path, digest, into=tmp_path / "mine" if private else None)


def test_a_pinned_analysis_serves_its_checked_meshes_only(tmp_path: Path) -> None:
    digest = _recorded(tmp_path)
    tracks = [Track(1, 0, 4, 5, ((0, 4),), (), None), Track(2, 2, 6, 5, ((2, 6),), (), None)]
    analysis = ShotAnalysis(tmp_path / "shot.mp4", None,  # type: ignore[arg-type]
                            ScanResult(tracks, 7, []), tmp_path, {}, digest)
    pinned = analysis.pinned()
    assert pinned.meshes is not None and pinned.unpinned().meshes is None
    _move(tmp_path / "track-2.f32", -200.0)  # after the check: no effect on the pinned one
    assert float(pinned.landmarks(2).mesh(2)[0, 0]) == 302.0  # type: ignore[index]
    assert float(analysis.landmarks(2).mesh(2)[0, 0]) == 102.0  # type: ignore[index]
    with pytest.raises(LandmarkDigestError):
        analysis.pinned()  # checked again now: refused
    with pytest.raises(LandmarkDigestError, match="no digest"):
        ShotAnalysis(tmp_path / "shot.mp4", None,  # type: ignore[arg-type]
                     ScanResult(tracks, 7, []), tmp_path).pinned()
