"""The embedded lip-sync backend: a mesh warp of the lower face, driven by visemes, on a CPU.

Per frame and face (see ``model`` for the shape model):

1. the head pose (smoothed without lag) carries the performer's closed-mouth template, displaced
   by this frame's mouth shape, onto the picture: the *target* mesh; the recorded mesh (lightly
   smoothed) is the *source*;
2. a piecewise-affine warp moves the source's lips, chin and jaw to the target, inside a ring of
   fixed anchors, so that nothing outside the lower face changes;
3. where the target mouth is open, the interior is painted from the performer's own open mouth
   (``pipelines.faces.mouth``);
4. edits fade in and out over :data:`RAMP_FRAMES` where a track starts or ends, so a face that
   enters or leaves the picture does not snap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Final

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.faces.landmarks import LIPS_INNER_LOWER, LIPS_INNER_UPPER
from pipelines.faces.mouth import MouthExemplar, paint_interior
from pipelines.faces.warp import PiecewiseAffineWarp, Roi
from pipelines.lipsync.interface import FaceTrackInput, FrameEdit, SpeechDrive
from pipelines.lipsync.model import LowerFaceModel

Points = NDArray[np.float64]

RAMP_FRAMES: Final = 3
LIP_BODY_PULL: Final = 0.35
MIN_PAINTED_GAP_PX: Final = 1.0


@dataclass(eq=False)
class PreparedTrack:
    face: FaceTrackInput
    drive: SpeechDrive
    model: LowerFaceModel
    warp: PiecewiseAffineWarp
    exemplar: MouthExemplar | None
    strength: float = 1.0
    _synthetic: MouthExemplar | None = field(default=None, repr=False)


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


class EmbeddedLipSync:
    """See the module docstring. ``strength`` scales every displacement (0 = untouched)."""

    name = "embedded-mesh"

    def __init__(self, *, strength: float = 1.0, grid_step: int = 4) -> None:
        if not 0.0 <= strength <= 1.5:
            raise ValueError("strength must be within 0..1.5")
        self.strength = strength
        self.grid_step = grid_step

    def prepare(self, track: FaceTrackInput, drive: SpeechDrive) -> PreparedTrack:
        model = LowerFaceModel.measure(track.landmarks)
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
                yield MeshEdit(frame, face.track_id, region, src, tgt, mesh, lips, prepared)

    def render(self, rgb: NDArray[np.uint8], edits: Sequence[FrameEdit]) -> None:
        for edit in edits:
            if not isinstance(edit, MeshEdit):
                raise TypeError(f"{self.name} cannot render a {type(edit).__name__}")
            roi = edit.region
            if roi.empty:
                continue
            prepared = edit.prepared
            map_x, map_y, covered = prepared.warp.maps(edit.source, edit.target, roi,
                                                       exact=edit.lips)
            warped = cv2.remap(rgb, map_x, map_y, cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
            view = rgb[roi.y0:roi.y1, roi.x0:roi.x1]
            # Anchors map to themselves, so the warp is the identity along the covered area's
            # edge: a hard copy leaves no seam, and pixels outside stay bit-exact.
            cv2.copyTo(warped, covered, view)
            gap = edit.mesh[LIPS_INNER_LOWER] - edit.mesh[LIPS_INNER_UPPER]
            if float(np.hypot(*gap)) >= MIN_PAINTED_GAP_PX:
                paint_interior(rgb, self._exemplar(prepared, rgb, edit), edit.mesh, roi)

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
