"""The performer's lower face as a small shape model, measured from the shot itself.

Why measured: mouths differ. How far this performer's jaw drops for an open vowel, how their
chin and jaw line follow, where their lips meet: all of it is in the source footage. So the
model is built per track from its own recorded meshes (:mod:`pipelines.faces.landmark_file`):

1. **Canonical frame.** Every mesh is expressed in canonical units by the similarity that maps a
   reference set of stable points (eye corners, nose, forehead; ``warp.STABLE_POINTS``) onto it;
   the reference is the Procrustes mean of the track, rotated so that x runs along the eyes,
   y down the nose, and scaled so that the inter-ocular distance (outer corners) is 1.
2. **Closed template.** The mean canonical mesh over the frames where the lips are closest
   (the lowest fifth of inner-lip gaps): the performer's own mouth at rest.
3. **Jaw basis.** The mean canonical displacement from the closed template to the most open
   frames (the top tenth), normalised so that the inner-lip gap (points 13–14) grows by one
   unit. It carries this performer's jaw: chin, jaw line and lower lip move together as they do
   in the shot. A track that hardly opens its mouth (less than ``MIN_MEASURED_RANGE``) gets a
   procedural basis instead (lower lip and chin straight down, fading toward the jaw angles).
4. **Range.** ``open_gap`` is the 95th percentile of the inner-lip gap: what ``jaw_open = 0.8``
   (the open-vowel target of ``visemes.SHAPES``) reaches. Clamped to [0.08, 0.45] and set to
   ``DEFAULT_OPEN_GAP`` when unmeasurable.

A mouth shape (``visemes.PARAMETERS``) becomes canonical displacements of the template:

* ``jaw_open``: ``gap = jaw_open / 0.8 · (open_gap − closed_gap)`` along the jaw basis;
* ``lip_closure``: the lips close what is left of the gap, each lip half of it;
* ``lip_width``: lips and the skin around them scale horizontally about the mouth centre
  (+12 % fully spread, −22 % fully rounded; rounded lips also thicken by up to 10 %);
* ``upper_lip_raise``: the upper lip lifts by up to 0.05 (teeth show);
* ``lower_lip_tuck``: the lower lip rises toward the upper teeth (f, v).

Then each frame's pose carries the shape onto the picture. The *target* of a vertex is
``source + w · (pose(template + displacement) − source)``, where ``w`` is 1 over the mouth,
chin and jaw and fades to 0 toward the nose: the original speech is replaced, everything above
the upper lip keeps the source's own motion. An outer ring of fixed anchors (the jaw line pushed
out by a quarter, into the neck and cheeks) bounds the warp, so nothing outside it moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Final

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import Delaunay  # type: ignore[import-untyped]

from pipelines.faces.geometry import mouth_opening, smoothed_points
from pipelines.faces.landmark_file import TrackLandmarks
from pipelines.faces.landmarks import (
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_BOTTOM,
    NOSE_TIP,
)
from pipelines.faces.mouth import LOWER_INNER, LOWER_OUTER, UPPER_INNER, UPPER_OUTER
from pipelines.faces.warp import (
    STABLE_POINTS,
    Similarity,
    canonical_axes,
    fit_similarity,
    smoothstep,
)

Points = NDArray[np.float64]

LOWER_JAW_LINE: Final = (93, 132, 58, 172, 136, 150, 149, 176, 148, 152, 377, 400, 378, 379,
                         365, 397, 288, 361, 323)
"""The face oval from cheek to cheek under the chin (mediapipe's FACE_OVAL, lower half)."""

MIN_MEASURED_RANGE: Final = 0.05
DEFAULT_OPEN_GAP: Final = 0.2
OPEN_VOWEL_JAW: Final = 0.8
ANCHOR_PUSH: Final = 1.25
_POSE_SIGMA: Final = 1.2   # frames; zero-phase smoothing of the head pose
_SOURCE_SIGMA: Final = 0.8  # frames; light smoothing of where the texture is sampled


@dataclass(frozen=True, eq=False)
class LowerFaceModel:
    """One track's measured lower face (module docstring); canonical units throughout."""

    stable_reference: Points          # [len(STABLE_POINTS), 3]
    template: Points                  # [478, 3] closed-mouth mean
    jaw_basis: Points                 # [478, 3] displacement per unit of inner-lip gap
    closed_gap: float
    open_gap: float
    measured: bool                    # jaw basis and range measured (not procedural)
    vertices: NDArray[np.int64]       # mesh indices the warp moves
    follow: NDArray[np.float64]       # per vertex of ``vertices``: weight of the model (w)
    lip: NDArray[np.float64]          # per vertex: 1 on the lips, fading around them
    lower: NDArray[np.float64]        # per vertex: 1 on the lower lip, 0 on the upper
    anchors: Points                   # [a, 3] fixed canonical points bounding the warp
    triangles: NDArray[np.int32]      # over ``vertices`` followed by ``anchors``

    # -- building -----------------------------------------------------------------------------

    @classmethod
    def measure(cls, track: TrackLandmarks, *, max_samples: int = 400) -> LowerFaceModel:
        rows = np.unique(np.linspace(0, len(track) - 1, min(len(track), max_samples)).astype(int))
        meshes = np.asarray(track.meshes[rows], dtype=np.float64)
        first = canonical_axes(meshes[0])
        canon = np.stack([first.invert(m) for m in meshes[:1]])
        reference = canon[0][list(STABLE_POINTS)]
        for _ in range(2):  # generalised Procrustes: align to the mean, re-derive the mean
            canon = np.stack([fit_similarity(reference, m[list(STABLE_POINTS)]).invert(m)
                              for m in meshes])
            mean = canon.mean(axis=0)
            axes = canonical_axes(mean)
            canon = np.stack([axes.invert(c) for c in canon])
            reference = canon.mean(axis=0)[list(STABLE_POINTS)]
        gaps = np.array([mouth_opening(m.astype(np.float32)) for m in meshes])
        order = np.argsort(gaps, kind="stable")
        closed_rows = order[: max(1, len(order) // 5)]
        open_rows = order[-max(1, len(order) // 10):]
        template = canon[closed_rows].mean(axis=0)
        closed_gap = float(np.median(gaps[closed_rows]))
        p95 = float(np.percentile(gaps, 95))
        measured = p95 - closed_gap >= MIN_MEASURED_RANGE
        if measured:
            opened = canon[open_rows].mean(axis=0)
            delta = opened - template
            unit = float(delta[LIPS_INNER_LOWER, 1] - delta[LIPS_INNER_UPPER, 1])
            measured = unit > 0.02
        if measured:
            jaw_basis = delta / unit
            # The upper lip belongs to the skull: what it did in open frames is speech detail
            # (a raise), not the jaw. Keep the basis on the lower half only.
            jaw_basis[list(UPPER_OUTER[1:-1] + UPPER_INNER[1:-1])] = 0.0
            open_gap = float(np.clip(p95, 0.08, 0.45))
        else:
            jaw_basis = _procedural_jaw(template)
            open_gap = max(DEFAULT_OPEN_GAP, closed_gap + 0.1)
        return cls._assemble(reference, template, jaw_basis, closed_gap, open_gap, measured)

    @classmethod
    def _assemble(cls, reference: Points, template: Points, jaw_basis: Points,
                  closed_gap: float, open_gap: float, measured: bool) -> LowerFaceModel:
        nose_y = template[NOSE_BOTTOM, 1]
        lip_top_y = template[list(UPPER_OUTER), 1].min()
        chosen = [i for i in range(468) if template[i, 1] >= nose_y - 0.02]
        vertices = np.array(chosen, dtype=np.int64)
        pts = template[vertices]
        follow = smoothstep((pts[:, 1] - nose_y) / max(lip_top_y - nose_y, 1e-3))
        lip = _lip_weight(template, pts)
        lower = np.clip(jaw_basis[vertices, 1], 0.0, 1.0) if measured else \
            (pts[:, 1] > template[[LIPS_INNER_UPPER, LIPS_INNER_LOWER], 1].mean()).astype(float)
        lower[np.isin(vertices, LOWER_INNER[1:-1] + LOWER_OUTER[1:-1])] = 1.0
        lower[np.isin(vertices, UPPER_INNER[1:-1] + UPPER_OUTER[1:-1])] = 0.0
        centre = template[NOSE_TIP]
        ring = template[list(LOWER_JAW_LINE)]
        anchors = centre + (ring - centre) * ANCHOR_PUSH
        # Two more anchors at nose height beyond the cheeks close the ring at the top.
        side = np.array([[ring[0, 0] * ANCHOR_PUSH, nose_y - 0.05, ring[0, 2]],
                         [ring[-1, 0] * ANCHOR_PUSH, nose_y - 0.05, ring[-1, 2]]])
        anchors = np.concatenate([side[:1], anchors, side[1:]])
        # Triangulate an open mouth so that the opening gets triangles of its own.
        layout = np.concatenate([pts + jaw_basis[vertices] * 0.3, anchors])[:, :2]
        triangles = Delaunay(layout).simplices.astype(np.int32)
        return cls(reference, template, jaw_basis, closed_gap, open_gap, measured, vertices,
                   follow, lip, lower, anchors, triangles)

    @cached_property
    def lip_pairs(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Rows of :attr:`vertices`: each inner-lip point and the outer-lip point across the lip
        from it (corners excluded), for sampling the lip body instead of its inner edge."""
        row = {int(v): i for i, v in enumerate(self.vertices)}
        inner = [row[v] for v in UPPER_INNER[1:-1] + LOWER_INNER[1:-1]]
        outer = [row[v] for v in UPPER_OUTER[1:-1] + LOWER_OUTER[1:-1]]
        return np.array(inner, dtype=np.int64), np.array(outer, dtype=np.int64)

    # -- per frame ----------------------------------------------------------------------------

    def displaced(self, shape: NDArray[np.float64]) -> Points:
        """Canonical positions of :attr:`vertices` for one mouth shape (``visemes.PARAMETERS``)."""
        jaw, width, closure, raise_, tuck = (float(v) for v in shape)
        pts = self.template[self.vertices].copy()
        gap = jaw / OPEN_VOWEL_JAW * max(self.open_gap - self.closed_gap, 0.0)
        pts += gap * self.jaw_basis[self.vertices]
        total = self.closed_gap + gap
        # Lips close what is left of the gap, half each.
        close = closure * total / 2.0
        pts[:, 1] += self.lip * (self.lower * -close + (1.0 - self.lower) * close)
        # Tuck: the lower lip rises toward the upper teeth (never past the upper lip).
        pts[:, 1] -= self.lip * self.lower * tuck * 0.8 * max(total - close * 2.0, 0.0)
        pts[:, 1] -= self.lip * (1.0 - self.lower) * raise_ * 0.05
        centre_x = self.template[[MOUTH_RIGHT, MOUTH_LEFT], 0].mean()
        centre_y = self.template[[LIPS_INNER_UPPER, LIPS_INNER_LOWER], 1].mean()
        k = 0.12 if width >= 0 else 0.22
        pts[:, 0] += self.lip * (pts[:, 0] - centre_x) * k * width
        if width < 0:  # rounded lips push forward and look fuller
            pts[:, 1] += self.lip * (pts[:, 1] - centre_y) * 0.1 * -width
        return pts

    def pose(self, track: TrackLandmarks, row: int, run: tuple[int, int]) -> Similarity:
        """Zero-phase smoothed head pose at ``row`` (only rows of the same run contribute)."""
        return fit_similarity(self.stable_reference,
                              smoothed_points(track.meshes, row, run, _POSE_SIGMA,
                                              list(STABLE_POINTS)))

    def source(self, track: TrackLandmarks, row: int, run: tuple[int, int]) -> Points:
        """Lightly smoothed image positions of :attr:`vertices` (where the texture is)."""
        return smoothed_points(track.meshes, row, run, _SOURCE_SIGMA, self.vertices)


def _lip_weight(template: Points, pts: Points) -> NDArray[np.float64]:
    """1 inside the outer lip contour, fading to 0 at 0.2 beyond it."""
    import cv2  # local: geometry helpers only need it here

    outer = np.concatenate([template[list(UPPER_OUTER), :2],
                            template[list(reversed(LOWER_OUTER[1:-1])), :2]])
    contour = outer.astype(np.float32).reshape(-1, 1, 2)
    dist = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True)
                     for x, y in pts[:, :2]])
    out: NDArray[np.float64] = smoothstep((dist + 0.2) / 0.2)
    return out


def _procedural_jaw(template: Points) -> Points:
    """Jaw basis for a track that never opens its mouth: chin and lower lip move straight down,
    less toward the jaw angles (the mandible turns about the ears)."""
    basis = np.zeros_like(template)
    lip_y = template[[LIPS_INNER_UPPER, LIPS_INNER_LOWER], 1].mean()
    chin = template[152]
    half_width = abs(template[LOWER_JAW_LINE[0], 0] - template[LOWER_JAW_LINE[-1], 0]) / 2.0
    below = smoothstep((template[:, 1] - lip_y + 0.02) / 0.05)
    side = 1.0 - 0.7 * smoothstep(np.abs(template[:, 0] - chin[0]) / max(half_width, 1e-3))
    basis[:, 1] = below * side
    basis[list(LOWER_INNER[1:-1] + LOWER_OUTER[1:-1]), 1] = 1.0
    basis[list(UPPER_INNER + UPPER_OUTER), 1] = 0.0
    basis[[MOUTH_RIGHT, MOUTH_LEFT, 78, 308], 1] = 0.5
    return basis
