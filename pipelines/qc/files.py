"""QC of a rendered file against its source shot and its dub (``studio qc``).

The dub is prepared for the shot as a render prepares it (``prepare_dub``: length rule, 16 kHz
mono analysis copy) and its drive derived the same way (``drive_from_recording``), so the
figures judge the output against what the render was asked to show. One track: the largest
face in each frame (dlib's detector), which is the edited face in a single-speaker shot.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from pipelines.qc.dlib_mouth import video_mouth_series
from pipelines.qc.errors import QCInputError, QCNotFoundError
from pipelines.qc.report import (
    DEFAULT_THRESHOLDS,
    QCReport,
    QCThresholds,
    assess_track,
    bilabial_frames,
)

if TYPE_CHECKING:
    from pipelines.faces.embedding import FaceEmbedder
    from pipelines.faces.landmark_file import TrackLandmarks
    from pipelines.lipsync import LipSyncJob
    from pipelines.lipsync.interface import SpeechDrive
    from pipelines.qc.dlib_mouth import FloatArray


def _exists(path: Path, what: str) -> Path:
    if not path.is_file():
        raise QCNotFoundError(f"{what} {path}: no such file")
    return path


def qc_files(output: str | os.PathLike[str], source: str | os.PathLike[str],
             dub: str | os.PathLike[str], *, identity: bool = True,
             thresholds: QCThresholds = DEFAULT_THRESHOLDS) -> QCReport:
    """The QC report of ``output``, a lip-sync of ``source`` to ``dub`` (module docstring).

    Raises :class:`QCNotFoundError` for a missing file and :class:`QCInputError` for media
    that cannot be measured (not a video, no audio in the dub, frame counts or rates that
    differ, a dub the length rule refuses, no face)."""
    from pipelines.lipsync import drive_from_recording
    from pipelines.media import load_audio, probe
    from pipelines.media.errors import MediaError
    from pipelines.speech.dub import DubError, prepare_dub
    from pipelines.speech.recognition import RecognitionError

    out_path = _exists(Path(output), "output")
    src_path = _exists(Path(source), "source")
    dub_path = _exists(Path(dub), "dub")
    try:
        src_video = probe(src_path).require_video()
        out_video = probe(out_path).require_video()
        n, fps = src_video.frame_count, Fraction(src_video.frame_rate)
        if out_video.frame_count != n or Fraction(out_video.frame_rate) != fps:
            raise QCInputError(
                f"{out_path.name} has {out_video.frame_count} frames at "
                f"{out_video.frame_rate} fps, the source {n} at {fps}: not a render of it")
        prepared = prepare_dub(load_audio(dub_path), Fraction(n) / fps)
        drive = drive_from_recording(prepared, fps, n)
    except (MediaError, DubError, RecognitionError) as exc:
        raise QCInputError(str(exc)) from exc
    return qc_render(out_path, src_path, drive, identity=identity, thresholds=thresholds,
                     dub_name=dub_path.name)


def qc_render(output: Path, source: Path, drive: SpeechDrive, *, identity: bool = True,
              thresholds: QCThresholds = DEFAULT_THRESHOLDS, track_id: int | None = None,
              dub_name: str = "") -> QCReport:
    """The QC report of a render whose drive is at hand (a render job has it: no second
    phone recognition). ``output`` and ``source`` must have the drive's frame count."""
    from pipelines.quality import frame_loudness, identity_distances

    n, fps = drive.frame_count, drive.frame_rate
    src_path, out_path = Path(source), Path(output)
    source_mouth = video_mouth_series(src_path)
    output_mouth = video_mouth_series(out_path)
    if len(output_mouth) != len(source_mouth):
        raise QCInputError(f"decoded {len(output_mouth)} output frames, "
                           f"{len(source_mouth)} source frames")
    if not np.isfinite(output_mouth).any() or not np.isfinite(source_mouth).any():
        raise QCInputError("no face found in the output or the source")
    if len(source_mouth) != n:
        raise QCInputError(f"the drive has {n} frames, the source {len(source_mouth)}")
    worst: float | None = None
    if identity:
        from pipelines.faces import DlibEmbedder

        _, worst_id = identity_distances(src_path, out_path, DlibEmbedder(), every=5)
        worst = None if np.isnan(worst_id) else worst_id
    loudness = frame_loudness(drive.dialogue, fps, n)
    track = assess_track(output_mouth, source_mouth, drive.shapes[:, 0], loudness,
                         bilabial_frames(drive.timeline, float(fps), n), identity=worst,
                         track_id=track_id, thresholds=thresholds)
    return QCReport(out_path.name, src_path.name, dub_name, (track,), thresholds)


