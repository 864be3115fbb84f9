"""Face crops from our recorded mediapipe meshes, and the feathered paste-back.

LivePortrait crops with a detector's 2-D landmarks (insightface + its own 203-point model;
neither is used here). The reference rule (``src/utils/crop.py``: ``parse_rect_from_landmark``
and ``_estimate_similar_transform_from_pts``) needs only landmarks, so our tracker's meshes
stand in:

* The crop's *up* axis runs from the mouth's centre to the eyes' centre (the reference's
  ``use_lip`` two-point rule), so the crop is rolled with the head.
* Around the mean of the landmark set, the landmarks' extent in that rotated frame (made
  square: the larger side) times ``scale`` (2.3 for a source, 2.2 for a driver) is the crop's
  side, and the centre moves by ``vy_ratio × side`` along the down axis (−0.125 moves it up,
  showing the forehead).
* The landmark set is a 68-point-like subset of the mesh (jaw line from ear to ear, brows,
  eyes, nose, lips) so that the extent matches the reference's landmark layouts rather than
  mediapipe's, which reaches over the forehead.

Crop parameters (centre, side, angle) are smoothed over time without lag (Gaussian, per run of
consecutive frames) so that the crop does not jitter with landmark noise. Paste-back uses a
soft mask defined in the crop (1 over the face, fading to 0 well inside the crop's border, the
role of the reference's ``mask_template.png``), warped with the crop into the frame: pixels
outside the crop are never touched.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray
from scipy.ndimage import gaussian_filter1d  # type: ignore[import-untyped]

from pipelines.faces.warp import Roi

__all__ = ["CROP_POINTS", "CropParams", "crop_params", "paste_back", "paste_mask",
           "smooth_crops"]

JAW: Final = (234, 93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379, 365,
              397, 288, 361, 323, 454)
BROWS: Final = (70, 63, 105, 66, 107, 336, 296, 334, 293, 300)
EYES: Final = (33, 160, 158, 133, 153, 144, 362, 385, 387, 263, 373, 380)
NOSE: Final = (168, 6, 197, 195, 5, 4, 98, 97, 2, 326, 327)
LIPS: Final = (61, 39, 37, 0, 267, 269, 291, 405, 314, 17, 84, 181, 78, 13, 308, 14)
CROP_POINTS: Final = JAW + BROWS + EYES + NOSE + LIPS
RIGHT_EYE: Final = (33, 133)
LEFT_EYE: Final = (362, 263)
MOUTH: Final = (61, 291, 13, 14)


@dataclass(frozen=True)
class CropParams:
    """A square crop: centre (x, y) in frame pixels, side in pixels, rotation in radians."""

    cx: float
    cy: float
    size: float
    angle: float

    def to_crop(self, dsize: int) -> NDArray[np.float64]:
        """2×3 affine matrix from frame pixels to a ``dsize``² crop (reference ``M_INV``)."""
        s = dsize / self.size
        c, n = np.cos(self.angle), np.sin(self.angle)
        t = dsize / 2.0
        return np.array([[s * c, s * n, t - s * (c * self.cx + n * self.cy)],
                         [-s * n, s * c, t - s * (-n * self.cx + c * self.cy)]])

    def to_frame(self, dsize: int) -> NDArray[np.float64]:
        """2×3 affine matrix from a ``dsize``² crop back to frame pixels (reference ``M_c2o``)."""
        m = np.vstack([self.to_crop(dsize), [0.0, 0.0, 1.0]])
        return np.linalg.inv(m)[:2]

    def corners(self, inset: float = 0.0) -> NDArray[np.float64]:
        """Frame positions of the crop square's corners, ``inset`` (fraction of the side) in."""
        m = self.to_frame(1)
        unit = np.array([[inset, inset], [1 - inset, inset], [1 - inset, 1 - inset],
                         [inset, 1 - inset]])
        out: NDArray[np.float64] = unit @ m[:, :2].T + m[:, 2]
        return out

    def as_array(self) -> NDArray[np.float64]:
        return np.array([self.cx, self.cy, self.size, self.angle])


