"""A long shot rendered as frame-range chunks, and put back together frame-accurately.

Render workers (``studio.executors``) may each take a range of a long shot's frames, for a
lip-sync or a reenactment of a video (:func:`chunkable`). The output must be the very file a
single task renders, so the design is:

- **One analysis, shipped.** The shot is tracked once, on the head (step 2, cached by
  :mod:`studio.render.analysis_cache`); every chunk gets the same :class:`PipelineWork` (its
  landmarks are files in the job's staging folder, on storage every node sees, which each
  worker reads into memory and checks against its token's digest: ``studio.render.meshes``).
  A chunk's backend walks each track from its start and passes over the edits before
  its range, so what it derives along a track (the ramps into and out of a face run, the
  performer's shape model, measured over the whole track) is the whole shot's.
- **State carried from frame to frame is reached, not guessed.** What a backend keeps from
  earlier frames (the embedded lip-sync's neutral lip reference, the embedded reenactment's
  synthetic mouth and the last open-eyed frame it pastes over a blink) is taken by rendering
  the frames before the range that leave it, onto throwaway copies
  (:mod:`pipelines.edits.ranged`): a chunk's faces are the whole render's, pixel for pixel.
- **Workers do the per-frame work, the head encodes once.** A worker decodes up to its range,
  edits its frames through the edit guard, watermarks them (by their index in the shot) and
  stores them *losslessly* (FFV1, BGR: bit-exact) in its attempt folder. The head
  reads the chunks in order and encodes them with the render's one :class:`VideoWriter`
  (``like`` the source's conformed stream: frame count, rate, size, time base, colour tags,
  start timecode; the dub mix or the shot's audio). H.264 chunks encoded apart and
  concatenated would each start a GOP and a rate-control state of their own, so their decoded
  pixels would differ from a single render's; one encode over the same RGB frames gives the
  same stream. The cost: the head encodes every frame (x264 ``veryfast``: several hundred
  frames a second at SD, a fraction of a render's per-frame cost) and the chunks need
  lossless scratch space (FFV1 about halves raw RGB) until they are assembled.
- **The sidecar and the result are merged**: the guard's changes and report of each chunk,
  in frame order, are what the single render's guard would have recorded; a reenactment's
  drives (the motion resampled to the shot) are planned again on the head, as each chunk
  planned them.

Outside the authorised faces every pixel is the source's, watermarked: identical whatever
the backend. A neural backend batches frames, and a batch cut at a chunk's edge may round
differently inside the face; a neural reenactment is not chunked (:func:`chunkable`).
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from av.video.stream import VideoStream
from numpy.typing import NDArray

from pipelines.edits import GuardReport, TrackChange
from pipelines.edits.stream import StreamControls
from pipelines.faces.analysis import ShotAnalysis
from pipelines.lipsync import LipSyncJob, LipSyncResult
from pipelines.lipsync.pipeline import run_lipsync_range
from pipelines.lipsync.pipeline import write_sidecar as write_lipsync_sidecar
from pipelines.media import Frame, VideoReader, VideoWriter
from pipelines.reenact import ReenactJob, ReenactResult
from pipelines.reenact.pipeline import plan_drives, run_reenact_range
from pipelines.reenact.pipeline import write_sidecar as write_reenact_sidecar
from studio import backends
from studio.errors import RenderWorkerError
from studio.provenance.watermark import WatermarkEmbedder
from studio.render.pipeline_step import (
    PipelineResult,
    PipelineScope,
    PipelineWork,
    lipsync_job,
    reenact_backend,
    reenact_job,
)
from studio.settings import Settings

FrameRange = tuple[int, int]

#: The lossless store of a chunk's frames: FFV1 in Matroska, packed BGR (no colour
#: conversion, so decoding gives back the very bytes written).
_STORE_CODEC, _STORE_PIX_FMT = "ffv1", "bgr0"


def chunk_ranges(total: int, chunk_frames: int) -> list[FrameRange]:
    """``total`` frames in equal ranges of at most ``chunk_frames`` (first, last inclusive);
    one range, the whole shot, when it fits in one."""
    if total <= 0:
        return []
    count = max(1, math.ceil(total / max(1, chunk_frames)))
    size = math.ceil(total / count)
    return [(a, min(total, a + size) - 1) for a in range(0, total, size)]


def chunk_id(frames: FrameRange) -> str:
    """The chunk's name in tokens and staging: ``f0000300-0000599``."""
    return f"f{frames[0]:07d}-{frames[1]:07d}"


def chunkable(work: PipelineWork) -> bool:
    """Whether ``work`` can be split by frames: a lip-sync or a reenactment of a video shot.
    A still's reenactment, and one by a neural backend, are one task: the still is one
    small image, and the neural reenactment extracts the driving performance's motion over
    its whole length before its first frame, which every range would repeat."""
    if not isinstance(work.source, ShotAnalysis):
        return False
    op = work.request.operation
    return op == "lipsync" or (op == "reenact" and not work.choice.neural)


