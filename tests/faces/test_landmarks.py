"""Face mesh detection on real pictures: counts, shapes, boxes, and inputs without faces."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pipelines.faces import FaceMeshDetector, faces_in_image
from pipelines.faces import landmarks as lm
from tests.faces.conftest import astronaut, grid_frames


def test_astronaut_has_exactly_one_face_with_478_pixel_landmarks() -> None:
    faces = faces_in_image(astronaut())
    assert len(faces) == 1
    face = faces[0]
    assert face.landmarks.shape == (478, 3)
    assert face.landmarks.dtype == np.float32
    assert face.image_size == (512, 512)
    assert 0.5 <= face.score <= 1.0
    # The face of the portrait sits at x ≈ 180–270, y ≈ 70–180 (the picture is 512×512).
    x0, y0, x1, y1 = face.bbox
    assert 160 < x0 < 200 and 250 < x1 < 290, face.bbox
    assert 50 < y0 < 100 and 160 < y1 < 200, face.bbox
    pts = face.landmarks
    # Pixel units: every point near the box (z is depth, also in pixels, smaller than the box).
    assert np.all(pts[:, 0] > x0 - 1) and np.all(pts[:, 0] < x1 + 1)
    assert np.abs(pts[:, 2]).max() < face.width
    # Anatomy by index: subject's right eye on the image's left, eyes above nose above mouth
    # above chin, irises between their eye corners.
    assert pts[lm.RIGHT_EYE_OUTER, 0] < pts[lm.RIGHT_EYE_INNER, 0] < pts[lm.NOSE_TIP, 0]
    assert pts[lm.NOSE_TIP, 0] < pts[lm.LEFT_EYE_INNER, 0] < pts[lm.LEFT_EYE_OUTER, 0]
    eye_y = pts[[lm.RIGHT_EYE_OUTER, lm.LEFT_EYE_OUTER], 1].mean()
    assert eye_y < pts[lm.NOSE_TIP, 1] < pts[lm.LIPS_INNER_UPPER, 1]
    assert pts[lm.LIPS_OUTER_UPPER, 1] < pts[lm.LIPS_INNER_LOWER, 1] < pts[lm.LIPS_OUTER_LOWER, 1]
    assert pts[lm.LIPS_OUTER_LOWER, 1] < pts[lm.CHIN, 1]
    assert pts[lm.FOREHEAD, 1] < eye_y
    assert pts[lm.RIGHT_EYE_OUTER, 0] < pts[lm.RIGHT_IRIS, 0] < pts[lm.RIGHT_EYE_INNER, 0]
    assert pts[lm.LEFT_EYE_INNER, 0] < pts[lm.LEFT_IRIS, 0] < pts[lm.LEFT_EYE_OUTER, 0]


def test_score_is_the_detector_confidence_and_its_threshold_applies() -> None:
    (face,) = faces_in_image(astronaut())
    with FaceMeshDetector(static=True, min_detection_confidence=min(face.score + 0.02, 1.0)) as d:
        assert d.detect(astronaut()) == []
    with FaceMeshDetector(static=True, min_detection_confidence=face.score - 0.02) as d:
        (again,) = d.detect(astronaut())
    assert again.score == pytest.approx(face.score, abs=1e-6)


def test_mirrored_astronaut_mirrors_the_box() -> None:
    face = faces_in_image(astronaut())[0]
    mirrored = faces_in_image(np.ascontiguousarray(astronaut()[:, ::-1]))[0]
    assert mirrored.bbox[0] == pytest.approx(512 - face.bbox[2], abs=6)
    assert mirrored.bbox[2] == pytest.approx(512 - face.bbox[0], abs=6)


@pytest.mark.parametrize("static", [True, False])
@pytest.mark.parametrize("kind", ["blank", "noise", "grey-card"])
def test_no_face_gives_no_observation(kind: str, static: bool) -> None:
    rng = np.random.default_rng(7)
    image = {
        "blank": np.zeros((288, 360, 3), np.uint8),
        "noise": rng.integers(0, 256, (288, 360, 3), dtype=np.uint8),
        "grey-card": np.full((720, 1280, 3), 128, np.uint8),
    }[kind]
    with FaceMeshDetector(static=static) as detector:
        for _ in range(3):
            assert detector.detect(image) == []


@pytest.mark.parametrize("size", [(64, 51), (32, 26), (1, 1), (3, 2)])
def test_tiny_images_do_not_crash(size: tuple[int, int]) -> None:
    tiny = cv2.resize(np.asarray(grid_frames("bbaf2n")[30]), size, interpolation=cv2.INTER_AREA)
    faces = faces_in_image(tiny)
    assert len(faces) <= 1
    for face in faces:
        assert face.landmarks.shape == (478, 3)
        assert 0 <= face.bbox[0] < face.bbox[2] <= size[0]
        assert 0 <= face.bbox[1] < face.bbox[3] <= size[1]


def test_tracking_mode_follows_a_grid_clip_and_reset_forgets() -> None:
    frames = grid_frames("lbbc2a")
    with FaceMeshDetector(static=False, max_faces=2) as detector:
        counts = [len(detector.detect(f)) for f in frames[:20]]
        detector.reset()
        after_reset = detector.detect(frames[20])
    assert counts == [1] * 20
    assert len(after_reset) == 1


def test_two_faces_side_by_side_are_ordered_left_to_right() -> None:
    left, right = grid_frames("bbaf2n")[10], grid_frames("lbax4n")[10]
    faces = faces_in_image(np.hstack([left, right]))
    assert len(faces) == 2
    assert faces[0].bbox[2] <= 360 < faces[1].bbox[0]


def test_max_faces_limits_the_count() -> None:
    pair = np.hstack([grid_frames("bbaf2n")[10], grid_frames("lbax4n")[10]])
    assert len(faces_in_image(pair, max_faces=1)) == 1


@pytest.mark.parametrize(
    ("image", "error"),
    [
        (np.zeros((10, 10, 3), np.float32), ValueError),
        (np.zeros((10, 10), np.uint8), ValueError),
        (np.zeros((10, 10, 4), np.uint8), ValueError),
        (np.zeros((0, 10, 3), np.uint8), ValueError),
        ([[0, 0, 0]], TypeError),
    ],
)
def test_wrong_inputs_are_refused_with_a_message(image: object, error: type[Exception]) -> None:
    with FaceMeshDetector(static=True) as detector, pytest.raises(error):
        detector.detect(image)  # type: ignore[arg-type]


def test_non_contiguous_input_is_accepted() -> None:
    view = np.asarray(grid_frames("bbaf2n")[5])[:, ::1][::1, :, :]
    strided = np.zeros((288, 720, 3), np.uint8)
    strided[:, ::2] = view
    faces = faces_in_image(strided[:, ::2])
    assert len(faces) == 1
