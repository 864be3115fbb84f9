"""Stream a reenactment: decode the source (or repeat a still) → move the chosen faces → encode.

``run_reenact`` mirrors ``pipelines.lipsync.run_lipsync`` and is just as policy-free: it
reenacts exactly the faces it is given with the motions it is given (the studio gives it only
faces whose performer, *and* whose driver, have a fresh allow decision; each motion carries its
driver's identity reference for that check) and writes where it is told. What it guarantees:

* **Frame-accurate.** A *video* source keeps its frame count, rate, size, time base, colour
  tags, rotation and start timecode (``VideoWriter(like=reader.output)``); the motion is
  resampled to the source's frame times (``motion.plan_drive``), frames past the driver's end
  hold its last pose, frames without a chosen face are re-encoded untouched. A *still* source
  (:class:`StillSource`) becomes a video of the driver's duration at the still's chosen rate
  (the longest motion's duration when several faces are driven), the still's size, no
  timecode.
* **Streaming.** One frame in hand and one pending edit per face; the source's meshes are read
  from the analysis's memory-mapped files. The drive (a few KB per frame, no pixels) is the only
  thing held whole.
* **Guarded.** As in lip-sync, edits reach a frame only through
  :class:`pipelines.edits.EditGuard` (the job's ``permits``; pixels outside a permitted face
  on a permitted frame stay the source's, bit for bit); the result records, per face, the
  frames, runs and rectangle that changed (for the C2PA ``changes``) and what was dropped.
* **All or nothing.** On any error or cancellation the partial output and sidecar are deleted.
* **Reported.** Clamped poses, bounded expression, faceless driver frames and frames past the
  driver's end are counted per face (``ClampReport``) in the result and in the sidecar JSON,
  with the options and each driver's identity reference.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from pipelines.edits import EditGuard, EditPermits, GuardReport, TrackChange
from pipelines.edits.ranged import at_frames, edit_range
from pipelines.edits.stream import (
    READ_AHEAD,
    FrameHook,
    FrameWriter,
    Progress,
    StreamControls,
    edit_stream,
)
from pipelines.errors import PipelineInputError
from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.geometry import mouth_opening
from pipelines.faces.mouth import MIN_EXEMPLAR_GAP, MouthExemplar
from pipelines.faces.scan import faces_in_image
from pipelines.media import SourceAudio, VideoReader, VideoWriter
from pipelines.media.audio import Audio
from pipelines.media.probe import VideoStreamInfo
from pipelines.media.still import check_still
from pipelines.reenact.interface import (
    ClampReport,
    FrameEdit,
    MotionDrive,
    ReenactBackend,
    ReenactOptions,
    SourceFace,
)
from pipelines.reenact.motion import Motion, plan_drive

SIDECAR_SCHEMA = "consent-dubbing-studio/reenact/1"


class ReenactError(PipelineInputError):
    """The job cannot run as asked (no face in the still, unknown face, bad rate, …)."""


@dataclass(frozen=True, eq=False)
class StillSource:
    """A still image to animate; faces are numbered left to right from 0."""

    image: Path
    frame_rate: Fraction = Fraction(25)


@dataclass(frozen=True)
class StillMesh:
    """A still's one mesh, shaped like ``TrackLandmarks`` (frame 0)."""

    meshes: NDArray[np.float32]
    frames: NDArray[np.int32]


@dataclass(frozen=True, eq=False)
class ReenactJob:
    source: ShotAnalysis | StillSource
    motions: Mapping[int, Motion]
    """Track id (a still: face number) → the motion that drives it. Others are not touched."""
    output: Path
    options: ReenactOptions = field(default_factory=ReenactOptions)
    audio: Audio | SourceAudio | None = None
    """The output's audio track (e.g. the driver's dialogue); None keeps no audio."""
    codec: Literal["h264", "prores"] = "h264"
    crf: int = 17
    preset: str = "veryfast"
    """x264 settings: veryfast at CRF 17 matched faster at CRF 18 on GRID (PSNR 40.4 dB outside
    the face, same size) at 1.5× the encoding speed."""
    offset: int = 0
    """Output frame at which the driver's first frame plays (video sources)."""
    sidecar: Path | None = None
    """Reenactment record JSON; default: the output's name + ``.reenact.json``."""
    permits: EditPermits = field(kw_only=True)
    """What may be edited (tracks; a still: face numbers, frames of the output video).
    Required: no default can be safe."""


@dataclass(frozen=True)
class ReenactResult:
    output: Path
    sidecar: Path
    backend: str
    frame_count: int
    frame_rate: Fraction
    changes: tuple[TrackChange, ...]
    reports: Mapping[int, ClampReport]
    seconds: float
    guard: GuardReport = field(default_factory=GuardReport)

    @property
    def fps(self) -> float:
        return self.frame_count / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class _StillFace:
    """A still's face mesh, the same on every output frame (for the guard)."""

    landmarks: NDArray[np.float32]

    def mesh(self, frame_index: int) -> NDArray[np.float32]:
        return self.landmarks


