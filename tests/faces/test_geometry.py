"""Mesh geometry: pose conventions on synthetic projections, and measurements on real clips."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from pipelines.faces import (
    HeadPose,
    ScanResult,
    eye_opening,
    face_sharpness,
    faces_in_image,
    head_pose,
    inter_ocular_distance,
    is_frontal,
    mouth_opening,
)
from pipelines.faces.geometry import CANONICAL_POINTS
from tests.faces.conftest import GRID_NAMES, Recorder, astronaut, grid_frames

Scans = dict[str, tuple[ScanResult, Recorder]]


def _rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Rotation in OpenCV's camera frame for the documented sign conventions."""
    a, b, c = (math.radians(v) for v in (yaw, pitch, roll))
    # yaw > 0 turns the nose (−z) toward +x; pitch > 0 turns it toward −y (up).
    ry = np.array([[math.cos(a), 0, -math.sin(a)], [0, 1, 0], [math.sin(a), 0, math.cos(a)]])
    rx = np.array([[1, 0, 0], [0, math.cos(b), math.sin(b)], [0, -math.sin(b), math.cos(b)]])
    rz = np.array([[math.cos(c), -math.sin(c), 0], [math.sin(c), math.cos(c), 0], [0, 0, 1]])
    return np.asarray(rz @ ry @ rx)


