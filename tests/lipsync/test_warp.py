"""Geometry shared by the face edits: the pose fit and the piecewise-affine warp."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy.spatial import Delaunay  # type: ignore[import-untyped]
from scipy.spatial.transform import Rotation  # type: ignore[import-untyped]

from pipelines.faces.warp import (
    PiecewiseAffineWarp,
    Roi,
    feather,
    fit_similarity,
    triangle_ids,
)

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "media" / "astronaut.png"


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return np.ascontiguousarray(cv2.imread(str(ASTRONAUT))[:, :, ::-1])


def test_similarity_recovers_a_known_pose() -> None:
    rng = np.random.default_rng(1)
    canonical = rng.normal(size=(16, 3))
    rotation = Rotation.from_euler("xyz", [10, -25, 5], degrees=True).as_matrix()
    observed = 80.0 * canonical @ rotation.T + [300.0, 200.0, 10.0]
    fit = fit_similarity(canonical, observed + rng.normal(scale=0.01, size=observed.shape))
    assert fit.scale == pytest.approx(80.0, rel=1e-3)
    assert np.allclose(fit.rotation, rotation, atol=1e-3)
    assert np.allclose(fit.apply(canonical), observed, atol=0.1)
    assert np.allclose(fit.invert(fit.apply(canonical)), canonical, atol=1e-9)


def test_similarity_never_returns_a_reflection() -> None:
    rng = np.random.default_rng(2)
    canonical = rng.normal(size=(10, 3))
    mirrored = canonical * [-1.0, 1.0, 1.0]
    assert np.linalg.det(fit_similarity(canonical, mirrored).rotation) > 0


def test_similarity_refuses_degenerate_input() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        fit_similarity(np.zeros((5, 3)), np.ones((5, 3)))
    with pytest.raises(ValueError):
        fit_similarity(np.zeros((2, 3)), np.zeros((2, 3)))


def _mesh() -> tuple[np.ndarray, np.ndarray]:
    xs, ys = np.meshgrid(np.linspace(150, 350, 6), np.linspace(180, 380, 6))
    points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    return points, Delaunay(points).simplices.astype(np.int32)


def test_identity_warp_leaves_pixels_alone(astronaut: np.ndarray) -> None:
    points, triangles = _mesh()
    roi = Roi.around(points, (512, 512))
    map_x, map_y, covered = PiecewiseAffineWarp(triangles).maps(points, points, roi)
    out = cv2.remap(astronaut, map_x, map_y, cv2.INTER_LINEAR)
    view = astronaut[roi.y0:roi.y1, roi.x0:roi.x1]
    assert np.abs(out.astype(int) - view)[covered > 0].max() <= 1
    assert covered.any() and not covered.all()


def test_translation_inside_the_mesh_is_exact(astronaut: np.ndarray) -> None:
    points, triangles = _mesh()
    # Move the inner vertices by (4, 3) and keep the border: the centre shifts rigidly.
    target = points.copy()
    x, y = points[:, 0], points[:, 1]
    inner = (x > 160) & (x < 340) & (y > 190) & (y < 370)
    target[inner] += (4.0, 3.0)
    roi = Roi.around(points, (512, 512))
    map_x, map_y, _ = PiecewiseAffineWarp(triangles, step=4).maps(points, target, roi)
    out = cv2.remap(astronaut, map_x, map_y, cv2.INTER_LINEAR)
    # A pixel in the middle (well inside the moved vertices' hull) shows the source 4, 3 back.
    y, x = 280 - roi.y0, 250 - roi.x0
    assert map_x[y, x] == pytest.approx(250 - 4, abs=0.05)
    assert map_y[y, x] == pytest.approx(280 - 3, abs=0.05)
    assert np.abs(out[y, x].astype(int) - astronaut[277, 246]).max() <= 2


def test_coarse_grid_matches_the_exact_map() -> None:
    rng = np.random.default_rng(3)
    points, triangles = _mesh()
    target = points + rng.normal(scale=3.0, size=points.shape) * (np.ptp(points, 0) > 0)
    # The outline stays put, as the anchors of a face edit do.
    border = np.isin(points[:, 0], [150, 350]) | np.isin(points[:, 1], [180, 380])
    target[border] = points[border]
    roi = Roi.around(points, (512, 512))
    coarse = PiecewiseAffineWarp(triangles, step=4).maps(points, target, roi)
    exact = PiecewiseAffineWarp(triangles, step=1).maps(points, target, roi)
    inside = (coarse[2] > 0) & (exact[2] > 0)
    err = np.hypot(coarse[0] - exact[0], coarse[1] - exact[1])[inside]
    assert np.median(err) < 0.05 and np.percentile(err, 99) < 1.0


def test_triangle_ids_are_exact_point_in_triangle_tests() -> None:
    rng = np.random.default_rng(5)
    points = rng.uniform(-3, 43, size=(60, 2))
    tris = Delaunay(points).simplices
    corners = points[tris]
    ok = np.ones(len(tris), dtype=bool)
    ok[3] = False  # a triangle left out (degenerate in the warp) holds no node
    ids = triangle_ids(corners, ok, (40, 30))
    # Brute force: every node against every used triangle, barycentric coordinates ≥ 0.
    for y in range(30):
        for x in range(40):
            holding = [k for k in range(len(tris)) if ok[k]
                       and min(_barycentric(corners[k], (x, y))) >= 0]
            assert ids[y, x] == (max(holding) + 1 if holding else 0), (x, y)


def test_a_sliver_triangle_never_takes_a_node_beside_it() -> None:
    # A closing mouth: the opening's triangles collapse to slivers whose affine maps, from
    # the source's open mouth, are huge. A node just beside one must keep its neighbour's map
    # (it moved by ~1 px here), not the sliver's extrapolated one.
    source = np.array([[0, 0], [40, 0], [20, 20], [20, 10], [0, 40], [40, 40]], np.float64)
    target = source.copy()
    target[3] = [20, 19.9]  # the open vertex closed onto the top one
    tris = np.array([[0, 1, 3], [0, 3, 2], [1, 2, 3], [0, 2, 4], [1, 5, 2], [2, 4, 5]],
                    np.int32)
    # (On the coarse grid, step 2: 8-connected triangle fills gave a node beside the sliver
    # its map, 74 px away.)
    map_x, map_y, covered = PiecewiseAffineWarp(tris, step=2).maps(source, target,
                                                                   Roi(0, 0, 41, 41))
    yy, xx = np.mgrid[0:41, 0:41]
    moved = np.hypot(map_x - xx, map_y - yy)[covered > 0]
    assert moved.max() < 12.0


def _barycentric(tri: np.ndarray, p: tuple[int, int]) -> tuple[float, float, float]:
    (ax, ay), (bx, by), (cx, cy) = tri
    det = (by - cy) * (ax - cx) + (cx - bx) * (ay - cy)
    u = ((by - cy) * (p[0] - cx) + (cx - bx) * (p[1] - cy)) / det
    v = ((cy - ay) * (p[0] - cx) + (ax - cx) * (p[1] - cy)) / det
    return u, v, 1.0 - u - v


def test_roi_is_clipped_to_the_frame() -> None:
    roi = Roi.around(np.array([[-10.0, -5.0], [700.0, 300.0]]), (640, 480), margin=3)
    assert (roi.x0, roi.y0, roi.x1, roi.y1) == (0, 0, 640, 304)
    assert Roi(5, 5, 5, 9).empty


def test_feather_stays_inside_its_mask() -> None:
    mask = np.zeros((60, 60), np.uint8)
    cv2.circle(mask, (30, 30), 20, 255, -1)
    alpha = feather(mask, 4)
    assert alpha[mask == 0].max() == 0.0
    assert alpha[30, 30] == pytest.approx(1.0, abs=1e-3)
    assert 0.0 < alpha[30, 49] < 1.0 or alpha[30, 49] == 0.0
