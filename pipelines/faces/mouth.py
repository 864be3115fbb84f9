"""The inside of the mouth: teeth and cavity for a mouth that opens where the source's did not.

A warp can move lips, but when it opens a mouth that was closed in the source there is nothing
behind the lips to sample. The interior is then painted from the performer's own open mouth:
while the shot is first read, each track keeps the frame where its lips were widest apart
(frontal enough) as a small patch in *mouth coordinates* (:class:`MouthFrame`: origin between
the mouth corners, x along the eye line, unit = inter-ocular distance in the image), with its
inner-lip contour. At render time the upper teeth follow the upper lip and the lower teeth the
lower lip (each half of the exemplar is shifted to its lip, never squashed, since teeth do not
change size), the horizontal scale follows the mouth's width, and anything beyond the
exemplar's own opening is the exemplar's cavity colour. A per-channel gain matches the lips'
colour now to the lips' colour then, so a lighting change does not leave bright teeth in a dark
mouth. A track that never opens its mouth gets a shaded cavity with a band of upper and lower
teeth in the same coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import (
    LEFT_EYE_OUTER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    RIGHT_EYE_OUTER,
    Landmarks,
)
from pipelines.faces.warp import Roi

Points = NDArray[np.float64]

UPPER_OUTER: Final = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LOWER_OUTER: Final = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
UPPER_INNER: Final = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER: Final = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
INNER_RING: Final = UPPER_INNER + tuple(reversed(LOWER_INNER[1:-1]))
OUTER_RING: Final = UPPER_OUTER + tuple(reversed(LOWER_OUTER[1:-1]))

PATCH_SCALE: Final = 160.0
"""Patch pixels per inter-ocular distance."""
PATCH_U: Final = (-0.5, 0.5)
PATCH_V: Final = (-0.3, 0.6)
MIN_EXEMPLAR_GAP: Final = 0.06


@dataclass(frozen=True, slots=True)
class MouthFrame:
    """Mouth coordinates (u, v) ↔ image pixels (x, y)."""

    origin: NDArray[np.float64]
    x_axis: NDArray[np.float64]
    unit: float

    @classmethod
    def of(cls, points: Points | Landmarks, corners: tuple[int, int] = (MOUTH_RIGHT, MOUTH_LEFT),
           eyes: tuple[int, int] = (RIGHT_EYE_OUTER, LEFT_EYE_OUTER)) -> MouthFrame:
        p = np.asarray(points, dtype=np.float64)[:, :2]
        eye = p[eyes[1]] - p[eyes[0]]
        unit = float(np.linalg.norm(eye))
        if unit <= 0:
            raise ValueError("degenerate face: eye corners coincide")
        return cls((p[corners[0]] + p[corners[1]]) / 2.0, eye / unit, unit)

    @property
    def y_axis(self) -> NDArray[np.float64]:
        return np.array([-self.x_axis[1], self.x_axis[0]])

    def to_mouth(self, xy: Points) -> Points:
        d = (xy[..., :2] - self.origin) / self.unit
        return np.stack([d @ self.x_axis, d @ self.y_axis], axis=-1)

    def patch_to_image(self) -> NDArray[np.float64]:
        """2×3 affine from patch pixels to image pixels."""
        s = self.unit / PATCH_SCALE
        m = np.empty((2, 3))
        m[:, 0] = self.x_axis * s
        m[:, 1] = self.y_axis * s
        m[:, 2] = (self.origin + self.unit * (PATCH_U[0] * self.x_axis + PATCH_V[0] * self.y_axis))
        return m


def patch_size() -> tuple[int, int]:
    return (round((PATCH_U[1] - PATCH_U[0]) * PATCH_SCALE),
            round((PATCH_V[1] - PATCH_V[0]) * PATCH_SCALE))


def to_patch(uv: Points) -> NDArray[np.float32]:
    return ((uv - (PATCH_U[0], PATCH_V[0])) * PATCH_SCALE).astype(np.float32)


@dataclass(frozen=True, eq=False)
class MouthExemplar:
    """One open mouth of a performer in mouth coordinates."""

    patch: NDArray[np.uint8]        # H×W×3 RGB, see ``patch_size``
    upper: float                    # v of the inner upper lip midpoint (13)
    lower: float                    # v of the inner lower lip midpoint (14)
    half_width: float               # half the corner-to-corner distance
    lip_colour: NDArray[np.float64]
    cavity_colour: NDArray[np.float64]
    gap: float
    frame_index: int = -1
    synthetic: bool = False

    @classmethod
    def capture(cls, rgb: NDArray[np.uint8], mesh: Landmarks, frame_index: int) -> MouthExemplar:
        frame = MouthFrame.of(mesh)
        w, h = patch_size()
        patch = cv2.warpAffine(rgb, frame.patch_to_image(), (w, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        uv = frame.to_mouth(np.asarray(mesh, dtype=np.float64))
        inner = _polygon_mask(to_patch(uv[list(INNER_RING)]), (w, h))
        lips = cv2.subtract(_polygon_mask(to_patch(uv[list(OUTER_RING)]), (w, h)), inner)
        inside = patch[inner > 0]
        if len(inside):
            luma = inside.mean(axis=1)
            dark = inside[luma <= np.percentile(luma, 30)]
            cavity = dark.mean(axis=0)
        else:
            cavity = np.array([40.0, 15.0, 15.0])
        upper, lower = float(uv[LIPS_INNER_UPPER, 1]), float(uv[LIPS_INNER_LOWER, 1])
        return cls(np.ascontiguousarray(patch), upper, lower,
                   float(abs(uv[MOUTH_LEFT, 0] - uv[MOUTH_RIGHT, 0]) / 2.0),
                   _mean_colour(patch, lips), cavity.astype(np.float64), lower - upper,
                   frame_index)

    @classmethod
    def synthetic_for(cls, rgb: NDArray[np.uint8], mesh: Landmarks) -> MouthExemplar:
        """A shaded cavity with teeth bands, lit like this performer's lips."""
        frame = MouthFrame.of(mesh)
        w, h = patch_size()
        uv = frame.to_mouth(np.asarray(mesh, dtype=np.float64))
        patch = cv2.warpAffine(rgb, frame.patch_to_image(), (w, h),
                               flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)
        lips = _polygon_mask(to_patch(uv[list(OUTER_RING)]), (w, h))
        lip_colour = _mean_colour(patch, lips)
        half = float(abs(uv[MOUTH_LEFT, 0] - uv[MOUTH_RIGHT, 0]) / 2.0)
        upper = float(uv[LIPS_INNER_UPPER, 1])
        gap = 0.3
        cavity = lip_colour * 0.22
        light = min(float(lip_colour.mean()) / 140.0, 1.2)
        teeth = np.array([228.0, 222.0, 208.0]) * light
        u = (np.arange(w) + 0.5) / PATCH_SCALE + PATCH_U[0]
        v = (np.arange(h) + 0.5) / PATCH_SCALE + PATCH_V[0]
        uu, vv = np.meshgrid(u, v)
        across = 1.0 - np.clip(np.abs(uu) / max(half * 0.75, 1e-3), 0, 1) ** 3
        upper_band = np.clip(1.0 - (vv - upper) / 0.06, 0, 1) * (vv >= upper - 0.05)
        lower_band = np.clip(1.0 - (upper + gap - vv) / 0.035, 0, 1) * (vv <= upper + gap + 0.05)
        amount = np.clip(np.maximum(upper_band, 0.7 * lower_band) * across, 0, 1)[..., None]
        shade = (0.55 + 0.45 * across)[..., None]
        img = cavity * (1 - amount) + teeth * shade * amount
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.2)
        return cls(np.clip(img, 0, 255).astype(np.uint8), upper, upper + gap, half, lip_colour,
                   cavity, gap, -1, True)


