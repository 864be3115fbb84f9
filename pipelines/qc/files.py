"""QC of a rendered file against its source shot and its dub (``studio qc``).

The dub is prepared for the shot as a render prepares it (``prepare_dub``: length rule, 16 kHz
mono analysis copy) and its drive derived the same way (``drive_from_recording``), so the
figures judge the output against what the render was asked to show. One track: the largest
face in each frame (dlib's detector), which is the edited face in a single-speaker shot.
"""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

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
    from pipelines.lipsync.interface import SpeechDrive


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
