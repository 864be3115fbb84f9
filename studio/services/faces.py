"""Faces: enrol a performer from reference media, scan a shot for who is who, purge the
templates of performers without an active grant."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from studio.errors import InputNotFoundError, InputRejectedError, UsageError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from pipelines.faces.analysis import ShotAnalysis
    from pipelines.faces.landmarks import FaceObservation
    from studio.identity import EnrolmentReport, IdentifyResult


@dataclass(frozen=True)
class Enrolment:
    performer_id: str
    files: tuple[Path, ...]
    officer: str
    per_file: int = 8


def enrol(ctx: AppContext, req: Enrolment) -> EnrolmentReport:
    """Templates from the good frames of each file, stored encrypted (none if no usable face:
    the report says why frame by frame)."""
    from pipelines.errors import PipelineError
    from studio.identity import embedder_for
    from studio.identity import enrol as enrol_files

    if not req.performer_id.strip():
        raise UsageError("choose the performer to enrol")
    if not req.files:
        raise UsageError("give one or more reference images or videos")
    _exist(req.files)
    try:
        return enrol_files(ctx.registry, req.performer_id, list(req.files),
                           embedder_for(ctx.settings), officer=req.officer,
                           per_file=req.per_file)
    except PipelineError as exc:
        raise InputRejectedError(f"cannot enrol from the given files: {exc}") from None
    except ValueError as exc:  # the face and still readers' own checks
        raise InputRejectedError(f"cannot enrol from the given files: {exc}") from None


Thumbnail = Callable[["NDArray[np.uint8]", tuple[float, float, float, float]],
                    "NDArray[np.uint8]"]
"""``thumbnail(rgb, face_box)`` → a picture of that face (the front end's presentation)."""


@dataclass(frozen=True)
class ShotScan:
    identity: IdentifyResult
    thumbnails: dict[str, NDArray[np.uint8]] = field(default_factory=dict)
    """Track label → a picture of its face on the track's first frame (when asked for)."""
    reused: bool = False
    """The studio had this shot's sealed analysis already (studio.render.analysis_cache)."""


def scan_shot(ctx: AppContext, video: Path) -> IdentifyResult:
    """Track the faces of a shot and match each track to the performers a grant links."""
    return scan_shot_for_render(ctx, video).identity


def scan_shot_for_render(ctx: AppContext, video: Path, thumbnail: Thumbnail | None = None
                         ) -> ShotScan:
    """The render's own analysis of ``video`` (kept, sealed, for the render that follows:
    the render then reuses it) and who each face is, by the render's own identity trace, so
    a scan, a consent check and the render see the same tracks and verdicts."""
    from pipelines.hashing import sha256_file
    from pipelines.media import probe
    from studio.identity import embedder_for, identify_scan
    from studio.render.analysis_cache import analyse_for_render, identity_gap_frames

    _exist([video])
    embedder = embedder_for(ctx.settings)
    info = probe(video)
    if info.video is None:
        raise InputRejectedError(f"{video.name} has no video stream")
    thumbs: dict[str, NDArray[np.uint8]] = {}

    def first_faces(_index: int, rgb: NDArray[np.uint8],
                    faces: list[tuple[int, FaceObservation]]) -> None:
        for track_id, obs in faces:
            if thumbnail is not None and f"t{track_id}" not in thumbs:
                thumbs[f"t{track_id}"] = thumbnail(rgb, obs.bbox)

    with tempfile.TemporaryDirectory(prefix="studio-scan-") as work:
        analysis, reused = analyse_for_render(ctx.settings, video, sha256_file(video), info,
                                              embedder, Path(work), on_frame=first_faces)
        if reused and thumbnail is not None:
            thumbs = _thumbnails_of(analysis, thumbnail)
        seen = [analysis.landmarks(t.track_id).frames for t in analysis.tracks]
        per_frame = np.bincount(np.concatenate(seen)) if seen else np.zeros(0, np.int64)
        identity = identify_scan(analysis.scan, ctx.registry, embedder, max_faces=8,
                                 saturated_frames=int((per_frame >= 8).sum()),
                                 max_gap=identity_gap_frames(ctx.settings,
                                                             info.video.frame_rate))
    return ShotScan(identity, thumbs, reused)


def _thumbnails_of(analysis: ShotAnalysis, thumbnail: Thumbnail) -> dict[str, NDArray[np.uint8]]:
    """Each track's face on its first frame, from a kept analysis (its meshes give the box;
    the frames are decoded up to the last track's first frame)."""
    from pipelines.media import VideoReader

    firsts: dict[int, list[int]] = {}
    for t in analysis.tracks:
        firsts.setdefault(t.first_frame, []).append(t.track_id)
    thumbs: dict[str, NDArray[np.uint8]] = {}
    if not firsts:
        return thumbs
    with VideoReader(analysis.source, on_vfr="conform") as reader:
        for frame in reader:
            for track_id in firsts.pop(frame.index, []):
                mesh = analysis.landmarks(track_id).mesh(frame.index)
                if mesh is None:
                    continue
                h, w = frame.rgb.shape[:2]
                xs, ys = np.clip(mesh[:, 0], 0, w), np.clip(mesh[:, 1], 0, h)
                box = (float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max()))
                thumbs[f"t{track_id}"] = thumbnail(frame.rgb, box)
            if not firsts:
                break
    return thumbs


def purge(ctx: AppContext) -> dict[str, int]:
    """Delete the templates of performers who no longer have an active grant."""
    return ctx.registry.purge_templates()


def _exist(files: Sequence[Path]) -> None:
    for f in files:
        if not Path(f).is_file():
            raise InputNotFoundError(f"{f} is not a file")