def load_still(path: Path) -> NDArray[np.uint8]:
    check_still(path)  # refused from its header when too large to decode
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ReenactError(f"{path.name}: not a readable image")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def run_reenact(job: ReenactJob, backend: ReenactBackend, *,
                progress: Progress | None = None,
                cancelled: Callable[[], bool] | None = None,
                frame_hook: FrameHook | None = None) -> ReenactResult:
    """Render ``job`` with ``backend`` (module docstring)."""
    started = time.perf_counter()
    if not job.motions:
        raise ReenactError("no face to reenact")
    output = Path(job.output)
    sidecar = job.sidecar or output.with_name(output.name + ".reenact.json")
    drives: dict[int, MotionDrive] = {}
    streams_out: list[EditGuard] = []
    try:
        if isinstance(job.source, StillSource):
            written, rate = _run_still(job, job.source, backend, drives, progress, cancelled,
                                       frame_hook, streams_out)
        else:
            written, rate = _run_video(job, job.source, backend, drives, progress, cancelled,
                                       frame_hook, streams_out)
        guard = streams_out[0]
        changes = guard.changes
        write_sidecar(sidecar, job, backend.name, rate, written, changes, drives, guard.report)
    except BaseException:
        output.unlink(missing_ok=True)
        sidecar.unlink(missing_ok=True)
        raise
    return ReenactResult(output, sidecar, backend.name, written, rate,
                         tuple(changes.values()),
                         {tid: d.report for tid, d in drives.items()},
                         time.perf_counter() - started, guard.report)


def plan_drives(job: ReenactJob, analysis: ShotAnalysis) -> dict[int, MotionDrive]:
    """Each reenacted face's drive over a video source's frames (the motion resampled to
    them): what a whole render, each range of it and their assembly all use."""
    video = analysis.info.video
    if video is None:
        raise ReenactError(f"{analysis.source.name} has no video stream")
    total = analysis.scan.frame_count
    return {track_id: plan_drive(motion, video.frame_rate, total, job.options,
                                 offset=job.offset)
            for track_id, motion in job.motions.items()}


def reenact_guard(job: ReenactJob, analysis: ShotAnalysis, backend: ReenactBackend,
                  drives: Mapping[int, MotionDrive]) -> EditGuard:
    """The edit guard over each reenacted face's edit stream of a video source (a whole
    render's, and a range's: ``run_reenact_range``)."""
    video = analysis.info.video
    if video is None:
        raise ReenactError(f"{analysis.source.name} has no video stream")
    size = (video.width, video.height)
    iterators: dict[int, Iterator[FrameEdit]] = {}
    meshes = {}
    for track_id in job.motions:
        face = SourceFace(track_id, analysis.landmarks(track_id),
                          analysis.exemplars.get(track_id), size)
        meshes[track_id] = analysis.landmarks(track_id)
        iterators[track_id] = iter(backend.edits(backend.prepare(face, drives[track_id])))
    others = {t.track_id: analysis.landmarks(t.track_id) for t in analysis.tracks}
    return EditGuard(job.permits, meshes, iterators, backend.render, size, others)


def _run_video(job: ReenactJob, analysis: ShotAnalysis, backend: ReenactBackend,
               drives: dict[int, MotionDrive], progress: Progress | None,
               cancelled: Callable[[], bool] | None, frame_hook: FrameHook | None,
               streams_out: list[EditGuard]) -> tuple[int, Fraction]:
    total = analysis.scan.frame_count
    drives.update(plan_drives(job, analysis))
    guard = reenact_guard(job, analysis, backend, drives)
    streams_out.append(guard)
    with VideoReader(analysis.source, on_vfr="conform", read_ahead=READ_AHEAD) as reader, \
            VideoWriter(job.output, reader.output, codec=job.codec, crf=job.crf,
                        preset=job.preset, audio=job.audio) as writer:
        written = edit_stream(reader, guard, writer, total=total, what="reenactment",
                              controls=StreamControls(progress, cancelled, frame_hook))
    if written != total:
        raise ReenactError(f"decoded {written} frames, the analysis saw {total}: the source "
                           "changed between the two reads")
    return written, reader.output.frame_rate


