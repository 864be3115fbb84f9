"""Mesh warping shared by lip-sync and reenactment: a rigid face frame and a piecewise-affine warp.

Two pieces of geometry every embedded face edit needs:

* :class:`Similarity` — the head's pose as a 3-D similarity (scale, rotation, translation) from
  a *canonical* face frame to the frame's pixels, fitted by Umeyama's least squares on points
  that do not move with speech (eye corners, nose, forehead). An edit is designed in canonical
  units (inter-ocular distance = 1, x toward the image's right, y down) and carried onto each
  frame by its pose, so head motion is kept from the source.
* :class:`PiecewiseAffineWarp` — a fixed triangulation whose vertices move from *source* to
  *target* positions; every target pixel samples the source at the position the affine map of
  its triangle gives. The map is evaluated on a coarse grid (every ``step`` pixels) and
  bilinearly upsampled: a piecewise-affine map is continuous, so this differs from the exact
  map only next to triangle edges, by far less than a pixel, at a sixteenth of the cost.
  Pixels covered by no triangle are left where they are (identity).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import (
    FOREHEAD,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    NOSE_BOTTOM,
    NOSE_TIP,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
    Landmarks,
)

Points = NDArray[np.float64]

STABLE_POINTS: Final = (
    RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER,
    168, 6, 197, 195, 5, 4, NOSE_TIP, NOSE_BOTTOM, FOREHEAD, 151, 9, 8,
)
"""Mesh points that speech does not move: eye corners, the nose ridge and tip, the forehead
midline (mediapipe numbering; 168/6/197/195/5/4 run down the nose ridge, 151/9/8 up the
forehead). Brows and lids are left out: they move with expression and blinks."""


@dataclass(frozen=True, slots=True)
class Similarity:
    """``x ↦ scale · R x + t`` from canonical 3-D coordinates to frame pixels (x, y, depth)."""

    scale: float
    rotation: NDArray[np.float64]
    translation: NDArray[np.float64]

    def apply(self, points: Points) -> Points:
        out: Points = self.scale * (points @ self.rotation.T) + self.translation
        return out

    def invert(self, points: Points) -> Points:
        out: Points = ((points - self.translation) @ self.rotation) / self.scale
        return out

    def affine_2d(self) -> NDArray[np.float64]:
        """2×3 matrix of the image-plane part (canonical x, y → pixel x, y), z taken as 0."""
        m = np.empty((2, 3))
        m[:, :2] = self.scale * self.rotation[:2, :2]
        m[:, 2] = self.translation[:2]
        return m


def canonical_axes(mesh: Landmarks | Points) -> Similarity:
    """The similarity from canonical units to ``mesh``'s pixels defined by the mesh itself."""
    p = np.asarray(mesh, dtype=np.float64)
    x = p[LEFT_EYE_OUTER] - p[RIGHT_EYE_OUTER]
    scale = float(np.linalg.norm(x))
    if scale <= 0:
        raise ValueError("degenerate mesh: eye corners coincide")
    x /= scale
    down = p[NOSE_BOTTOM] - p[168]
    y = down - (down @ x) * x
    y /= np.linalg.norm(y)
    z = np.cross(x, y)
    rotation = np.stack([x, y, z], axis=1)
    return Similarity(scale, rotation, p[168].copy())


def fit_similarity(canonical: Points, observed: Points) -> Similarity:
    """Least-squares similarity mapping ``canonical`` onto ``observed`` (Umeyama, 1991)."""
    if canonical.shape != observed.shape or canonical.ndim != 2 or canonical.shape[0] < 3:
        raise ValueError("need two matching arrays of at least three points")
    mu_c, mu_o = canonical.mean(axis=0), observed.mean(axis=0)
    c, o = canonical - mu_c, observed - mu_o
    var_c = float((c**2).sum()) / len(c)
    if var_c <= 0:
        raise ValueError("canonical points are degenerate")
    u, sigma, vt = np.linalg.svd(o.T @ c / len(c))
    d = np.ones(canonical.shape[1])
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[-1] = -1.0  # a reflection is never a head pose
    rotation = u @ np.diag(d) @ vt
    scale = float((sigma * d).sum()) / var_c
    return Similarity(scale, rotation, mu_o - scale * rotation @ mu_c)


def smoothstep(x: NDArray[np.float64] | float) -> NDArray[np.float64]:
    t = np.clip(x, 0.0, 1.0)
    out: NDArray[np.float64] = t * t * (3.0 - 2.0 * t)
    return out


