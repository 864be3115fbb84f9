"""Motion extraction, resampling, clamping and motion files (no rendering)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from pipelines.faces import eye_opening, mouth_opening
from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.reenact import (
    Motion,
    MotionFileError,
    ReenactOptions,
    extract_motion,
    load_motion,
    plan_drive,
    read_motion_file,
    save_motion,
)
from pipelines.reenact.motion import euler, rotation_from
from pipelines.reenact.motion_file import SCHEMA
from tests.media.mediagen import write_video

from .conftest import GRID, decode


def test_motion_follows_the_drivers_mouth_and_eyes(driver: ShotAnalysis, motion: Motion) -> None:
    lm = driver.landmarks(driver.tracks[0].track_id)
    assert motion.frame_count == 75 and motion.frame_rate == 25 and motion.present.all()
    assert motion.deltas.shape == (75, 468, 3)
    assert np.abs(motion.deltas[motion.neutral_frame]).max() < 1e-6
    gap = motion.deltas[:, 14, 1] - motion.deltas[:, 13, 1]
    openings = np.array([mouth_opening(m) for m in lm.meshes])
    assert np.corrcoef(gap, openings)[0, 1] > 0.95
    lids = motion.deltas[:, 145, 1] - motion.deltas[:, 159, 1]
    ears = np.array([eye_opening(m).right for m in lm.meshes])
    assert np.corrcoef(lids, ears)[0, 1] > 0.8
    # Pixel-free, and who drove it is on record.
    assert motion.identity.video_sha256 and len(motion.identity.video_sha256) == 64
    assert motion.identity.track_id == driver.tracks[0].track_id


def test_first_frame_is_the_default_neutral(driver: ShotAnalysis, motion: Motion) -> None:
    first = extract_motion(driver, video_sha256="0" * 64)
    assert first.neutral_frame == 0
    assert np.abs(first.deltas[0]).max() < 1e-6
    # GRID's brbk7n starts with parted lips: the rest-like neutral is a closed-mouth frame.
    lm = driver.landmarks(driver.tracks[0].track_id)
    assert mouth_opening(lm.meshes[motion.neutral_frame]) < 0.02 < mouth_opening(lm.meshes[0])


def test_rotation_round_trip() -> None:
    for yaw, pitch, roll in [(0, 0, 0), (15, -7, 4), (-30, 10, -9)]:
        assert euler(rotation_from(yaw, pitch, roll)) == pytest.approx((yaw, pitch, roll))


def test_driver_at_50_fps_is_resampled_to_the_sources_timing(motion: Motion) -> None:
    doubled = Motion(Fraction(50), np.repeat(motion.deltas, 2, axis=0),
                     np.repeat(motion.pose, 2, axis=0), np.repeat(motion.present, 2),
                     motion.neutral_frame * 2, motion.features, motion.identity)
    options = ReenactOptions(smoothing=0)
    at25 = plan_drive(doubled, Fraction(25), 75, options)
    native = plan_drive(motion, Fraction(25), 75, options)
    assert at25.frame_count == 75 and at25.frame_rate == 25
    np.testing.assert_allclose(at25.deltas, native.deltas, atol=1e-6)
    # 30 fps output: 90 frames, interpolated between the driver's frames.
    at30 = plan_drive(motion, Fraction(30), 90, options)
    assert at30.report.beyond_driver == 0
    np.testing.assert_allclose(at30.deltas[6], motion.deltas[5], atol=1e-6)  # t = 0.2 s
    mid = (motion.deltas[6] + motion.deltas[7]) / 2  # frame 8 at 30 fps = 6.67 at 25
    assert np.abs(at30.deltas[8] - mid).max() < np.abs(motion.deltas[7] - motion.deltas[6]).max()
    # An output longer than the driver holds its last pose, and says so.
    long = plan_drive(motion, Fraction(25), 100, options)
    assert long.report.beyond_driver == 25
    np.testing.assert_array_equal(long.deltas[-1], motion.deltas[-1])


def test_poses_past_the_limits_are_clamped_and_reported(motion: Motion) -> None:
    pose = motion.pose.copy()
    pose[30:40, 0] = 35.0    # yaw past ±20
    pose[50, 2] = -14.0      # roll past ±10
    turned = Motion(motion.frame_rate, motion.deltas, pose, motion.present,
                    motion.neutral_frame, motion.features, motion.identity)
    drive = plan_drive(turned, Fraction(25), 75, ReenactOptions(head_pose=True, smoothing=0))
    assert drive.rotation[:, 0].max() == pytest.approx(20.0)
    assert drive.rotation[50, 2] == pytest.approx(-10.0)
    assert drive.report.pose_clamped_frames == 11
    assert drive.report.requested_max["yaw"] == pytest.approx(35.0)
    assert drive.report.clamped
    # Expression only: no pose is transferred, so nothing is clamped.
    still = plan_drive(turned, Fraction(25), 75, ReenactOptions(smoothing=0))
    assert not still.rotation.any() and still.report.pose_clamped_frames == 0
    with pytest.raises(ValueError, match="unknown regions"):
        ReenactOptions(regions=frozenset({"ears"}))
    with pytest.raises(ValueError, match="multiplier"):
        ReenactOptions(multiplier=3.0)


def test_faceless_driver_frames_hold_the_last_pose(tmp_path: Path) -> None:
    frames = decode(GRID / "lbax4n.mpg")[:40]
    grey = np.full_like(frames[0], 90)
    frames[20:26] = [grey] * 6
    path = write_video(tmp_path / "gap.mp4", frames, options={"crf": "14"})
    shot = analyse_shot(path, tmp_path / "work", None)
    held = extract_motion(shot, video_sha256="1" * 64)
    assert held.frame_count == 40
    assert not held.present[20:26].any() and held.present[:20].all()
    for i in range(20, 26):
        np.testing.assert_array_equal(held.deltas[i], held.deltas[19])
        np.testing.assert_array_equal(held.pose[i], held.pose[19])
    assert plan_drive(held, Fraction(25), 40).report.faceless_frames == 6


def _seal(digest: str) -> bytes:
    # The file format stores the seal as opaque bytes; issuing and checking real seals is
    # tested with the registry (tests/render/test_motion_seals.py).
    return json.dumps({"seal-for": digest}).encode()


def test_motion_file_round_trip(tmp_path: Path, motion: Motion) -> None:
    path = save_motion(motion, tmp_path / "take.motion.npz", seal=_seal)
    assert path.stat().st_size < 400_000
    loaded = read_motion_file(path)
    back = loaded.motion
    assert back.frame_rate == motion.frame_rate and back.frame_count == motion.frame_count
    assert back.neutral_frame == motion.neutral_frame
    assert back.features.to_json() == motion.features.to_json()
    np.testing.assert_allclose(back.deltas, motion.deltas, atol=2e-3)
    np.testing.assert_allclose(back.pose, motion.pose, atol=1e-5)
    np.testing.assert_array_equal(back.present, motion.present)
    assert back.identity.video_sha256 == motion.identity.video_sha256
    assert back.identity.embedder == "none"
    # The seal was asked for the digest of exactly the bytes that were written.
    assert json.loads(loaded.seal) == {"seal-for": loaded.payload_sha256}
    assert load_motion(path).frame_count == motion.frame_count
    with zipfile.ZipFile(path) as z:
        assert sorted(z.namelist()) == sorted(f"{m}.npy" for m in (
            "header", "deltas", "vertices", "pose", "present", "embeddings", "seal"))


def _arrays(src: Path) -> dict[str, np.ndarray]:
    with np.load(src) as archive:
        return {k: archive[k] for k in archive.files}


def _rewrite(src: Path, dst: Path, **changes: object) -> Path:
    arrays = _arrays(src)
    header = json.loads(arrays["header"].tobytes())
    header.update(changes)
    arrays["header"] = np.frombuffer(json.dumps(header).encode(), np.uint8)
    np.savez(dst, **arrays)  # type: ignore[arg-type]
    return dst


def test_every_payload_byte_is_in_the_digest(tmp_path: Path, motion: Motion) -> None:
    vectors = np.random.default_rng(7).normal(size=(4, 128)).astype(np.float32)
    motion = replace(motion, identity=replace(motion.identity, embeddings=vectors))
    good = save_motion(motion, tmp_path / "good.motion.npz", seal=_seal)
    digest = read_motion_file(good).payload_sha256
    for member in ("header", "deltas", "pose", "present", "embeddings"):
        arrays = _arrays(good)
        changed = arrays[member].copy()
        changed.reshape(-1).view(np.uint8)[0] ^= 1
        arrays[member] = changed
        np.savez(tmp_path / "edited.npz", **arrays)  # type: ignore[arg-type]
        try:
            assert read_motion_file(tmp_path / "edited.npz").payload_sha256 != digest, member
        except MotionFileError:
            assert member in ("header", "present")  # a value the reader itself refuses


def test_bad_motion_files_are_refused(tmp_path: Path, motion: Motion) -> None:
    good = save_motion(motion, tmp_path / "good.motion.npz", seal=_seal)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.motion.npz"
    truncated.write_bytes(data[: len(data) // 2])
    flipped = tmp_path / "flipped.motion.npz"
    body = bytearray(data)
    body[len(body) // 3] ^= 0xFF
    flipped.write_bytes(bytes(body))
    garbage = tmp_path / "garbage.motion.npz"
    garbage.write_bytes(b"not a zip at all")
    for bad in (truncated, flipped, garbage):
        with pytest.raises(MotionFileError):
            load_motion(bad)
    with pytest.raises(MotionFileError, match="version 3"):
        load_motion(_rewrite(good, tmp_path / "v3.npz", version=3))
    with pytest.raises(MotionFileError, match="schema"):
        load_motion(_rewrite(good, tmp_path / "other.npz", schema="someone/else"))
    with pytest.raises(MotionFileError, match="header says"):
        load_motion(_rewrite(good, tmp_path / "short.npz", frame_count=70))
    assert SCHEMA.endswith("reenact-motion")


def test_unsigned_and_version_1_files_are_refused_with_a_way_out(tmp_path: Path,
                                                                  motion: Motion) -> None:
    good = save_motion(motion, tmp_path / "good.motion.npz", seal=_seal)
    arrays = _arrays(good)
    del arrays["seal"]
    np.savez(tmp_path / "unsigned.npz", **arrays)  # type: ignore[arg-type]
    with pytest.raises(MotionFileError, match=r"no registry seal.*studio motion extract"):
        load_motion(tmp_path / "unsigned.npz")
    # A version 1 file: an unkeyed hash in the header, no seal.
    with pytest.raises(MotionFileError, match=r"unsigned motion file.*studio motion extract"):
        load_motion(_rewrite(tmp_path / "unsigned.npz", tmp_path / "v1.npz", version=1,
                             payload_sha256="0" * 64))
    with pytest.raises(MotionFileError, match="only with a seal"):
        save_motion(motion, tmp_path / "never.motion.npz", seal=lambda _digest: b"")
    assert not (tmp_path / "never.motion.npz").exists()


def test_a_motion_file_is_never_overwritten(tmp_path: Path, motion: Motion) -> None:
    """Two extractions to one path: the second is refused and the first file is kept whole
    (a sealed file replaced under a reader would be a different performance)."""
    first = save_motion(motion, tmp_path / "take.motion.npz", seal=_seal)
    before = first.read_bytes()
    with pytest.raises(MotionFileError, match="exists; not overwriting"):
        save_motion(motion, first, seal=_seal)
    assert first.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["take.motion.npz"]  # no temporary left