def crop_params(mesh: NDArray[np.float32] | NDArray[np.float64], *, scale: float,
                vy_ratio: float) -> CropParams:
    """The reference crop rule on a mediapipe mesh (``[478 or 468, ≥2]`` pixels)."""
    pts = np.asarray(mesh, dtype=np.float64)[:, :2]
    eyes = pts[list(RIGHT_EYE + LEFT_EYE)].mean(axis=0)
    mouth = pts[list(MOUTH)].mean(axis=0)
    uy = mouth - eyes
    length = float(np.hypot(*uy))
    uy = uy / length if length > 1e-3 else np.array([0.0, 1.0])
    ux = np.array([uy[1], -uy[0]])
    angle = float(np.arctan2(ux[1], ux[0]))
    sub = pts[list(CROP_POINTS)]
    centre0 = sub.mean(axis=0)
    rotated = (sub - centre0) @ np.stack([ux, uy]).T
    lo, hi = rotated.min(axis=0), rotated.max(axis=0)
    mid = (lo + hi) / 2.0
    size = float(max(hi - lo)) * scale
    centre = centre0 + ux * mid[0] + uy * mid[1] + uy * (vy_ratio * size)
    return CropParams(float(centre[0]), float(centre[1]), size, angle)


def smooth_crops(params: list[CropParams], frames: NDArray[np.int32] | NDArray[np.int64],
                 sigma: float) -> list[CropParams]:
    """Zero-phase Gaussian smoothing of centre, side and angle within runs of consecutive
    frames (a gap in the track starts a new run)."""
    if sigma <= 0 or len(params) < 2:
        return list(params)
    values = np.stack([p.as_array() for p in params])
    values[:, 3] = np.unwrap(values[:, 3])
    index = np.asarray(frames)
    edges = [0, *(np.nonzero(np.diff(index) != 1)[0] + 1).tolist(), len(index)]
    out = values.copy()
    for a, b in itertools.pairwise(edges):
        if b - a > 1:
            out[a:b] = gaussian_filter1d(values[a:b], sigma, axis=0, mode="nearest")
    return [CropParams(*map(float, row)) for row in out]


def crop_image(rgb: NDArray[np.uint8], params: CropParams, dsize: int) -> NDArray[np.uint8]:
    """The ``dsize``² crop (bilinear; black beyond the frame, as the reference pads)."""
    out = cv2.warpAffine(rgb, params.to_crop(dsize), (dsize, dsize), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
    return np.asarray(out, dtype=np.uint8)


def paste_mask(dsize: int, *, inner: float = 0.36, outer: float = 0.47) -> NDArray[np.float32]:
    """Soft mask in crop coordinates: 1 within ``inner``·side of the centre (slightly below the
    crop's centre, where the face is), 0 beyond ``outer``·side, smoothstep between; always 0 on
    the crop's border."""
    yy, xx = np.mgrid[0:dsize, 0:dsize].astype(np.float64) + 0.5
    r = np.hypot(xx - dsize / 2.0, (yy - dsize * 0.53) * 0.95) / dsize
    t = np.clip((outer - r) / (outer - inner), 0.0, 1.0)
    mask = (t * t * (3.0 - 2.0 * t)).astype(np.float32)
    mask[[0, -1], :] = 0.0
    mask[:, [0, -1]] = 0.0
    out: NDArray[np.float32] = mask
    return out


def paste_region(params: CropParams, frame_size: tuple[int, int], outer: float = 0.47) -> Roi:
    """Frame rectangle holding every pixel :func:`paste_back` may change."""
    inset = max(0.0, 0.5 - outer - 0.02)
    return Roi.around(params.corners(inset), frame_size, margin=2)


def paste_back(rgb: NDArray[np.uint8], patch: NDArray[np.uint8], params: CropParams,
               mask: NDArray[np.float32], roi: Roi) -> None:
    """Blend ``patch`` (a crop of side ``mask``'s) into ``rgb`` in place, inside ``roi`` only."""
    if roi.empty:
        return
    dsize = patch.shape[0]
    m = params.to_frame(dsize).copy()
    m[:, 2] -= (roi.x0, roi.y0)
    size = (roi.width, roi.height)
    warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_CONSTANT)
    alpha = cv2.warpAffine(mask, m, size, flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT)
    view = rgb[roi.y0:roi.y1, roi.x0:roi.x1]
    a = np.clip(alpha, 0.0, 1.0)[..., None]
    blended = (view * (1.0 - a) + warped * a + 0.5).astype(np.uint8)
    np.copyto(view, blended, where=a > 0)