def run_reenact_range(job: ReenactJob, backend: ReenactBackend, frames: tuple[int, int],
                      writer: FrameWriter, *, controls: StreamControls
                      ) -> EditGuard:
    """Frames ``first..last`` of a video source's ``job`` edited (guarded, hooked) into
    ``writer`` exactly as ``run_reenact`` edits them, for a range of a long shot rendered
    apart (``studio.render.chunks``); returns the guard (its changes and report cover the
    range). A backend that carries state from frame to frame names the frames
    before the range that leave it (``carried_from``: the embedded backend's synthetic mouth
    and blink donor); they are edited first, onto throwaway copies
    (``pipelines.edits.ranged``)."""
    analysis = job.source
    if not isinstance(analysis, ShotAnalysis):
        raise ReenactError("only a video source is rendered in frame ranges")
    first, last = frames
    drives = plan_drives(job, analysis)
    guard = reenact_guard(job, analysis, backend, drives)
    warm = None
    carried = getattr(backend, "carried_from", None)
    if carried is not None and first > 0:
        # A second, fresh set of edit streams (the real ones must start at frame 0): only
        # their frame numbers and what the guard would do with them are looked at.
        preview = reenact_guard(job, analysis, backend, drives)
        # (The guard took each stream's first edit already: it is pending.)
        streams = (itertools.chain([] if edit is None else [edit], preview.iterators[tid])
                   for tid, edit in preview.pending.items())
        before = itertools.chain.from_iterable(
            itertools.takewhile(lambda e: e.frame_index < first, it) for it in streams)
        warm = at_frames(carried(before, preview.would_apply))
    with VideoReader(analysis.source, on_vfr="conform", read_ahead=READ_AHEAD) as reader:
        written = edit_range(reader, guard, frames, writer, controls=controls,
                             what="reenactment", warm=warm)
    if written != last - first + 1:
        raise ReenactError(f"decoded {written} frames of {first}-{last}: the source changed "
                           "between the analysis and this range")
    return guard


def _run_still(job: ReenactJob, still: StillSource, backend: ReenactBackend,
               drives: dict[int, MotionDrive], progress: Progress | None,
               cancelled: Callable[[], bool] | None, frame_hook: FrameHook | None,
               streams_out: list[EditGuard]) -> tuple[int, Fraction]:
    rgb = load_still(Path(still.image))
    rate = Fraction(still.frame_rate)
    if rate <= 0:
        raise ReenactError("a still's frame rate must be positive")
    h, w = rgb.shape[:2]
    faces = faces_in_image(rgb, max_faces=max(4, max(job.motions) + 1))
    total = max(max(1, round(m.duration * rate)) for m in job.motions.values())
    iterators: dict[int, Iterator[FrameEdit]] = {}
    meshes = {}
    for index, motion in job.motions.items():
        if not 0 <= index < len(faces):
            raise ReenactError(f"{Path(still.image).name}: no face {index} "
                               f"({len(faces)} found)")
        mesh = faces[index].landmarks
        meshes[index] = _StillFace(mesh)
        exemplar = (MouthExemplar.capture(rgb, mesh, 0)
                    if mouth_opening(mesh) >= MIN_EXEMPLAR_GAP else None)
        face = SourceFace(index, StillMesh(mesh[None].copy(), np.zeros(1, np.int32)),
                          exemplar, (w, h), still=True)
        drives[index] = plan_drive(motion, rate, total, job.options)
        iterators[index] = iter(backend.edits(backend.prepare(face, drives[index])))
    others = {i: _StillFace(f.landmarks) for i, f in enumerate(faces)}
    guard = EditGuard(job.permits, meshes, iterators, backend.render, (w, h), others)
    streams_out.append(guard)
    like = VideoStreamInfo.new(w, h, rate, frame_count=total)
    with VideoWriter(job.output, like, codec=job.codec, crf=job.crf, preset=job.preset,
                     audio=job.audio) as writer:
        # A fresh copy of the still per frame: the guard edits it in place.
        edit_stream(((index, rgb.copy()) for index in range(total)), guard, writer,
                    total=total, what="reenactment",
                    controls=StreamControls(progress, cancelled, frame_hook))
    return total, rate


def write_sidecar(path: Path, job: ReenactJob, backend: str, rate: Fraction, frames: int,
                   changes: Mapping[int, TrackChange], drives: Mapping[int, MotionDrive],
                   report: GuardReport) -> None:
    source = job.source
    name = Path(source.image).name if isinstance(source, StillSource) else source.source.name
    document: dict[str, Any] = {
        "schema": SIDECAR_SCHEMA,
        "source": name,
        "still": isinstance(source, StillSource),
        "frame_rate": f"{rate.numerator}/{rate.denominator}",
        "frame_count": frames,
        "backend": backend,
        "options": job.options.to_json(),
        "segments": {"authorised": [s.to_json() for s in job.permits.segments],
                     "edited": [{"track_id": c.track_id, "first_frame": a, "last_frame": b}
                                for c in changes.values() for a, b in c.runs]},
        "guard": report.to_json(),
        "faces": [
            {
                "track_id": tid,
                "driver": {**job.motions[tid].identity.to_json(),
                           "source": job.motions[tid].source_name,
                           "frame_rate": str(job.motions[tid].frame_rate),
                           "frame_count": job.motions[tid].frame_count,
                           "neutral_frame": job.motions[tid].neutral_frame},
                "edited_frames": change.frames,
                "first_frame": change.first_frame,
                "last_frame": change.last_frame,
                "region": change.box,
                "report": drives[tid].report.to_json(),
            }
            for tid, change in changes.items()
        ],
    }
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(json.dumps(document, indent=1), encoding="utf-8")
    os.replace(tmp, path)
