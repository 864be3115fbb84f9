"""The whole face as a small canonical model, for carrying one face's motion onto another.

Like the lip-sync backend's ``LowerFaceModel`` (``pipelines.lipsync.model``), the model of a
face is measured from that face's own recorded meshes, but it covers the whole face: eyes and
lids, brows, mouth, jaw, cheeks. Both ends of a reenactment use it: the *driver* (whose motion
is read) and the *performer* (whose picture is moved).

1. **Canonical frame.** Every mesh is expressed in canonical units by the similarity that maps
   a reference set of stable points (``warp.STABLE_POINTS``: eye corners, nose ridge, forehead)
   onto it; the reference is the generalised-Procrustes mean of the track, rotated by
   ``faces.warp.canonical_axes`` so that x runs along the eyes (image right), y down the
   nose, z into the picture, and scaled so that the inter-ocular distance (outer corners) is 1.
   A face's *motion* is then the change of its canonical mesh, free of head pose and of the
   face's size in the picture.
2. **Rest template.** The canonical mesh the motion is added to. By default the per-vertex
   median over the frames where the lips are closest (the lowest fifth of inner-lip gaps): the
   performer's face at rest, mouth closed, eyes as they usually are. A chosen frame can be
   used instead (``rest_frame``), and a still has only itself.
3. **Features.** A handful of sizes in canonical units (mouth width, nose-to-chin height, eye
   width and lid gap, brow-to-lid height). Retargeting scales the driver's motion in each
   region by the ratio of the performer's and the driver's sizes (``Features.ratios``), so a
   wide-eyed driver's blink closes a narrow-eyed performer's eye exactly, not past the lid.
4. **Regions.** Per vertex, a weight for each of *eyes*, *brows* and *mouth* (the mouth region
   holds the lips, the jaw and the cheeks below the nose). The weights fade smoothly between
   regions so that switching a region off leaves no crease. Vertices in none (nose, forehead)
   hardly move with expression anyway.
5. **Warp frame.** The 468 surface vertices (not the iris points: gaze is not transferred, and
   an iris inside the eye's triangles follows the lids) plus a ring of *anchors* outside the
   face oval (mediapipe's FACE_OVAL, pushed out by :data:`ANCHOR_OFFSET` inter-ocular
   distances). The anchors are posed with the source frame and never move, so the warp is the
   identity on and beyond the ring: pixels outside it stay bit-exact. The triangulation is a
   Delaunay triangulation of the rest template with the lips drawn apart, so that an opening
   mouth gets triangles of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Protocol

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import Delaunay  # type: ignore[import-untyped]

from pipelines.faces.geometry import mouth_opening
from pipelines.faces.landmarks import (
    CHIN,
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    MOUTH_LEFT,
    MOUTH_RIGHT,
    NOSE_BOTTOM,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
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

FACE_OVAL: Final = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379,
                    378, 400, 377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127,
                    162, 21, 54, 103, 67, 109)
"""mediapipe's face oval, clockwise from the top of the forehead."""
RIGHT_EYE_UPPER: Final = (246, 161, 160, 159, 158, 157, 173)
RIGHT_EYE_LOWER: Final = (7, 163, 144, 145, 153, 154, 155)
LEFT_EYE_UPPER: Final = (466, 388, 387, 386, 385, 384, 398)
LEFT_EYE_LOWER: Final = (249, 390, 373, 374, 380, 381, 382)
"""Lid contours, outer corner to inner corner; the i-th upper and lower points face each other."""
RIGHT_BROW: Final = (70, 63, 105, 66, 107, 46, 53, 52, 65, 55)
LEFT_BROW: Final = (300, 293, 334, 296, 336, 276, 283, 282, 295, 285)
LID_PAIRS: Final = tuple(zip(RIGHT_EYE_UPPER + LEFT_EYE_UPPER,
                             RIGHT_EYE_LOWER + LEFT_EYE_LOWER, strict=True))
LIP_PAIRS: Final = tuple(zip(UPPER_INNER[1:-1], LOWER_INNER[1:-1], strict=True))
"""Inner-lip points facing each other (corners excluded)."""

REGIONS: Final = ("eyes", "brows", "mouth")
SURFACE: Final = 468
"""Mesh vertices 0..467 (the iris points 468..477 are not part of the warp)."""
ANCHOR_OFFSET: Final = 0.2
"""How far outside the face oval the fixed anchors lie, in inter-ocular distances."""
MAX_SAMPLES: Final = 400


