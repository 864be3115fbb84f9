"""The embedded lip-sync backend: a mesh warp of the lower face, driven by visemes, on a CPU.

Per frame and face (see ``model`` for the shape model):

1. the head pose (smoothed without lag) carries the performer's closed-mouth template, displaced
   by this frame's mouth shape (the drive's jaw calibrated to the performer's own range in the
   shot, :func:`calibrated`), onto the picture: the *target* mesh; the recorded mesh (lightly
   smoothed) is the *source*;
2. a piecewise-affine warp moves the source's lips, chin and jaw to the target, inside a ring of
   fixed anchors, so that nothing outside the lower face changes;
3. around the lips the texture comes from a *neutral reference* instead: the first frame of
   the track whose recorded mouth is at rest, warped to the same target (``_neutralised``),
   so the lips carry nothing of the original actor's articulation; it fades into the
   frame's own warp well inside the anchors;
4. where the target mouth is open, the interior is painted from the performer's own open mouth
   (``pipelines.faces.mouth``);
5. edits fade in and out over :data:`RAMP_FRAMES` where a track starts or ends, so a face that
   enters or leaves the picture does not snap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.geometry import mouth_opening
from pipelines.faces.landmarks import LIPS_INNER_LOWER, LIPS_INNER_UPPER, MOUTH_LEFT, MOUTH_RIGHT
from pipelines.faces.mouth import INNER_RING, OUTER_RING, MouthExemplar, paint_interior
from pipelines.faces.warp import PiecewiseAffineWarp, Roi
from pipelines.lipsync.interface import FaceTrackInput, FrameEdit, SpeechDrive
from pipelines.lipsync.model import OPEN_VOWEL_JAW, LowerFaceModel

Points = NDArray[np.float64]

RAMP_FRAMES: Final = 3
LIP_BODY_PULL: Final = 0.35
MIN_PAINTED_GAP_PX: Final = 1.0
CALIBRATION_GAIN: Final = (1.0, 2.5)
REFERENCE_MARGIN: Final = 0.01
"""A recorded frame whose inner-lip gap is within this (iod units) of the model's closed gap
shows the performer's mouth at rest: it may become the track's neutral reference."""
_MASK_SCALE: Final = 4
NEUTRAL_REACH: Final = 0.25
"""How far (× mouth width) beyond the lips the neutral reference's texture reaches before it
fades into the frame's own (over as much again)."""


@dataclass(eq=False)
class PreparedTrack:
    face: FaceTrackInput
    drive: SpeechDrive
    model: LowerFaceModel
    warp: PiecewiseAffineWarp
    exemplar: MouthExemplar | None
    strength: float = 1.0
    _synthetic: MouthExemplar | None = field(default=None, repr=False)
    _reference: tuple[NDArray[np.uint8], Points] | None = field(default=None, repr=False)
    """The neutral reference: a frame of this track with the mouth at rest, and its mesh
    (warp source positions), kept from the first such frame rendered."""


@dataclass(frozen=True, eq=False, slots=True)
class MeshEdit:
    frame_index: int
    track_id: int
    region: Roi
    source: Points          # [n + a, 2] image positions (vertices then anchors)
    target: Points
    mesh: Points            # [478, 2]: the recorded mesh with target positions where edited
    lips: Roi               # around the target lips: the warp is evaluated per pixel here
    prepared: PreparedTrack
    at_rest: bool = False   # the recorded mouth is closed: a candidate neutral reference


def _lip_body(model: LowerFaceModel, source: Points, target: Points) -> Points:
    """Where a closing mouth samples its lips' inner edges.

    When the target opening is smaller than the source's, the source's inner-lip points sit on
    the edge of its open mouth: a warp that brings them together drags teeth and shadow into
    the seam. Sampling them part of the way into the lip body (up to
    :data:`LIP_BODY_PULL` of the lip's thickness, in proportion to how much the mouth closes)
    shows lip where the lips meet.
    """
    inner, outer = model.lip_pairs
    half = len(inner) // 2  # upper lip points, then the lower lip's, in the same order
    src_gap = float(np.median(np.abs(source[inner[half:], 1] - source[inner[:half], 1])))
    tgt_gap = float(np.median(np.abs(target[inner[half:], 1] - target[inner[:half], 1])))
    if src_gap <= 1.0 or tgt_gap >= src_gap:
        return source
    pull = LIP_BODY_PULL * min(1.0, (src_gap - tgt_gap) / src_gap)
    out = source.copy()
    out[inner] += pull * (source[outer] - source[inner])
    return out


