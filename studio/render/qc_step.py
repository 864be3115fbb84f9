"""The QC of every lip-sync render (issue 16): is each edited mouth saying the dub?

Run by :class:`~studio.render.job.RenderJob` after step 4 (the render is encoded) and before
step 6, so that the figures go into the signed C2PA manifest (``QC_LABEL``) as well as the
job record (``outcome.json``: ``qc`` and ``needs_review``) and the viseme sidecar. The
measuring itself is :func:`pipelines.qc.files.qc_report_for_render`: one side-by-side read
of the source and the output, dlib only on each edited track's face (its recorded mesh box,
cropped), the drives the render already built (no second phone recognition). The source's
mouth series do not depend on the render: they are kept, sealed, per shot, tracking and
instrument (``studio.render.qc_cache``), so a shot's later renders measure the output only.

A QC that cannot measure (dlib finds no face in a profile shot, the predictor file is not
installed) does not fail the render, which the consent gate allowed and which is otherwise
good: the record says why, and ``needs_review`` is set, since nobody can vouch for the mouth.
``Settings.render_qc`` (``STUDIO_RENDER_QC=off``) skips it (benches); then ``qc`` and
``needs_review`` are ``None``.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pipelines.faces.analysis import ShotAnalysis
from pipelines.faces.embedding import FaceEmbedder
from pipelines.lipsync import SpeechDrive
from studio.render.qc_cache import FloatArray, QCSourceCache
from studio.render.request import RenderRequest

#: What the QC of a render that could not be measured says (``to_json`` of a report-to-be).
QC_ERROR_SCHEMA = "consent-dubbing-studio/qc/1"
#: Keys of the report that name files: kept in the job record and the sidecar, never in the
#: manifest (a file name can name a person; a manifest travels and cannot be recalled).
NAMED_KEYS = ("output", "source", "dub")


@dataclass(frozen=True)
class RenderQC:
    """The QC of one render: the report's JSON (or why there is none) and the flag."""

    report: dict[str, Any]
    needs_review: bool
    seconds: float
    #: The process's CPU time over the QC (decoder threads included): what it costs the
    #: machine, which wall time on a shared 2-core box does not tell.
    cpu_seconds: float = 0.0

    def record(self) -> dict[str, Any]:
        """The two keys the job record, the sidecar and the per-shot reel records carry."""
        return {"qc": self.report, "needs_review": self.needs_review}

    def manifest_data(self) -> dict[str, Any]:
        """The manifest's studio assertion: the report without file names."""
        return {k: v for k, v in self.report.items() if k not in NAMED_KEYS}


def track_drives(drives: Mapping[str | None, SpeechDrive], request: RenderRequest,
                 track_ids: list[int]) -> dict[int, SpeechDrive]:
    """Edited track → the drive it was rendered with: the one dub stem for every face, or
    each script speaker's lines for the face ``--speaker`` maps it to (the rule of
    ``studio.render.pipeline_step._lipsync``, which built the render's own drives)."""
    if len(drives) == 1 and None in drives:
        return dict.fromkeys(track_ids, drives[None])
    out: dict[int, SpeechDrive] = {}
    for speaker, drive in drives.items():
        if speaker is not None and speaker in request.speakers:
            track = int(request.speakers[speaker][1:])
            if track in track_ids:
                out[track] = drive
        elif len(track_ids) == 1 and (speaker is None or not request.speakers):
            out[track_ids[0]] = drive
    return out


def lipsync_qc(analysis: ShotAnalysis, drives: Mapping[int, SpeechDrive], output: Path, *,
               dub_name: str = "", embedder: FaceEmbedder | None = None,
               cancelled: Callable[[], bool] | None = None,
               source_cache: QCSourceCache | None = None,
               source_sha256: str = "") -> RenderQC:
    """The QC report of ``output``, a lip-sync of ``analysis``'s shot, for the tracks in
    ``drives`` (module docstring). ``embedder``: the one the analysis was made with (when it
    is dlib's, its loaded model and the identity trace's samples of the source are reused).
    ``source_cache`` with ``source_sha256`` (the shot's ingest hash): the source's mouth
    series are taken from it when kept (sealed, bound to these bytes and this tracking) and
    kept there when measured, so that only the output is measured on a shot's later
    renders. Raises InterruptedError when ``cancelled``."""
    from pipelines.edits import EditPermits
    from pipelines.lipsync import LipSyncJob
    from pipelines.qc.errors import QCError
    from pipelines.qc.files import qc_report_for_render
    from pipelines.qc.report import DEFAULT_THRESHOLDS, QCReport

    started, started_cpu = time.perf_counter(), time.process_time()

    def done(doc: dict[str, Any], needs_review: bool) -> RenderQC:
        return RenderQC(doc, needs_review, time.perf_counter() - started,
                        time.process_time() - started_cpu)

    if not drives:  # the guard left every face untouched: nothing to judge
        empty = QCReport(output.name, analysis.source.name, dub_name, ())
        return done(empty.to_json(), False)
    # The QC reads the job's analysis, drives and output only; audio and permits are the
    # render's business, not the QC's.
    job = LipSyncJob(analysis, dict(drives), None, output,
                     permits=EditPermits.all_frames(drives))
    frames = analysis.scan.frame_count
    known: dict[int, FloatArray] = {}
    keep: Callable[[int, FloatArray], None] | None = None
    if source_cache is not None:
        meshes = analysis.landmarks_sha256
        for track in drives:
            series = source_cache.load(source_sha256, meshes, track, frames)
            if series is not None:
                known[track] = series

        def keep(track: int, series: FloatArray) -> None:
            source_cache.store(source_sha256, meshes, track, series)
    try:
        report = qc_report_for_render(job, dub_name=dub_name, analysis_embedder=embedder,
                                      cancelled=cancelled, source_mouths=known,
                                      keep_source=keep)
    except QCError as exc:
        doc = {"schema": QC_ERROR_SCHEMA, "output": output.name,
               "source": analysis.source.name, "dub": dub_name, "needs_review": True,
               "error": str(exc), "thresholds": asdict(DEFAULT_THRESHOLDS),
               "tracks": []}
        return done(doc, True)
    return done(report.to_json(), report.needs_review)


def add_to_sidecar(sidecar: Path, qc: RenderQC) -> None:
    """Put the QC into the render's sidecar JSON (staged, before it is linked public)."""
    doc = json.loads(sidecar.read_text(encoding="utf-8"))
    doc.update(qc.record())
    tmp = sidecar.with_name(sidecar.name + ".part")
    tmp.write_text(json.dumps(doc, indent=1), encoding="utf-8")
    os.replace(tmp, sidecar)