def _synthetic_mesh(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Canonical pose points rotated and projected by a 640×480 pinhole, face on the axis."""
    model = np.array([(x, -y, -z) for x, y, z in CANONICAL_POINTS.values()])
    model -= model.mean(axis=0)
    pts = (_rotation(yaw, pitch, roll) @ model.T).T + np.array([0.0, 0.0, 60.0])
    pix = pts[:, :2] / pts[:, 2:] * 640 + [320, 240]
    mesh = np.zeros((478, 3), np.float32)
    mesh[list(CANONICAL_POINTS), :2] = pix
    return mesh


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [(0, 0, 0), (20, 0, 0), (-30, 0, 0), (0, 15, 0), (0, -15, 0), (0, 0, 10), (15, -10, 5)],
)
def test_head_pose_recovers_synthetic_rotations(yaw: float, pitch: float, roll: float) -> None:
    pose = head_pose(_synthetic_mesh(yaw, pitch, roll), (640, 480))
    assert pose.yaw == pytest.approx(yaw, abs=1.0)
    assert pose.pitch == pytest.approx(pitch, abs=1.0)
    assert pose.roll == pytest.approx(roll, abs=1.0)


def test_synthetic_signs_match_the_documented_convention() -> None:
    nose = list(CANONICAL_POINTS).index(1)
    eyes = [list(CANONICAL_POINTS).index(i) for i in (33, 263)]
    base = _synthetic_mesh(0, 0, 0)[list(CANONICAL_POINTS)]
    right = _synthetic_mesh(20, 0, 0)[list(CANONICAL_POINTS)]
    up = _synthetic_mesh(0, 15, 0)[list(CANONICAL_POINTS)]
    cw = _synthetic_mesh(0, 0, 10)[list(CANONICAL_POINTS)]
    assert right[nose, 0] - right[eyes, 0].mean() > base[nose, 0] - base[eyes, 0].mean()
    assert up[nose, 1] - up[eyes, 1].mean() < base[nose, 1] - base[eyes, 1].mean()
    assert cw[eyes[1], 1] > cw[eyes[0], 1]  # the image-right eye drops: clockwise


def test_roll_follows_an_in_plane_rotation_of_the_astronaut() -> None:
    image = astronaut()
    base = faces_in_image(image)[0]
    centre = ((base.bbox[0] + base.bbox[2]) / 2, (base.bbox[1] + base.bbox[3]) / 2)
    # cv2's positive angle is counter-clockwise on screen, so −15 turns the face clockwise.
    matrix = cv2.getRotationMatrix2D(centre, -15.0, 1.0)
    rotated = cv2.warpAffine(np.asarray(image), matrix, (512, 512))
    face = faces_in_image(rotated)[0]
    p0 = head_pose(base.landmarks, base.image_size)
    p1 = head_pose(face.landmarks, face.image_size)
    assert p1.roll - p0.roll == pytest.approx(15.0, abs=3.0)
    assert abs(p1.yaw - p0.yaw) < 4 and abs(p1.pitch - p0.pitch) < 4


def test_astronaut_is_frontal_with_open_eyes() -> None:
    face = faces_in_image(astronaut())[0]
    pose = head_pose(face.landmarks, face.image_size)
    assert is_frontal(pose)
    assert abs(pose.yaw) < 10 and abs(pose.pitch) < 12
    eyes = eye_opening(face.landmarks)
    assert 0.2 < eyes.right < 0.45 and 0.2 < eyes.left < 0.45
    assert eyes.mean == pytest.approx((eyes.right + eyes.left) / 2)


def test_is_frontal_limits_are_configurable() -> None:
    pose = HeadPose(yaw=22.0, pitch=-5.0, roll=40.0)
    assert is_frontal(pose)
    assert not is_frontal(pose, max_yaw=20.0)
    assert not is_frontal(HeadPose(0.0, 21.0, 0.0))
    assert is_frontal(HeadPose(0.0, 21.0, 0.0), max_pitch=25.0)


def test_geometry_refuses_a_wrong_shape() -> None:
    with pytest.raises(ValueError, match="478"):
        mouth_opening(np.zeros((68, 2), np.float32))
    with pytest.raises(ValueError, match="image_size"):
        head_pose(np.zeros((478, 3), np.float32), (0, 10))


def test_grid_heads_are_near_frontal(grid_scans: Scans) -> None:
    for name in GRID_NAMES:
        result, _ = grid_scans[name]
        (track,) = result.tracks
        assert track.landmarks is not None
        poses = [head_pose(m, (360, 288)) for m in track.landmarks.values()]
        yaws = np.array([p.yaw for p in poses])
        pitches = np.array([p.pitch for p in poses])
        print(f"{name}: yaw {yaws.mean():+.1f}±{yaws.std():.1f}°, "
              f"pitch {pitches.mean():+.1f}±{pitches.std():.1f}°")
        assert np.abs(yaws).max() < 20, name
        assert np.abs(pitches).max() < 20, name
        assert yaws.std() < 3 and pitches.std() < 4, name  # the speakers hold their heads still


def test_grid_inter_ocular_distance_is_stable(grid_scans: Scans) -> None:
    for name in GRID_NAMES:
        (track,) = grid_scans[name][0].tracks
        assert track.landmarks is not None
        iod = np.array([inter_ocular_distance(m) for m in track.landmarks.values()])
        assert 50 < iod.mean() < 110, name
        assert iod.std() / iod.mean() < 0.05, name


def _mouth_series(scans: Scans, name: str) -> np.ndarray:
    (track,) = scans[name][0].tracks
    assert track.landmarks is not None and len(track.landmarks) == 75
    return np.array([mouth_opening(track.landmarks[i]) for i in range(75)])


def test_mouth_opening_follows_speech_on_grid(grid_scans: Scans) -> None:
    for name in GRID_NAMES:
        mouth = _mouth_series(grid_scans, name)
        print(name, " ".join(f"{v:.2f}" for v in mouth))
        speech, tail = mouth[10:58], mouth[62:]
        # It varies: the lips close between syllables and open wide on vowels.
        assert speech.max() - speech.min() > 0.1, name
        assert speech.max() / max(speech.min(), 0.005) > 5, name
        # Trailing silence (every GRID sentence ends ~0.5 s before the clip): still and smaller
        # than the open vowels.
        assert tail.std() < 0.01, name
        assert tail.mean() < 0.6 * speech.max(), name


def test_mouth_is_closed_in_the_leading_silence_where_the_speaker_waits_closed(
    grid_scans: Scans,
) -> None:
    # Not every GRID speaker waits with closed lips (some rest with them parted, ≈0.14), so
    # this holds for the two who do; the opening then grows once speech starts.
    for name, silent in (("bbaf2n", 10), ("lrwp9a", 6)):
        mouth = _mouth_series(grid_scans, name)
        assert mouth[:silent].max() < 0.03, name
        assert mouth[silent:silent + 15].max() > 4 * mouth[:silent].max(), name


def test_sharpness_drops_when_the_face_is_blurred() -> None:
    frame = np.asarray(grid_frames("lrwp9a")[20])
    face = faces_in_image(frame)[0]
    sharp = face_sharpness(frame, face.bbox)
    soft = face_sharpness(cv2.GaussianBlur(frame, (0, 0), 2.0), face.bbox)
    assert sharp > 50
    assert soft < sharp / 4
    assert face_sharpness(frame, (10.0, 10.0, 10.5, 10.5)) == 0.0
    assert face_sharpness(frame, (-50.0, -50.0, 5000.0, 5000.0)) > 0