class MeshTrack(Protocol):
    """What the model reads of a track: ``TrackLandmarks`` or a still's single mesh."""

    @property
    def meshes(self) -> NDArray[np.float32]: ...

    @property
    def frames(self) -> NDArray[np.int32]: ...


@dataclass(frozen=True, slots=True)
class Features:
    """Sizes of one face at rest, in canonical units (inter-ocular distance = 1)."""

    mouth_width: float
    lower_height: float
    eye_width: float
    eye_height: float
    brow_height: float

    @classmethod
    def of(cls, rest: Points) -> Features:
        def gap(pairs: tuple[tuple[int, int], ...]) -> float:
            return float(np.mean([rest[b, 1] - rest[a, 1] for a, b in pairs]))

        eye_top = rest[[159, 386], 1].mean()
        brow = rest[[105, 66, 334, 296], 1].mean()
        return cls(
            mouth_width=float(np.linalg.norm(rest[MOUTH_LEFT] - rest[MOUTH_RIGHT])),
            lower_height=float(rest[CHIN, 1] - rest[NOSE_BOTTOM, 1]),
            eye_width=float((np.linalg.norm(rest[RIGHT_EYE_OUTER] - rest[RIGHT_EYE_INNER])
                             + np.linalg.norm(rest[LEFT_EYE_OUTER] - rest[LEFT_EYE_INNER])) / 2),
            eye_height=max(gap(LID_PAIRS[2:5] + LID_PAIRS[9:12]), 0.0),
            brow_height=float(eye_top - brow),
        )

    def to_json(self) -> dict[str, float]:
        return {name: round(float(getattr(self, name)), 6) for name in self.__slots__}

    @classmethod
    def from_json(cls, data: dict[str, float]) -> Features:
        return cls(**{name: float(data[name]) for name in cls.__slots__})

    def ratios(self, driver: Features, *, lo: float = 0.5, hi: float = 2.0
               ) -> NDArray[np.float64]:
        """``[3 regions, 3 axes]`` scale factors from the driver's motion to this face's.

        Eyes: width along x, lid gap along y (a blink closes exactly this performer's eye).
        Brows: x unchanged, y by the brow-to-lid height. Mouth: x by the mouth's width, y by
        the nose-to-chin height. z follows the mean of x and y. Clamped to ``[lo, hi]``: a
        measurement off by a factor of two is a failed measurement, not a face.
        """
        def r(mine: float, theirs: float) -> float:
            if theirs <= 1e-3 or mine <= 1e-3:
                return 1.0
            return float(np.clip(mine / theirs, lo, hi))

        eyes = (r(self.eye_width, driver.eye_width), r(self.eye_height, driver.eye_height))
        brows = (1.0, r(self.brow_height, driver.brow_height))
        mouth = (r(self.mouth_width, driver.mouth_width),
                 r(self.lower_height, driver.lower_height))
        out = np.array([[x, y, (x + y) / 2] for x, y in (eyes, brows, mouth)])
        return out


def canonicalise(meshes: NDArray[np.float32] | Points, *, iterations: int = 2
                 ) -> tuple[Points, Points]:
    """(stable reference ``[16, 3]``, canonical meshes ``[n, 478, 3]``) of a set of meshes."""
    m = np.asarray(meshes, dtype=np.float64)
    stable = list(STABLE_POINTS)
    first = canonical_axes(m[0])
    reference = first.invert(m[0])[stable]
    canon = m
    for _ in range(iterations):  # generalised Procrustes: align to the mean, re-derive it
        canon = np.stack([fit_similarity(reference, x[stable]).invert(x) for x in m])
        axes = canonical_axes(canon.mean(axis=0))
        canon = np.stack([axes.invert(c) for c in canon])
        reference = canon.mean(axis=0)[stable]
    return reference, canon


def sample_rows(count: int, limit: int = MAX_SAMPLES) -> NDArray[np.int64]:
    return np.unique(np.linspace(0, count - 1, min(count, limit)).astype(np.int64))


