"""The embedded reenactment backend: a whole-face mesh warp driven by another face, on a CPU.

Per output frame and performer (see ``model`` for the face model, ``motion`` for the drive):

1. **Source.** The performer's recorded mesh at this frame (lightly smoothed without lag) is
   where the texture is; its pose (fitted on stable points, zero-phase smoothed) maps it into
   the performer's canonical frame: ``canon_src``. A still has one mesh for every frame.
2. **Retarget.** The driver's expression delta at this frame is scaled per region by the ratio
   of the performer's and the driver's feature sizes (``Features.ratios``), and added to the
   base: the performer's rest face (``base="rest"``: the driven regions show the driver's
   performance instead of the source's) or the source frame itself (``base="frame"``). Each
   vertex follows the sum of its *enabled* region weights, so disabled regions keep the
   source's own motion and the boundary between the two fades. Lids and inner lips are kept
   from crossing (a blink closes, it does not invert).
3. **Pose.** Expression only: the canonical target is carried onto the picture by the source
   frame's own pose. With head pose, by the source pose composed with the driver's (clamped)
   relative rotation about a point behind the nose (roughly the head's centre), its relative
   scale and its translation in inter-ocular distances.
4. **Warp.** A piecewise-affine warp (``faces.warp.PiecewiseAffineWarp``, evaluated on a
   coarse grid) moves the source mesh to the target inside a ring of anchors outside the face
   oval, posed with the *source* and never moved: the warp is the identity along and beyond
   the ring, so a hard copy leaves no seam and every pixel outside is bit-exact. Closing lids
   stretch the lid skin over the eye; an eye opened wider than the source's stretches the
   source's eye. A head turned by the driver stretches the cheek on one side and compresses
   the other (a 2-D warp cannot show what the source never showed, hence the pose limits).
5. **Mouth interior.** Where the target lips are apart, the interior is painted from the
   performer's own open mouth, colour-matched to the lips now (``faces.mouth.paint_interior``,
   shared with lip-sync); a synthetic cavity when the analysis found none.
6. **Temporal.** The drive is smoothed without lag (``ReenactOptions.smoothing``), the source
   pose and mesh too; edits fade in and out over :data:`RAMP_FRAMES` where a source track
   starts or ends, so a face entering the picture does not snap.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.geometry import smoothed_points
from pipelines.faces.landmarks import (
    LEFT_EYE_INNER,
    LEFT_EYE_OUTER,
    LIPS_INNER_LOWER,
    LIPS_INNER_UPPER,
    RIGHT_EYE_INNER,
    RIGHT_EYE_OUTER,
)
from pipelines.faces.mouth import MouthExemplar, paint_interior
from pipelines.faces.warp import (
    STABLE_POINTS,
    PiecewiseAffineWarp,
    Roi,
    Similarity,
    feather,
    fit_similarity,
)
from pipelines.reenact.interface import FrameEdit, MotionDrive, SourceFace
from pipelines.reenact.model import (
    LEFT_EYE_LOWER,
    LEFT_EYE_UPPER,
    LID_PAIRS,
    LIP_PAIRS,
    REGIONS,
    RIGHT_EYE_LOWER,
    RIGHT_EYE_UPPER,
    SURFACE,
    FaceModel,
    sample_rows,
)
from pipelines.reenact.motion import rotation_from

Points = NDArray[np.float64]

RAMP_FRAMES: Final = 3
DONOR_OPEN: Final = 0.9
"""A source frame whose lid gap is at least this fraction of its usual one has open eyes."""
REOPEN_MARGIN: Final = 0.04
"""Reopen the eyes when the target's lid gap exceeds the source's by this (usual = 1)."""
RIGHT_EYE_RING: Final = (33, *RIGHT_EYE_UPPER, 133, *RIGHT_EYE_LOWER)
LEFT_EYE_RING: Final = (263, *LEFT_EYE_UPPER, 362, *LEFT_EYE_LOWER)
MIN_PAINTED_GAP_PX: Final = 1.0
HEAD_CENTRE: Final = np.array([0.0, 0.3, 0.8])
"""Canonical point the driver's head rotation turns about: behind the nose, at ear height."""
POSE_SIGMA: Final = 1.2     # frames; zero-phase smoothing of the source's head pose
SOURCE_SIGMA: Final = 0.8   # frames; light smoothing of where the texture is sampled
_UPPER_LID = np.array([a for a, _ in LID_PAIRS])
_LOWER_LID = np.array([b for _, b in LID_PAIRS])
_UPPER_LIP = np.array([a for a, _ in LIP_PAIRS])
_LOWER_LIP = np.array([b for _, b in LIP_PAIRS])