def calibrated(drive: SpeechDrive) -> SpeechDrive:
    """``drive`` with its jaw scaled so that its loud syllables reach the performer's range.

    The shape model maps ``jaw_open`` = :data:`~pipelines.lipsync.model.OPEN_VOWEL_JAW` to the
    performer's own 95th-percentile opening in the shot; a drive whose voiced frames peak lower
    (coarticulation and the loudness envelope both pull peaks down) would show this performer
    speaking with a smaller mouth than they do. Scaling the 95th percentile of the voiced jaw to
    that value (gain clamped to :data:`CALIBRATION_GAIN`) calibrates the amplitude to the
    performer. Closure, width and the other parameters are untouched.
    """
    jaw = drive.shapes[:, 0]
    voiced = jaw[jaw > 0.05]
    if voiced.size < 3:
        return drive
    peak = float(np.percentile(voiced, 95))
    gain = float(np.clip(OPEN_VOWEL_JAW / max(peak, 1e-6), *CALIBRATION_GAIN))
    shapes = drive.shapes.copy()
    shapes[:, 0] = np.minimum(jaw * gain, 1.0)
    return replace(drive, shapes=shapes)


class EmbeddedLipSync:
    """See the module docstring. ``strength`` scales every displacement (0 = untouched)."""

    name = "embedded-mesh"

    def __init__(self, *, strength: float = 1.0, grid_step: int = 4, neutralise: bool = True,
                 calibrate: bool = True) -> None:
        if not 0.0 <= strength <= 1.5:
            raise ValueError("strength must be within 0..1.5")
        self.strength = strength
        self.grid_step = grid_step
        self.neutralise = neutralise
        self.calibrate = calibrate

    def prepare(self, track: FaceTrackInput, drive: SpeechDrive) -> PreparedTrack:
        model = LowerFaceModel.measure(track.landmarks)
        if self.calibrate:
            drive = calibrated(drive)
        return PreparedTrack(track, drive, model,
                             PiecewiseAffineWarp(model.triangles, step=self.grid_step),
                             track.exemplar, self.strength)

    def edits(self, prepared: PreparedTrack) -> Iterator[MeshEdit]:
        face, model, drive = prepared.face, prepared.model, prepared.drive
        lm = face.landmarks
        for run in lm.runs():
            first, end = run
            for row in range(first, end):
                frame = int(lm.frames[row])
                if frame >= drive.frame_count:
                    return
                ramp = min(1.0, (row - first + 1) / RAMP_FRAMES, (end - row) / RAMP_FRAMES)
                pose = model.pose(lm, row, run)
                source = model.source(lm, row, run)
                modelled = pose.apply(model.displaced(drive.shapes[frame]))
                weight = (prepared.strength * ramp * model.follow)[:, None]
                target = source + weight * (modelled - source)
                source = _lip_body(model, source, target)
                anchors = pose.apply(model.anchors)
                src = np.concatenate([source[:, :2], anchors[:, :2]])
                tgt = np.concatenate([target[:, :2], anchors[:, :2]])
                region = Roi.around(np.concatenate([src, tgt]), face.frame_size, margin=3)
                lips = Roi.around(target[model.lip_pairs[1], :2], face.frame_size, margin=4)
                mesh = np.asarray(lm.meshes[row][:, :2], dtype=np.float64).copy()
                mesh[model.vertices] = target[:, :2]
                at_rest = (mouth_opening(lm.meshes[row])
                           <= model.closed_gap + REFERENCE_MARGIN)
                yield MeshEdit(frame, face.track_id, region, src, tgt, mesh, lips, prepared,
                               at_rest)

    def settled(self, edit: FrameEdit) -> bool:
        """Whether the frames before ``edit`` can no longer change how its track renders: the
        state a track keeps from the first frames rendered (the neutral lip reference, the
        synthetic mouth exemplar) is taken. A chunk of a long shot renders the frames before
        its range, on a throwaway copy, until then (``run_lipsync_range``)."""
        if not isinstance(edit, MeshEdit):
            return True
        prepared = edit.prepared
        return ((prepared._reference is not None or not self.neutralise)
                and (prepared.exemplar is not None or prepared._synthetic is not None))

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None:
        for edit in edits:
            if not isinstance(edit, MeshEdit):
                raise TypeError(f"{self.name} cannot render a {type(edit).__name__}")
            roi = edit.region
            if roi.empty:
                continue
            prepared = edit.prepared
            if prepared._reference is None and edit.at_rest and self.neutralise:
                prepared._reference = (rgb.copy(), edit.source.copy())
            map_x, map_y, covered = prepared.warp.maps(edit.source, edit.target, roi,
                                                       exact=edit.lips)
            warped = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            if prepared._reference is not None:
                warped = self._neutralised(prepared._reference, edit,
                                           np.asarray(warped, dtype=np.uint8))
            view = rgb[roi.y0:roi.y1, roi.x0:roi.x1]
            # Anchors map to themselves, so the warp is the identity along the covered area's
            # edge: a hard copy leaves no seam, and pixels outside stay bit-exact.
            cv2.copyTo(warped, covered, view)
            gap = edit.mesh[LIPS_INNER_LOWER] - edit.mesh[LIPS_INNER_UPPER]
            if float(np.hypot(*gap)) >= MIN_PAINTED_GAP_PX:
                paint_interior(rgb, self._exemplar(prepared, rgb, edit), edit.mesh, roi)

    @staticmethod
    def _neutralised(reference: tuple[NDArray[np.uint8], Points], edit: MeshEdit,
                     warped: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """``warped`` with the lips and the skin around them taken from the neutral reference.

        Warping the frame's own lips to the new shape keeps the texture of the original
        articulation (lips pressed, stretched, rounded, teeth edges where the actor spoke), which
        shows through as the old speech. The reference frame's lips, at rest, warped to the same
        target, carry none of it; they fade into the frame's own warp before the anchors, so the
        edit's outer edge is still the identity.
        """
        ref_rgb, ref_source = reference
        width = float(np.linalg.norm(edit.mesh[MOUTH_LEFT] - edit.mesh[MOUTH_RIGHT]))
        reach = max(1, round(NEUTRAL_REACH * width))
        outer = edit.mesh[list(OUTER_RING)]
        # Only the lips and 2 × reach around them change: warp and blend that rectangle alone.
        near = Roi.around(outer, edit.prepared.face.frame_size, margin=2 * reach)
        roi = edit.region
        sub = Roi(max(near.x0, roi.x0), max(near.y0, roi.y0), min(near.x1, roi.x1),
                  min(near.y1, roi.y1))
        if sub.empty:
            return warped
        rx, ry, _ = edit.prepared.warp.maps(ref_source, edit.target, sub, exact=edit.lips)
        neutral = cv2.remap(ref_rgb, rx, ry, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        # The fade is smooth at the scale of the reach: drawn at 1/_MASK_SCALE resolution
        # (a large dilation and blur at full size would cost more than the warp itself).
        k = max(1, min(_MASK_SCALE, reach // 2))
        lips = np.zeros((max(1, -(-sub.height // k)), max(1, -(-sub.width // k))), np.uint8)
        origin = (sub.x0, sub.y0)
        ring = np.round((outer - origin) * (16 / k)).astype(np.int32)
        cv2.fillPoly(lips, [ring], 255, lineType=cv2.LINE_AA, shift=4)
        r = max(1, round(reach / k))
        mask = cv2.dilate(lips, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,
                                                                             2 * r + 1)))
        mask = cv2.GaussianBlur(mask, (0, 0), r / 2.0)
        alpha = cv2.resize(mask, (sub.width, sub.height), interpolation=cv2.INTER_LINEAR)
        # Between the lips the frame's own warp stays: the reference's closed seam stretched
        # open reads as lip, where a real opening (or the painted interior) must read as one.
        inner = np.zeros_like(alpha)
        ring = np.round((edit.mesh[list(INNER_RING)] - origin) * 16).astype(np.int32)
        cv2.fillPoly(inner, [ring], 255, lineType=cv2.LINE_AA, shift=4)
        inner = cv2.GaussianBlur(inner, (0, 0), 1.0)
        weight = np.asarray(cv2.multiply(alpha, 255 - inner, scale=1.0 / 255.0,
                                         dtype=cv2.CV_32F), dtype=np.float32) / 255.0
        rest = np.float32(1.0) - weight
        view = warped[sub.y0 - roi.y0:sub.y1 - roi.y0, sub.x0 - roi.x0:sub.x1 - roi.x0]
        view[...] = cv2.blendLinear(np.ascontiguousarray(neutral), np.ascontiguousarray(view),
                                    weight, rest)
        return warped

    @staticmethod
    def _exemplar(prepared: PreparedTrack, rgb: NDArray[np.uint8], edit: MeshEdit
                  ) -> MouthExemplar:
        if prepared.exemplar is not None:
            return prepared.exemplar
        if prepared._synthetic is None:
            recorded = prepared.face.landmarks.mesh(edit.frame_index)
            assert recorded is not None  # an edit exists only where the track was recorded
            prepared._synthetic = MouthExemplar.synthetic_for(rgb, recorded)
        return prepared._synthetic