def _track_boxes(landmarks: TrackLandmarks, chunk: int = 1024
                 ) -> dict[int, tuple[float, float, float, float]]:
    """Frame → the extent of the track's recorded mesh, read in chunks (memory stays flat)."""
    boxes: dict[int, tuple[float, float, float, float]] = {}
    for lo in range(0, len(landmarks), chunk):
        xy = np.asarray(landmarks.meshes[lo:lo + chunk, :, :2], dtype=np.float64)
        low, high = xy.min(axis=1), xy.max(axis=1)
        for frame, a, b in zip(landmarks.frames[lo:lo + chunk].tolist(), low, high,
                               strict=True):
            boxes[int(frame)] = (float(a[0]), float(a[1]), float(b[0]), float(b[1]))
    return boxes


def qc_report_for_render(job: LipSyncJob, *, output: str | os.PathLike[str] | None = None,
                         dub_name: str = "", identity: bool = True,
                         thresholds: QCThresholds = DEFAULT_THRESHOLDS,
                         analysis_embedder: FaceEmbedder | None = None,
                         cancelled: Callable[[], bool] | None = None,
                         source_mouths: Mapping[int, FloatArray] | None = None,
                         keep_source: Callable[[int, FloatArray], None] | None = None
                         ) -> QCReport:
    """The QC report of a finished lip-sync render, one :class:`TrackQC` per edited track.

    For the render job: ``job`` is the :class:`~pipelines.lipsync.LipSyncJob` it ran (its
    shot analysis, one drive per track; no second phone recognition), ``output`` the file it
    wrote (default ``job.output``). Source and output are decoded once, side by side. Each
    track's mouth is measured with dlib (``dlib_mouth``) on the face detected inside that
    track's recorded mesh box, so two speakers in one shot are judged apart; frames where
    the track is not seen are NaN (left out of every figure). Identity: dlib's embedding of
    the track's face, source vs output, every 5th frame it is seen (worst distance). With
    ``analysis_embedder``, the embedder the analysis' track samples were made with: when it
    is dlib's (a render's default; its identity trace samples at least once a second), that
    loaded model is used and only the output is embedded, at the frames of the track's
    samples, against their stored embeddings: a render pays a few embeddings per second of
    shot instead of two every fifth frame and a model load. ``cancelled`` is asked
    every frame; when it says so, :class:`InterruptedError` (a render job's cancel).

    ``source_mouths``: tracks whose source series is already known (measured by an earlier
    QC of the same shot and tracking with this instrument, ``studio.render.qc_cache``; the
    caller vouches for it). Those are not measured again, and when every track's is known
    and identity needs no source frame (the analysis' samples are reused), the source is not
    even decoded. ``keep_source`` is given each source series measured here, to keep.

    Raises :class:`QCInputError` when the output is not a render of the job's shot (frame
    count or rate) or a track's face is never found by dlib, :class:`QCNotFoundError` when
    a file is missing.
    """
    from pipelines.faces import DlibEmbedder
    from pipelines.faces.landmarks import FaceObservation
    from pipelines.media import VideoReader
    from pipelines.qc.dlib_mouth import MouthMeter
    from pipelines.quality import frame_loudness

    analysis = job.analysis
    src_path = _exists(Path(analysis.source), "source")
    out_path = _exists(Path(output) if output is not None else Path(job.output), "output")
    video = analysis.info.require_video()
    n, fps = analysis.scan.frame_count, Fraction(video.frame_rate)
    tracks = sorted(job.drives)
    boxes = {t: _track_boxes(analysis.landmarks(t)) for t in tracks}
    known = {t: np.asarray(source_mouths[t], np.float64) for t in tracks
             if source_mouths is not None and t in source_mouths
             and len(source_mouths[t]) == n}
    source_meters = {t: MouthMeter() for t in tracks if t not in known}
    output_meters = {t: MouthMeter() for t in tracks}
    mouths = {t: (known[t].copy() if t in known else np.full(n, np.nan), np.full(n, np.nan))
              for t in tracks}
    reuse = analysis_embedder is not None and analysis_embedder.name == DlibEmbedder.name
    embedder: FaceEmbedder | None = None
    if identity:
        embedder = analysis_embedder if reuse and analysis_embedder is not None \
            else DlibEmbedder()
    worst: dict[int, float] = {}
    # Frame → source embedding, per track, when the analysis' own samples are reused.
    samples: dict[int, dict[int, Any]] = {}
    if embedder is not None and reuse:
        samples = {t: {s.frame_index: s.embedding for s in analysis.track(t).samples}
                   for t in tracks}
    size = (video.width, video.height)
    # The source's pixels are needed to measure a track's source mouth not known yet, or to
    # embed its source face when the analysis has no samples of the embedder's.
    read_source = bool(source_meters) or (
        embedder is not None and not all(samples.get(t) for t in tracks))
    count = 0
    try:
        with VideoReader(out_path, on_vfr="conform") as out, contextlib.ExitStack() as stack:
            src = stack.enter_context(VideoReader(src_path, on_vfr="conform")) \
                if read_source else None
            if Fraction(out.output.frame_rate) != fps:
                raise QCInputError(f"{out_path.name} runs at {out.output.frame_rate} fps, the "
                                   f"shot at {fps}: not a render of it")
            pairs = zip(src, out, strict=False) if src is not None \
                else ((None, b) for b in out)
            for index, (a, b) in enumerate(pairs):
                count = index + 1
                if index >= n:
                    break
                if cancelled is not None and cancelled():
                    raise InterruptedError("QC cancelled")
                for t in tracks:
                    box = boxes[t].get(index)
                    if box is None:
                        continue
                    if t in source_meters:
                        assert a is not None  # read_source
                        mouths[t][0][index] = source_meters[t].measure(a.rgb, box)
                    mouths[t][1][index] = output_meters[t].measure(b.rgb, box)
                    reference = samples[t].get(index) if samples.get(t) else None
                    if embedder is not None and (reference is not None or (
                            not samples.get(t) and index % 5 == 0)):
                        mesh = analysis.landmarks(t).mesh(index)
                        assert mesh is not None  # the box came from this mesh
                        face = FaceObservation(box, mesh, 1.0, size)
                        if reference is None:
                            assert a is not None  # read_source
                            reference = embedder.embed(a.rgb, face)
                        d = embedder.distance(reference, embedder.embed(b.rgb, face))
                        worst[t] = max(worst.get(t, 0.0), d)
    except (QCInputError, InterruptedError):
        raise
    except Exception as exc:  # the reader's own errors: not a video we can decode
        raise QCInputError(f"cannot decode {out_path.name} or {src_path.name} ({exc})") from exc
    if count != n:
        raise QCInputError(f"{out_path.name} has {count} frames, the shot {n}: not a render "
                           "of it")
    if keep_source is not None:
        for t in source_meters:
            keep_source(t, mouths[t][0])
    reports = []
    for t in tracks:
        source_mouth, output_mouth = mouths[t]
        if not np.isfinite(source_mouth).any() or not np.isfinite(output_mouth).any():
            raise QCInputError(f"track {t}: dlib finds no face in the source or the output")
        drive = job.drives[t]
        reports.append(assess_track(
            output_mouth, source_mouth, drive.shapes[:, 0],
            frame_loudness(drive.dialogue, fps, n),
            bilabial_frames(drive.timeline, float(fps), n), identity=worst.get(t),
            track_id=t, thresholds=thresholds))
    return QCReport(out_path.name, src_path.name, dub_name, tuple(reports), thresholds)