@dataclass(eq=False)
class PreparedFace:
    face: SourceFace
    drive: MotionDrive
    model: FaceModel
    warp: PiecewiseAffineWarp
    follow: NDArray[np.float64]       # [468, 1]: how much each vertex follows the driver
    scale: NDArray[np.float32]        # [468, 3]: driver → performer displacement scale
    exemplar: MouthExemplar | None
    open_eyes: float = 0.0            # the source's usual lid gap (EAR-like), 0 for a still
    donor: EyeDonor | None = field(default=None, repr=False)
    _synthetic: MouthExemplar | None = field(default=None, repr=False)


@dataclass(frozen=True, eq=False, slots=True)
class EyeDonor:
    """The last source frame whose eyes were open: the eye area's pixels and source mesh."""

    pixels: NDArray[np.uint8]
    points: Points                    # [468 + a, 2] source positions, relative to the crop
    frame_index: int


@dataclass(frozen=True, eq=False, slots=True)
class MeshEdit:
    frame_index: int
    track_id: int
    region: Roi
    source: Points          # [468 + a, 2] image positions (surface vertices then anchors)
    target: Points
    mesh: Points            # [478, 2]: the recorded mesh with target positions
    prepared: PreparedFace
    source_eyes: float      # the source's lid gap now / its usual one (1 = as usual)
    target_eyes: float      # the target's lid gap / the source's usual one