def _polygon_mask(points: NDArray[np.float32], size: tuple[int, int]) -> NDArray[np.uint8]:
    mask = np.zeros((size[1], size[0]), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(points * 16).astype(np.int32)], 255, cv2.LINE_AA, shift=4)
    return mask


def _mean_colour(image: NDArray[Any], mask: NDArray[Any]) -> NDArray[np.float64]:
    if not np.any(mask > 127):
        return np.asarray(image.reshape(-1, 3).mean(axis=0), dtype=np.float64)
    return np.asarray(image[mask > 127].mean(axis=0), dtype=np.float64)


class ExemplarKeeper:
    """Keeps, per track, the widest-open frontal mouth seen so far (bounded memory)."""

    def __init__(self, min_gap: float = MIN_EXEMPLAR_GAP) -> None:
        self.min_gap = min_gap
        self.best: dict[int, MouthExemplar] = {}
        self._gaps: dict[int, float] = {}

    def offer(self, track_id: int, frame_index: int, rgb: NDArray[np.uint8], mesh: Landmarks,
              gap: float, frontal: bool) -> None:
        if not frontal or gap < self.min_gap or gap <= self._gaps.get(track_id, 0.0):
            return
        self._gaps[track_id] = gap
        self.best[track_id] = MouthExemplar.capture(rgb, mesh, frame_index)