@dataclass(frozen=True)
class ChunkRender:
    """What a worker hands back for one range: its lossless frames and its guard's record."""

    frames: FrameRange
    store: Path
    backend: str
    changes: tuple[TrackChange, ...]
    report: GuardReport
    note: str
    seconds: float = 0.0
    #: SHA-256 over the RGB frames the worker stored (:attr:`FrameStore.digest`): the head
    #: encodes a chunk only if its decoded frames give this, so a store swapped or edited in
    #: shared staging after the worker wrote it is never published.
    digest: str = ""

    def rebased(self, folder: Path) -> ChunkRender:
        """The same chunk with its store under ``folder`` (its attempt folder was renamed)."""
        return ChunkRender(self.frames, folder / self.store.name, self.backend, self.changes,
                           self.report, self.note, self.seconds, self.digest)


class FrameStore:
    """Write RGB frames losslessly (``write``, like a :class:`VideoWriter`)."""

    def __init__(self, path: Path, width: int, height: int) -> None:
        self.path = path
        self._out = av.open(str(path), "w", format="matroska")
        stream = self._out.add_stream(_STORE_CODEC, rate=25)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, _STORE_PIX_FMT
        self._stream = stream
        self.frames_written = 0
        self._hash = hashlib.sha256()

    @property
    def digest(self) -> str:
        """SHA-256 over the frames written so far (:func:`frames_digest`)."""
        return self._hash.hexdigest()

    def write(self, frame: Frame | NDArray[np.uint8]) -> None:
        rgb = np.ascontiguousarray(frame.rgb if isinstance(frame, Frame) else frame)
        _hash_frame(self._hash, rgb)
        video = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        video = video.reformat(format=_STORE_PIX_FMT)
        video.pts = self.frames_written
        self._out.mux(self._stream.encode(video))
        self.frames_written += 1

    def close(self) -> None:
        self._out.mux(self._stream.encode(None))
        self._out.close()

    def abort(self) -> None:
        self._out.close()
        self.path.unlink(missing_ok=True)