@dataclass(frozen=True, eq=False)
class FaceModel:
    """One face's canonical model (module docstring); canonical units throughout."""

    stable_reference: Points      # [16, 3]
    rest: Points                  # [478, 3]
    features: Features
    regions: NDArray[np.float64]  # [468, 3]: weight of eyes, brows, mouth per surface vertex
    anchors: Points               # [a, 3]
    triangles: NDArray[np.int32]  # over surface vertices 0..467 followed by the anchors

    @classmethod
    def measure(cls, track: MeshTrack, *, rest_frame: int | None = None) -> FaceModel:
        """Measure a track; ``rest_frame`` (a frame index of the track) fixes the rest shape."""
        count = int(track.frames.shape[0])
        rows = sample_rows(count)
        chosen: int | None = None
        if rest_frame is not None:
            hits = np.nonzero(np.asarray(track.frames) == rest_frame)[0]
            if len(hits) == 0:
                raise ValueError(f"rest frame {rest_frame}: the face is not in that frame")
            chosen = int(hits[0])
            rows = np.unique(np.append(rows, chosen))
        meshes = np.asarray(track.meshes[rows], dtype=np.float64)
        reference, canon = canonicalise(meshes)
        if chosen is not None:
            rest = canon[int(np.searchsorted(rows, chosen))]
        else:
            gaps = np.array([mouth_opening(m.astype(np.float32)) for m in meshes])
            closed = np.argsort(gaps, kind="stable")[: max(1, len(gaps) // 5)]
            rest = np.median(canon[closed], axis=0)
        return cls.build(reference, rest)

    @classmethod
    def build(cls, reference: Points, rest: Points) -> FaceModel:
        surface = rest[:SURFACE]
        regions = _region_weights(surface)
        oval = rest[list(FACE_OVAL)]
        centre = oval.mean(axis=0)
        out = oval[:, :2] - centre[:2]
        out /= np.linalg.norm(out, axis=1, keepdims=True)
        anchors = oval.copy()
        anchors[:, :2] += out * ANCHOR_OFFSET
        # Draw the lips apart for the triangulation, so that no triangle joins the upper lip to
        # the lower one across the mouth corners' line in a way an opening would fold.
        layout = surface[:, :2].copy()
        below = list(LOWER_INNER[1:-1] + LOWER_OUTER[1:-1])
        layout[below, 1] += 0.04
        simplices = Delaunay(np.concatenate([layout, anchors[:, :2]])).simplices
        return cls(reference, rest, Features.of(rest), regions, anchors,
                   np.ascontiguousarray(simplices, dtype=np.int32))

    def pose_of(self, mesh: NDArray[np.float32] | Points) -> Similarity:
        """The similarity from canonical units to ``mesh``'s pixels (fitted on stable points)."""
        stable = np.asarray(mesh, dtype=np.float64)[list(STABLE_POINTS)]
        return fit_similarity(self.stable_reference, stable)


def _distance_to(points: Points, targets: Points) -> NDArray[np.float64]:
    d = np.linalg.norm(points[:, None, :2] - targets[None, :, :2], axis=2)
    out: NDArray[np.float64] = d.min(axis=1)
    return out


def _region_weights(surface: Points) -> NDArray[np.float64]:
    """Per-vertex weights of eyes, brows and mouth (module docstring, point 4)."""
    eye_idx = list(RIGHT_EYE_UPPER + RIGHT_EYE_LOWER + LEFT_EYE_UPPER + LEFT_EYE_LOWER)
    eye_idx += [RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_OUTER, LEFT_EYE_INNER]
    eyes = smoothstep(1.0 - (_distance_to(surface, surface[eye_idx]) - 0.05) / 0.12)
    brows = smoothstep(1.0 - (_distance_to(surface, surface[list(RIGHT_BROW + LEFT_BROW)])
                              - 0.04) / 0.12)
    nose_y = surface[NOSE_BOTTOM, 1]
    lip_top = surface[list(UPPER_OUTER), 1].min()
    mouth = smoothstep((surface[:, 1] - nose_y + 0.03) / max(lip_top - nose_y + 0.03, 1e-3))
    w = np.stack([eyes, brows, mouth], axis=1)
    total = w.sum(axis=1, keepdims=True)
    w = np.where(total > 1.0, w / np.maximum(total, 1e-9), w)
    # The lid contours themselves belong to the eyes only: a brow toggle must not move a lid.
    w[eye_idx] = (1.0, 0.0, 0.0)
    return np.asarray(w, dtype=np.float64)