class EmbeddedReenact:
    """See the module docstring. ``grid_step``: the warp's coarse-grid spacing in pixels."""

    name = "embedded-mesh-reenact"

    def __init__(self, *, grid_step: int = 4) -> None:
        self.grid_step = grid_step

    def prepare(self, face: SourceFace, drive: MotionDrive) -> PreparedFace:
        options = drive.options
        model = FaceModel.measure(face.landmarks, rest_frame=options.source_neutral)
        enabled = np.array([r in options.regions for r in REGIONS], dtype=np.float64)
        weights = model.regions * enabled
        follow = np.clip(weights.sum(axis=1, keepdims=True), 0.0, 1.0)
        ratios = model.features.ratios(drive.driver_features)
        # Per vertex: the region ratios blended by region weight, 1 where no region applies.
        total = model.regions.sum(axis=1, keepdims=True)
        scale = model.regions @ ratios + np.clip(1.0 - total, 0.0, 1.0)
        open_eyes = 0.0
        if not face.still and "eyes" in options.regions:
            rows = sample_rows(len(face.landmarks.frames))
            open_eyes = float(np.percentile(
                [lid_gap(np.asarray(face.landmarks.meshes[r], dtype=np.float64))
                 for r in rows], 75))
        return PreparedFace(face, drive, model,
                            PiecewiseAffineWarp(model.triangles, step=self.grid_step),
                            follow, scale.astype(np.float32), face.exemplar, open_eyes)

    # -- per frame --------------------------------------------------------------------------

    def edits(self, prepared: PreparedFace) -> Iterator[MeshEdit]:
        face, drive = prepared.face, prepared.drive
        lm = face.landmarks
        if face.still:
            still = self._still_frame(prepared)
            for frame in range(drive.frame_count):
                yield self._edit(prepared, frame, *still, ramp=1.0)
            return
        frames = np.asarray(lm.frames)
        edges = [0, *(np.nonzero(np.diff(frames) != 1)[0] + 1).tolist(), len(frames)]
        for first, end in itertools.pairwise(edges):
            for row in range(first, end):
                frame = int(frames[row])
                if frame >= drive.frame_count:
                    return
                # Fade in/out only where the face enters or leaves mid-shot, not at the clip's ends.
                ramp_in = 1.0 if frames[first] == 0 else (row - first + 1) / RAMP_FRAMES
                ramp_out = (1.0 if frames[end - 1] >= drive.frame_count - 1
                            else (end - row) / RAMP_FRAMES)
                ramp = min(1.0, ramp_in, ramp_out)
                pose, source = self._source(prepared, row, (first, end))
                yield self._edit(prepared, frame, pose, source,
                                 np.asarray(lm.meshes[row][:, :2], dtype=np.float64), ramp)

    def _still_frame(self, prepared: PreparedFace) -> tuple[Similarity, Points, Points]:
        mesh = np.asarray(prepared.face.landmarks.meshes[0], dtype=np.float64)
        return prepared.model.pose_of(mesh), mesh[:SURFACE], mesh[:, :2].copy()

    def _source(self, prepared: PreparedFace, row: int, run: tuple[int, int]
                ) -> tuple[Similarity, Points]:
        meshes = prepared.face.landmarks.meshes
        stable = smoothed_points(meshes, row, run, POSE_SIGMA, list(STABLE_POINTS))
        pose = fit_similarity(prepared.model.stable_reference, stable)
        return pose, smoothed_points(meshes, row, run, SOURCE_SIGMA, slice(0, SURFACE))

    def _edit(self, prepared: PreparedFace, frame: int, pose: Similarity, source: Points,
              recorded: Points, ramp: float) -> MeshEdit:
        drive, model, face = prepared.drive, prepared.model, prepared.face
        options = drive.options
        canon_src = pose.invert(source)
        delta = drive.deltas[frame] * prepared.scale
        if options.base == "rest":
            goal = model.rest[:SURFACE] + delta
        else:
            goal = canon_src + delta
        follow = prepared.follow * ramp
        canon = canon_src + follow * (goal - canon_src)
        _no_crossing(canon, _UPPER_LID, _LOWER_LID)
        _no_crossing(canon, _UPPER_LIP, _LOWER_LIP)
        out_pose = self._out_pose(pose, drive, frame, ramp) if options.head_pose else pose
        target = out_pose.apply(canon)
        anchors = pose.apply(model.anchors)[:, :2]
        src = np.concatenate([source[:, :2], anchors])
        tgt = np.concatenate([target[:, :2], anchors])
        region = Roi.around(np.concatenate([src, tgt]), face.frame_size, margin=3)
        mesh = recorded.copy()
        mesh[:SURFACE] = target[:, :2]
        usual = prepared.open_eyes
        eyes = (lid_gap(source) / usual, lid_gap(target) / usual) if usual > 0 else (1.0, 1.0)
        return MeshEdit(frame, face.track_id, region, src, tgt, mesh, prepared, *eyes)

    @staticmethod
    def _out_pose(pose: Similarity, drive: MotionDrive, frame: int, ramp: float) -> Similarity:
        yaw, pitch, roll = (float(v) * ramp for v in drive.rotation[frame])
        rel = rotation_from(yaw, pitch, roll)
        k = 1.0 + (float(drive.scale[frame]) - 1.0) * ramp
        rotation = rel @ pose.rotation
        scale = pose.scale * k
        centre = pose.apply(HEAD_CENTRE[None, :])[0]
        shift = np.zeros(3)
        shift[:2] = drive.translation[frame] * pose.scale * ramp
        # x ↦ scale·rotation·(x − h) + pose(h) + shift, written as a similarity.
        translation = centre + shift - scale * rotation @ HEAD_CENTRE
        return Similarity(scale, rotation, translation)

    def carried_from(self, edits: Iterable[FrameEdit], applies: Callable[[FrameEdit], bool]
                     ) -> set[int]:
        """Of ``edits`` (every face's, for the frames before a range rendered apart), the
        frames whose rendering leaves state the range uses (``pipelines.edits.ranged``): per
        face, the first rendered frame that takes the synthetic mouth (a face without an
        exemplar) and the last one whose eyes were open (the blink donor). ``applies``: whether
        the guard would render an edit at all. Exact while faces' regions do not overlap (an
        overlapping face's own state on those frames is not replayed)."""
        mouth: dict[int, int] = {}
        eyes: dict[int, int] = {}
        for edit in edits:
            if not isinstance(edit, MeshEdit) or edit.region.empty or not applies(edit):
                continue
            prepared, tid = edit.prepared, edit.track_id
            gap = edit.mesh[LIPS_INNER_LOWER] - edit.mesh[LIPS_INNER_UPPER]
            if (prepared.exemplar is None and tid not in mouth
                    and float(np.hypot(*gap)) >= MIN_PAINTED_GAP_PX):
                mouth[tid] = edit.frame_index
            if prepared.open_eyes > 0 and edit.source_eyes >= DONOR_OPEN:
                eyes[tid] = max(eyes.get(tid, -1), edit.frame_index)
        return set(mouth.values()) | set(eyes.values())

    # -- pixels -----------------------------------------------------------------------------

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None:
        for edit in edits:
            if not isinstance(edit, MeshEdit):
                raise TypeError(f"{self.name} cannot render a {type(edit).__name__}")
            roi = edit.region
            if roi.empty:
                continue
            prepared = edit.prepared
            reopen = self._eye_donor(prepared, rgb, edit)
            map_x, map_y, covered = prepared.warp.maps(edit.source, edit.target, roi)
            _bound(map_x, map_y, roi, edit)
            warped = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            view = rgb[roi.y0:roi.y1, roi.x0:roi.x1]
            # Anchors map to themselves: the warp is the identity along the covered area's
            # edge, so a hard copy leaves no seam and pixels outside stay bit-exact.
            cv2.copyTo(warped, covered, view)
            if reopen is not None:
                self._paint_eyes(rgb, edit, reopen)
            closure = _closure(prepared, edit)
            if closure > 0.0:
                _paint_closed_lids(rgb, edit.target, closure)
            gap = edit.mesh[LIPS_INNER_LOWER] - edit.mesh[LIPS_INNER_UPPER]
            if float(np.hypot(*gap)) >= MIN_PAINTED_GAP_PX:
                paint_interior(rgb, self._exemplar(prepared, rgb, edit), edit.mesh, roi)

    @staticmethod
    def _eye_donor(prepared: PreparedFace, rgb: NDArray[np.uint8], edit: MeshEdit
                   ) -> EyeDonor | None:
        """Keep the source's open eyes; return them when this frame's must be reopened.

        A warp cannot open an eye the source closed (a blink of the performer's own while the
        driver's eyes are open): there is no eye in the picture to stretch. So while the
        source's eyes are open, the eye area of the latest such frame is kept (before any
        edit, a small crop), and while they are closed but the target's are open it is warped
        onto the target mesh and blended over the eyes. Blinks last a few frames, so the kept
        eyes are a fraction of a second old and lit the same.
        """
        if prepared.open_eyes <= 0:
            return None
        if edit.source_eyes >= DONOR_OPEN:
            roi = edit.region
            offset = np.array([roi.x0, roi.y0], dtype=np.float64)
            prepared.donor = EyeDonor(rgb[roi.y0:roi.y1, roi.x0:roi.x1].copy(),
                                      edit.source - offset, edit.frame_index)
            return None
        if prepared.donor is None or edit.target_eyes < edit.source_eyes + REOPEN_MARGIN:
            return None
        return prepared.donor

    @staticmethod
    def _paint_eyes(rgb: NDArray[np.uint8], edit: MeshEdit, donor: EyeDonor) -> None:
        roi = edit.region
        offset = np.array([roi.x0, roi.y0], dtype=np.float64)
        target = edit.target - offset
        h, w = donor.pixels.shape[:2]
        box = Roi(0, 0, min(w, roi.width), min(h, roi.height))
        if box.empty:
            return
        map_x, map_y, _ = edit.prepared.warp.maps(donor.points, target, box)
        warped = cv2.remap(donor.pixels, map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
        mask = np.zeros((box.height, box.width), dtype=np.uint8)
        iod = float(np.hypot(*(target[LEFT_EYE_OUTER] - target[RIGHT_EYE_OUTER])))
        for ring in (RIGHT_EYE_RING, LEFT_EYE_RING):
            hull = cv2.convexHull(np.round(target[list(ring)] * 16).astype(np.int32))
            cv2.fillConvexPoly(mask, hull, 255, lineType=cv2.LINE_8, shift=4)
        grow = max(1, round(iod * 0.06))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        mask = np.asarray(cv2.dilate(mask, kernel), dtype=np.uint8)
        alpha = feather(mask, max(1, grow))[..., None]
        view = rgb[roi.y0:roi.y0 + box.height, roi.x0:roi.x0 + box.width]
        view[:] = (view * (1.0 - alpha) + warped * alpha + 0.5).astype(np.uint8)

    @staticmethod
    def _exemplar(prepared: PreparedFace, rgb: NDArray[np.uint8], edit: MeshEdit
                  ) -> MouthExemplar:
        if prepared.exemplar is not None:
            return prepared.exemplar
        if prepared._synthetic is None:
            lm = prepared.face.landmarks
            recorded = np.asarray(lm.meshes[0] if prepared.face.still else
                                  lm.meshes[int(np.searchsorted(lm.frames, edit.frame_index))])
            prepared._synthetic = MouthExemplar.synthetic_for(rgb, recorded)
        return prepared._synthetic


def _bound(map_x: NDArray[np.float32], map_y: NDArray[np.float32], roi: Roi, edit: MeshEdit
           ) -> None:
    """No pixel samples farther from itself than the largest vertex displacement (+2 px).

    The coarse-grid warp gives a grid node next to a very thin target triangle (closed lids,
    closed lips) that triangle's affine map, which magnifies across it: unbounded, such a node
    would sample the background through a closed eye.
    """
    reach = np.float32(float(np.abs(edit.source - edit.target).max()) + 2.0)
    xs = np.arange(roi.x0, roi.x1, dtype=np.float32)[None, :]
    ys = np.arange(roi.y0, roi.y1, dtype=np.float32)[:, None]
    np.clip(map_x, xs - reach, xs + reach, out=map_x)
    np.clip(map_y, ys - reach, ys + reach, out=map_y)


CLOSED_LIDS: Final = (0.55, 0.15)
"""Target lid gap (fraction of the open one) where painted lids start, and where they are whole.

A warp that brings the lids together squashes the eye between them, iris and all: it reads
as half open, to a viewer and to a face mesh. Below the first fraction the eye opening is
painted over with the performer's own upper-lid skin (mirrored from just above the eye) and a
lash line, fully below the second."""


def _closure(prepared: PreparedFace, edit: MeshEdit) -> float:
    open_gap = prepared.open_eyes if prepared.open_eyes > 0 else lid_gap(edit.source)
    if open_gap <= 0:
        return 0.0
    ratio = lid_gap(edit.target) / open_gap
    start, whole = CLOSED_LIDS
    return float(np.clip((start - ratio) / (start - whole), 0.0, 1.0))


def _paint_closed_lids(rgb: NDArray[np.uint8], target: Points, closure: float) -> None:
    """Cover each eye's opening with lid skin (see :data:`CLOSED_LIDS`)."""
    frame_h, frame_w = rgb.shape[:2]
    for ring, lower in ((RIGHT_EYE_RING, RIGHT_EYE_LOWER), (LEFT_EYE_RING, LEFT_EYE_LOWER)):
        pts = target[list(ring), :2]
        x0, y0 = np.floor(pts.min(axis=0)).astype(int) - 2
        x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 3
        width = x1 - x0
        height = max(y1 - y0, int(0.35 * width))
        x0, x1 = max(x0, 0), min(x1, frame_w)
        if x1 <= x0 or y0 - height < 0 or y0 + height > frame_h:
            continue
        skin = rgb[y0 - height:y0, x0:x1][::-1].astype(np.float32)
        view = rgb[y0:y0 + height, x0:x1]
        mask = np.zeros(view.shape[:2], dtype=np.uint8)
        local = np.round((pts - (x0, y0)) * 16).astype(np.int32)
        cv2.fillConvexPoly(mask, cv2.convexHull(local), 255, lineType=cv2.LINE_AA, shift=4)
        grown = cv2.dilate(mask, np.ones((3, 3), np.uint8)).astype(np.float32) / 255.0
        alpha = cv2.GaussianBlur(grown, (0, 0), 1.0) * closure
        painted = view * (1.0 - alpha[..., None]) + skin * alpha[..., None]
        # The lash line where the lids meet: darker, along the lower lid.
        lash = np.zeros(view.shape[:2], dtype=np.float32)
        lid = np.round((target[list(lower), :2] - (x0, y0)) * 16).astype(np.int32)
        cv2.polylines(lash, [lid], False, 1.0, thickness=max(1, width // 25),
                      lineType=cv2.LINE_AA, shift=4)
        painted *= 1.0 - 0.45 * closure * lash[..., None]
        view[:] = np.clip(painted + 0.5, 0, 255).astype(np.uint8)


def lid_gap(points: Points) -> float:
    """Mean lid gap over eye width of both eyes (image positions of the surface vertices)."""
    gaps = np.linalg.norm(points[_LOWER_LID, :2] - points[_UPPER_LID, :2], axis=1)
    width = (np.linalg.norm(points[RIGHT_EYE_OUTER, :2] - points[RIGHT_EYE_INNER, :2])
             + np.linalg.norm(points[LEFT_EYE_OUTER, :2] - points[LEFT_EYE_INNER, :2]))
    return float(gaps.mean() * 2.0 / max(float(width), 1e-9))


def _no_crossing(canon: Points, upper: NDArray[np.int64], lower: NDArray[np.int64]) -> None:
    """Where an upper point would pass below its lower partner, meet both halfway."""
    gap = canon[lower, 1] - canon[upper, 1]
    bad = gap < 0
    if np.any(bad):
        mid = (canon[upper[bad], 1] + canon[lower[bad], 1]) / 2.0
        canon[upper[bad], 1] = mid
        canon[lower[bad], 1] = mid