def _hash_frame(h: hashlib._Hash, rgb: NDArray[np.uint8]) -> None:
    # The shape too: the same bytes cut into other frames are other frames.
    h.update(np.asarray(rgb.shape, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())


def read_store(path: Path) -> Iterator[NDArray[np.uint8]]:
    """The frames of a :class:`FrameStore`, in order, as RGB."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)


def render_range(work: PipelineWork, scope: PipelineScope, settings: Settings,
                 frames: FrameRange, folder: Path, *,
                 progress: Callable[[int, int], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> ChunkRender:
    """The worker's part: frames ``first..last`` of ``work`` edited within ``scope``,
    watermarked by their index in the shot and stored losslessly in ``folder``."""
    started = time.perf_counter()
    analysis = work.source
    assert isinstance(analysis, ShotAnalysis)
    video = analysis.info.video
    assert video is not None
    marker = WatermarkEmbedder(scope.payload)

    def watermark(index: int, rgb: NDArray[np.uint8]) -> None:
        rgb[...] = marker.mark(rgb, index)

    controls = StreamControls(progress, cancelled, watermark)
    store = FrameStore(folder / f"{chunk_id(frames)}.mkv", video.width, video.height)
    try:
        if work.request.operation == "lipsync":
            job, note = lipsync_job(work, analysis, scope, settings)
            backend = backends.lipsync_backend(settings, work.choice)
            bind = getattr(backend, "bind_source", None)
            if bind is not None:  # neural backends batch frames read ahead from the source
                bind(analysis.source)
            name = backend.name
            _, guard = run_lipsync_range(job, backend, frames, store, controls=controls)
        else:
            rjob, note = reenact_job(work, scope, settings)
            reenactor = reenact_backend(work, rjob, settings)
            name = reenactor.name
            guard = run_reenact_range(rjob, reenactor, frames, store, controls=controls)
        store.close()
    except BaseException:
        store.abort()
        raise
    return ChunkRender(frames, store.path, name, tuple(guard.changes.values()),
                       guard.report, note, time.perf_counter() - started, store.digest)


def assemble(work: PipelineWork, scope: PipelineScope, settings: Settings,
             chunks: Sequence[ChunkRender], *, seconds: float,
             cancelled: Callable[[], bool] | None = None) -> tuple[PipelineResult, str]:
    """The head's part: the chunks, in frame order, encoded once into the render a single
    task would have written (module docstring), with its sidecar."""
    analysis = work.source
    assert isinstance(analysis, ShotAnalysis)
    total = analysis.scan.frame_count
    ordered = sorted(chunks, key=lambda c: c.frames)
    expected = 0
    for chunk in ordered:
        if chunk.frames[0] != expected:
            raise ValueError(f"the chunks do not cover frame {expected} exactly once")
        expected = chunk.frames[1] + 1
    if expected != total:
        raise ValueError(f"the chunks end at frame {expected - 1}, the shot at {total - 1}")
    job: LipSyncJob | ReenactJob
    if work.request.operation == "lipsync":
        job, note = lipsync_job(work, analysis, scope, settings)
    else:
        job, note = reenact_job(work, scope, settings)
    started = time.perf_counter()
    with VideoReader(analysis.source, on_vfr="conform") as reader:
        like = reader.output
    written = 0
    try:
        with VideoWriter(job.output, like, codec=job.codec, crf=job.crf, preset=job.preset,
                         audio=job.audio) as writer:
            for chunk in ordered:
                for rgb in _verified_frames(chunk):
                    if cancelled is not None and cancelled():
                        raise InterruptedError(f"{work.request.operation} cancelled")
                    writer.write(rgb)
                    written += 1
    except RenderWorkerError:
        job.output.unlink(missing_ok=True)
        raise
    if written != total:
        job.output.unlink(missing_ok=True)
        raise ValueError(f"the chunks hold {written} frames, the shot {total}")
    report = merge_reports([c.report for c in ordered])
    backend, rate = ordered[0].backend, like.frame_rate
    elapsed = seconds + time.perf_counter() - started
    if isinstance(job, LipSyncJob):
        changes = merge_changes([c.changes for c in ordered], list(job.drives))
        sidecar = job.sidecar or job.output.with_name(job.output.name + ".visemes.json")
        write_lipsync_sidecar(sidecar, job, backend, rate, total, changes, report)
        return LipSyncResult(job.output, sidecar, backend, written, rate, tuple(changes),
                             elapsed, report), note
    changes = merge_changes([c.changes for c in ordered], list(job.motions))
    drives = plan_drives(job, analysis)  # what each range planned: the same resampling
    sidecar = job.sidecar or job.output.with_name(job.output.name + ".reenact.json")
    write_reenact_sidecar(sidecar, job, backend, rate, total,
                          {c.track_id: c for c in changes}, drives, report)
    return ReenactResult(job.output, sidecar, backend, written, rate, tuple(changes),
                         {tid: d.report for tid, d in drives.items()}, elapsed, report), note


def _verified_frames(chunk: ChunkRender) -> Iterator[NDArray[np.uint8]]:
    """The frames of ``chunk``'s store, refused (``RenderWorkerError``) at its end unless they
    are exactly the frames its worker stored: as many as its range, with its digest. Shared
    staging is writable by more than the studio; only what the worker hashed is encoded."""
    h, count = hashlib.sha256(), 0
    for rgb in read_store(chunk.store):
        _hash_frame(h, rgb)
        count += 1
        yield rgb
    expected = chunk.frames[1] - chunk.frames[0] + 1
    if count != expected or not chunk.digest or h.hexdigest() != chunk.digest:
        raise RenderWorkerError(f"chunk {chunk_id(chunk.frames)}: its stored frames are not "
                                "those its worker rendered (changed in staging?); nothing "
                                "was published")


def merge_changes(per_chunk: Sequence[Sequence[TrackChange]], tracks: Sequence[int]
                  ) -> list[TrackChange]:
    """Each track's changes over the chunks (in frame order), as one guard records them."""
    merged = {t: TrackChange(t) for t in tracks}
    for changes in per_chunk:
        for c in changes:
            m = merged.setdefault(c.track_id, TrackChange(c.track_id))
            if c.frames == 0:
                continue
            if m.frames == 0:
                m.first_frame, m.box = c.first_frame, list(c.box)
            else:
                m.box = [min(m.box[0], c.box[0]), min(m.box[1], c.box[1]),
                         max(m.box[2], c.box[2]), max(m.box[3], c.box[3])]
            for a, b in c.runs:
                if m.runs and m.runs[-1][1] == a - 1:
                    m.runs[-1][1] = b
                else:
                    m.runs.append([a, b])
            m.last_frame = c.last_frame
            m.frames += c.frames
    return list(merged.values())


def merge_reports(reports: Sequence[GuardReport]) -> GuardReport:
    out = GuardReport()
    for r in reports:
        out.applied += r.applied
        out.clipped_pixels += r.clipped_pixels
        for reason, n in r.dropped.items():
            out.dropped[reason] = out.dropped.get(reason, 0) + n
    return out


def plan(work: PipelineWork, settings: Settings) -> list[FrameRange] | None:
    """The frame ranges ``work`` is rendered in on the cluster; None: one task, the whole
    shot (too short to split, or not a lip-sync of a video)."""
    if not chunkable(work):
        return None
    ranges = chunk_ranges(work.frame_total, settings.ray_chunk_frames)
    return ranges if len(ranges) > 1 else None
