"""Measurements on the 478-point mesh: eye distance, mouth and eye opening, head pose, sharpness.

These feed the lip-sync and reenactment quality metrics (docs/QUALITY.md) and the choice of
good frames for identity templates (frontal enough, sharp enough). All distances are taken in
3-D pixel units (x, y and mediapipe's z scaled by the frame width): a ratio of two 3-D lengths
changes much less when the head turns than the same ratio measured in the image plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import (
    FOREHEAD,
    LEFT_EYE_INNER,
    LEFT_EYE_LIDS,
    LEFT_EYE_OUTER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    NOSE_BOTTOM,
    NOSE_TIP,
    RIGHT_EYE_INNER,
    RIGHT_EYE_LIDS,
    RIGHT_EYE_OUTER,
    BBox,
    FaceObservation,
    ImageArray,
    Landmarks,
    ensure_rgb,
)

# A few rigid points of mediapipe's canonical face model
# (mediapipe/modules/face_geometry/data/canonical_face_model.obj, Apache-2.0; units ≈ cm,
# x toward the image's right for a face looking at the camera, y up, z toward the camera).
# That file is not in the 0.10.14 wheel, so the coordinates are copied here. The jaw (chin,
# mouth corners) is left out on purpose: it moves with speech and would bias the pitch.
CANONICAL_POINTS: Final[dict[int, tuple[float, float, float]]] = {
    RIGHT_EYE_OUTER: (-4.445859, 2.663991, 3.173422),
    RIGHT_EYE_INNER: (-1.856432, 2.585245, 3.757904),
    LEFT_EYE_INNER: (1.856432, 2.585245, 3.757904),
    LEFT_EYE_OUTER: (4.445859, 2.663991, 3.173422),
    NOSE_TIP: (0.0, -1.126865, 7.475604),
    NOSE_BOTTOM: (0.0, -2.089024, 6.058267),
    FOREHEAD: (0.0, 8.261778, 4.481535),
}
_POSE_INDICES: Final = list(CANONICAL_POINTS)
# OpenCV's camera frame has y down and z away from the camera: flip y and z so that a face
# looking straight into the lens has the identity rotation.
_MODEL_CV: Final = np.array(
    [(x, -y, -z) for x, y, z in CANONICAL_POINTS.values()], dtype=np.float64
)


def _pt(landmarks: Landmarks, index: int) -> NDArray[np.float64]:
    return np.asarray(landmarks[index], dtype=np.float64)


def _dist(landmarks: Landmarks, a: int, b: int) -> float:
    return float(np.linalg.norm(_pt(landmarks, a) - _pt(landmarks, b)))


def _check(landmarks: Landmarks) -> None:
    if landmarks.ndim != 2 or landmarks.shape[0] < 468 or landmarks.shape[1] != 3:
        raise ValueError(f"expected a (478, 3) mesh, got shape {landmarks.shape}")


def inter_ocular_distance(landmarks: Landmarks) -> float:
    """Distance between the outer eye corners (33–263), the usual face-size normaliser.

    Outer corners rather than pupils: they do not move with gaze and exist without the iris
    refinement.
    """
    _check(landmarks)
    return _dist(landmarks, RIGHT_EYE_OUTER, LEFT_EYE_OUTER)


def mouth_opening(landmarks: Landmarks) -> float:
    """Inner-lip gap (13–14) divided by the inter-ocular distance (docs/QUALITY.md).

    About 0 with closed lips, 0.1–0.3 in speech; scale-free, so comparable across shots.
    """
    iod = inter_ocular_distance(landmarks)
    return _dist(landmarks, LIPS_INNER_UPPER, LIPS_INNER_LOWER) / iod if iod > 0 else 0.0


@dataclass(frozen=True, slots=True)
class EyeOpening:
    """Eye aspect ratios (mean lid gap over eye width): ≈0.25–0.35 open, <0.1 closed."""

    right: float
    left: float

    @property
    def mean(self) -> float:
        return (self.right + self.left) / 2.0


def _ear(landmarks: Landmarks, outer: int, inner: int, lids: tuple[tuple[int, int], ...]) -> float:
    width = _dist(landmarks, outer, inner)
    if width <= 0:
        return 0.0
    return sum(_dist(landmarks, a, b) for a, b in lids) / (len(lids) * width)


def eye_opening(landmarks: Landmarks) -> EyeOpening:
    """Per-eye aspect ratio (Soukupová & Čech's EAR on the mesh's lid points).

    Normalised by the eye's own width rather than the inter-ocular distance so that a blink
    reads the same for narrow and wide eyes.
    """
    _check(landmarks)
    return EyeOpening(
        right=_ear(landmarks, RIGHT_EYE_OUTER, RIGHT_EYE_INNER, RIGHT_EYE_LIDS),
        left=_ear(landmarks, LEFT_EYE_OUTER, LEFT_EYE_INNER, LEFT_EYE_LIDS),
    )


@dataclass(frozen=True, slots=True)
class HeadPose:
    """Head rotation in degrees relative to looking straight into the camera.

    yaw > 0: the nose points toward the image's right; pitch > 0: the nose points up;
    roll > 0: the face turns clockwise as the viewer sees it (the image-right eye lower).
    """

    yaw: float
    pitch: float
    roll: float


def head_pose(landmarks: Landmarks, image_size: tuple[int, int]) -> HeadPose:
    """Head pose from seven rigid mesh points and ``cv2.solvePnP`` (SQPnP).

    The camera is a pinhole with focal length max(width, height) pixels (a ~53° field of
    view). The principal point is put at the face itself, not at the frame centre: the angles
    are then relative to the line of sight from the camera to the face, which is what
    "frontal" means for an identity template, and they stay right for a face near the edge
    of a wide shot or in a crop of a larger picture (whose true centre is unknown). With the
    frame centre instead, a face looking into the lens from the top of a portrait reads as
    pitched by the angle at which the camera sees it (≈15° on the astronaut).
    """
    _check(landmarks)
    w, h = image_size
    if w <= 0 or h <= 0:
        raise ValueError(f"image_size must be positive, got {image_size}")
    focal = float(max(w, h))
    image_pts = landmarks[_POSE_INDICES, :2].astype(np.float64)
    cx, cy = image_pts.mean(axis=0)
    camera = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], dtype=np.float64)
    ok, rvec, _tvec = cv2.solvePnP(
        _MODEL_CV, image_pts, camera, np.zeros(4), flags=cv2.SOLVEPNP_SQPNP
    )
    if not ok:  # pragma: no cover - SQPnP succeeds for non-degenerate points
        raise ValueError("head pose could not be solved")
    rot, _ = cv2.Rodrigues(rvec)
    # R = Rz(roll)·Ry(yaw)·Rx(pitch) in OpenCV's frame; signs flipped to the documented ones.
    yaw = math.degrees(math.asin(float(np.clip(rot[2, 0], -1.0, 1.0))))
    pitch = -math.degrees(math.atan2(float(rot[2, 1]), float(rot[2, 2])))
    roll = math.degrees(math.atan2(float(rot[1, 0]), float(rot[0, 0])))
    return HeadPose(yaw=yaw, pitch=pitch, roll=roll)


def observation_pose(observation: FaceObservation) -> HeadPose:
    """:func:`head_pose` of an observation, with its own frame size."""
    return head_pose(observation.landmarks, observation.image_size)


def is_frontal(pose: HeadPose, *, max_yaw: float = 25.0, max_pitch: float = 20.0) -> bool:
    """Frontal enough for an identity template: |yaw| ≤ max_yaw and |pitch| ≤ max_pitch.

    Roll is not limited: the embedders align the eyes before they look at the face.
    """
    return abs(pose.yaw) <= max_yaw and abs(pose.pitch) <= max_pitch


def face_sharpness(rgb: ImageArray, bbox: BBox, *, size: int = 128) -> float:
    """Variance of the Laplacian of the grey face crop, resampled to ``size``×``size``.

    Resampling first makes the number comparable across faces of different sizes: a large
    face is judged at the detail an embedder sees, and a small face upscaled reads as blurred,
    which it is for identity purposes. Returns 0.0 for an empty crop.
    """
    image = ensure_rgb(rgb)
    h, w = image.shape[:2]
    x0, y0 = max(0, math.floor(bbox[0])), max(0, math.floor(bbox[1]))
    x1, y1 = min(w, math.ceil(bbox[2])), min(h, math.ceil(bbox[3]))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return 0.0
    grey = cv2.cvtColor(image[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY)
    interp = cv2.INTER_AREA if (x1 - x0) > size else cv2.INTER_LINEAR
    grey = cv2.resize(grey, (size, size), interpolation=interp)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def smoothed_points(meshes: NDArray[np.float32], row: int, run: tuple[int, int], sigma: float,
                    points: list[int] | NDArray[np.int64] | slice) -> NDArray[np.float64]:
    """``points`` of the mesh at ``row`` of a track's ``meshes``, smoothed without lag: a
    Gaussian of ``sigma`` rows around it, only rows of its ``run`` (first row, end row) taken
    (a gap in the track ends a run). One slice and one contraction: a Python sum over per-row
    copies cost ~2.6 ms a 720p lip-sync frame."""
    reach = int(np.ceil(2.5 * sigma))
    first, end = max(run[0], row - reach), min(run[1], row + reach + 1)
    weights = np.exp(-0.5 * ((np.arange(first, end) - row) / sigma) ** 2)
    window = np.asarray(meshes[first:end][:, points], dtype=np.float64)
    out: NDArray[np.float64] = np.einsum("r,rpk->pk", weights / weights.sum(), window)
    return out