@dataclass(frozen=True, slots=True)
class Roi:
    """A pixel rectangle ``[x0, x1) × [y0, y1)`` inside a frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    @classmethod
    def around(cls, points: Points, frame_size: tuple[int, int], margin: int = 2) -> Roi:
        """Bounding box of ``points`` (x, y) grown by ``margin`` and clipped to (width, height)."""
        w, h = frame_size
        lo = np.floor(points[:, :2].min(axis=0)) - margin
        hi = np.ceil(points[:, :2].max(axis=0)) + margin + 1
        return cls(int(max(lo[0], 0)), int(max(lo[1], 0)), int(min(hi[0], w)), int(min(hi[1], h)))


class PiecewiseAffineWarp:
    """Backward warp over a fixed triangulation (``triangles``: ``[k, 3]`` vertex indices)."""

    def __init__(self, triangles: NDArray[np.int32], *, step: int = 4) -> None:
        if triangles.ndim != 2 or triangles.shape[1] != 3:
            raise ValueError("triangles must be [k, 3] vertex indices")
        if step < 1:
            raise ValueError("step must be ≥ 1")
        self.triangles = np.ascontiguousarray(triangles, dtype=np.int32)
        self.step = step

    def maps(self, source: Points, target: Points, roi: Roi, *, exact: Roi | None = None
             ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.uint8]]:
        """``(map_x, map_y, covered)`` over ``roi`` for :func:`cv2.remap` of the whole frame.

        ``source``/``target`` are ``[n, 2+]`` vertex positions in frame pixels. ``covered`` is
        255 inside the target mesh's outline (elsewhere the maps are the identity). ``exact``:
        a sub-rectangle evaluated at every pixel rather than on the coarse grid — where the
        map is discontinuous (a mouth closing over an open source: the collapsed opening
        separates lips that sampled far apart), interpolating between grid nodes would sample
        whatever lies between them in the source.
        """
        tri_dst = target[self.triangles, :2]  # [k, 3, 2]
        tri_src = source[self.triangles, :2]
        # dst → src affine per triangle: [u v 1] → src, solved from the three corners.
        dst_h = np.concatenate([tri_dst, np.ones((len(self.triangles), 3, 1))], axis=2)
        ok = np.abs(np.linalg.det(dst_h)) > 1e-6
        affines = np.zeros((len(self.triangles), 3, 2))
        affines[ok] = np.linalg.solve(dst_h[ok], tri_src[ok])
        step = self.step
        map_x, map_y = self._nodes(tri_dst, affines, ok, roi, step)
        h, w = roi.height, roi.width
        size = (map_x.shape[1] * step, map_x.shape[0] * step)
        fx = cv2.resize(map_x, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
        fy = cv2.resize(map_y, size, interpolation=cv2.INTER_LINEAR)[:h, :w]
        if exact is not None and step > 1:
            sub = Roi(max(exact.x0, roi.x0), max(exact.y0, roi.y0),
                      min(exact.x1, roi.x1), min(exact.y1, roi.y1))
            if not sub.empty:
                ex, ey = self._nodes(tri_dst, affines, ok, sub, 1)
                ys, xs = slice(sub.y0 - roi.y0, sub.y1 - roi.y0), slice(sub.x0 - roi.x0,
                                                                        sub.x1 - roi.x0)
                fx[ys, xs] = ex[: sub.height, : sub.width]
                fy[ys, xs] = ey[: sub.height, : sub.width]
        covered = np.zeros((h, w), dtype=np.uint8)
        outline = cv2.convexHull(np.round((target[:, :2] - (roi.x0, roi.y0)) * 16)
                                 .astype(np.int32))
        cv2.fillConvexPoly(covered, outline, 255, lineType=cv2.LINE_8, shift=4)
        return np.ascontiguousarray(fx), np.ascontiguousarray(fy), covered

    def _nodes(self, tri_dst: NDArray[np.float64], affines: NDArray[np.float64],
               ok: NDArray[np.bool_], roi: Roi, step: int
               ) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
        """The map at grid nodes ``roi.x0 + (i + ½)·step − ½`` (cv2.resize's pixel-centre
        convention, so that a bilinear resize of node values interpolates them exactly)."""
        gw, gh = -(-roi.width // step) + 1, -(-roi.height // step) + 1
        gx = roi.x0 + (np.arange(gw, dtype=np.float64) + 0.5) * step - 0.5
        gy = roi.y0 + (np.arange(gh, dtype=np.float64) + 0.5) * step - 0.5
        ids = triangle_ids((tri_dst - (gx[0], gy[0])) / step, ok, (gw, gh))
        xx, yy = np.meshgrid(gx, gy)
        map_x, map_y = xx.copy(), yy.copy()
        inside = ids > 0
        a = affines[ids[inside] - 1]  # [m, 3, 2]
        u, v = xx[inside], yy[inside]
        map_x[inside] = u * a[:, 0, 0] + v * a[:, 1, 0] + a[:, 2, 0]
        map_y[inside] = u * a[:, 0, 1] + v * a[:, 1, 1] + a[:, 2, 1]
        return map_x.astype(np.float32), map_y.astype(np.float32)


def triangle_ids(corners: NDArray[np.float64], ok: NDArray[np.bool_], size: tuple[int, int]
                 ) -> NDArray[np.int32]:
    """Which triangle holds each node of a ``size`` (width, height) grid: ``corners``
    ``[k, 3, 2]`` in grid units (node (i, j) at x = i, y = j), ``ok`` the triangles to use;
    0 where none does, else 1 + the triangle's index (the highest where several do: a shared
    edge, a fold).

    Exact point-in-triangle tests over each triangle's bounding box, all at once. (Filling
    each triangle with ``cv2.fillConvexPoly`` took one call per triangle, ~1,450 per lip-sync
    frame, and its 8-connected edges reached up to a node beyond the triangle: a node beside
    a sliver, the opening of a closing mouth, took the sliver's affine map extrapolated, and
    sampled up to 1,000 px away, in 16 of 226 warps of a GRID render.)"""
    width, height = size
    index = np.nonzero(ok)[0]
    c = corners[index]
    lo = np.maximum(np.ceil(c.min(axis=1)).astype(np.int64), 0)
    hi = np.minimum(np.floor(c.max(axis=1)).astype(np.int64), np.array([width - 1, height - 1]))
    nx, ny = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    count = np.where((nx > 0) & (ny > 0), nx * ny, 0)
    a, b, d = c[:, 0], c[:, 1], c[:, 2]
    turn = np.sign((b[:, 0] - a[:, 0]) * (d[:, 1] - a[:, 1])
                   - (b[:, 1] - a[:, 1]) * (d[:, 0] - a[:, 0]))
    # Each edge p → q as A·dx + B·dy + C, over a node's offset (dx, dy) from its triangle's
    # box corner, signed by the triangle's orientation: ≥ 0 on all three edges inside.
    edges = []
    for p, q in ((a, b), (b, d), (d, a)):
        ea, eb = -turn * (q[:, 1] - p[:, 1]), turn * (q[:, 0] - p[:, 0])
        edges.append((ea, eb, -(ea * (p[:, 0] - lo[:, 0]) + eb * (p[:, 1] - lo[:, 1]))))
    # Every (triangle, node of its box) pair, triangles in ascending order.
    tri = np.repeat(np.arange(len(index)), count)
    local = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    dx, dy = np.divmod(local, nx[tri])[::-1]
    inside = np.ones(len(tri), dtype=bool)
    for ea, eb, ec in edges:
        inside &= ea[tri] * dx + eb[tri] * dy + ec[tri] >= 0
    t = tri[inside]
    ids = np.zeros(height * width, dtype=np.int32)
    # Pairs in ascending triangle order: where several hold a node, the last written wins.
    ids[(lo[t, 1] + dy[inside]) * width + lo[t, 0] + dx[inside]] = \
        (index[t] + 1).astype(np.int32)
    return ids.reshape(height, width)


def feather(mask: NDArray[np.uint8], radius: int) -> NDArray[np.float32]:
    """A 0..1 alpha from a 0/255 mask, eroded by ``radius`` and blurred by about as much, so
    that the soft edge lies inside the mask (nothing outside it changes)."""
    if radius <= 0:
        return mask.astype(np.float32) / 255.0
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    inner = cv2.erode(mask, kernel)
    blurred = cv2.GaussianBlur(inner.astype(np.float32) / 255.0, (0, 0), radius / 2.0)
    out: NDArray[np.float32] = np.minimum(blurred, mask.astype(np.float32) / 255.0)
    return out