def paint_interior(frame: NDArray[np.uint8], exemplar: MouthExemplar, target: Points,
                   roi: Roi) -> None:
    """Paint the mouth opening of ``target`` (a full mesh's image positions) into ``frame``.

    Only pixels inside the target's inner-lip polygon (and inside ``roi``) change; the
    polygon's anti-aliased edge is the feather.
    """
    outer_xy = target[list(OUTER_RING), :2]
    box = Roi.around(outer_xy, (frame.shape[1], frame.shape[0]), margin=2)
    box = Roi(max(box.x0, roi.x0), max(box.y0, roi.y0), min(box.x1, roi.x1), min(box.y1, roi.y1))
    if box.empty:
        return
    offset = np.array([box.x0, box.y0], dtype=np.float64)
    size = (box.width, box.height)
    inner = _polygon_mask((target[list(INNER_RING), :2] - offset).astype(np.float32), size)
    if not np.any(inner):
        return
    view = frame[box.y0:box.y1, box.x0:box.x1]
    lips = cv2.subtract(_polygon_mask((outer_xy - offset).astype(np.float32), size), inner)
    gain = np.clip(_mean_colour(view, lips) / np.maximum(exemplar.lip_colour, 1.0), 0.6, 1.6)

    mframe = MouthFrame.of(target)
    uv = mframe.to_mouth(target)
    w, h = patch_size()
    t_upper, t_lower = float(uv[LIPS_INNER_UPPER, 1]), float(uv[LIPS_INNER_LOWER, 1])
    half = float(abs(uv[MOUTH_LEFT, 0] - uv[MOUTH_RIGHT, 0]) / 2.0)
    sx = max(half / max(exemplar.half_width, 1e-3), 0.3)
    u = (np.arange(w, dtype=np.float32) + 0.5) / PATCH_SCALE + PATCH_U[0]
    v = (np.arange(h, dtype=np.float32) + 0.5) / PATCH_SCALE + PATCH_V[0]
    uu, vv = np.meshgrid(u / sx, v)
    # Upper teeth follow the upper lip, lower teeth the lower lip; past the exemplar's own
    # opening there is only cavity.
    upper_half = vv <= (t_upper + t_lower) / 2.0
    v_up = vv - (t_upper - exemplar.upper)
    v_low = vv - (t_lower - exemplar.lower)
    reach = exemplar.gap / 2.0
    src_v = np.where(upper_half, v_up, v_low)
    beyond = np.where(upper_half, v_up > exemplar.upper + reach, v_low < exemplar.lower - reach)
    map_x = ((uu - PATCH_U[0]) * PATCH_SCALE - 0.5).astype(np.float32)
    map_y = ((src_v - PATCH_V[0]) * PATCH_SCALE - 0.5).astype(np.float32)
    patch = cv2.remap(exemplar.patch, map_x, map_y, cv2.INTER_LINEAR,
                      borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
    patch[beyond] = exemplar.cavity_colour
    patch = np.clip(patch * gain.astype(np.float32), 0, 255).astype(np.uint8)
    m = mframe.patch_to_image()
    m[:, 2] -= offset
    warped = cv2.warpAffine(patch, m, size, flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    a = inner.astype(np.float32)[..., None] / 255.0
    view[:] = (view * (1.0 - a) + warped * a + 0.5).astype(np.uint8)
