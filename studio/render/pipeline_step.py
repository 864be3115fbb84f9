"""Step 4 of a render on its own: the pipeline, given what the gate allowed.

:class:`~studio.render.job.RenderJob` runs it in its own process, and a render worker
(``studio.executors.worker``) runs it on another machine. Nothing here reads the registry:
what may be edited arrives as a :class:`PipelineScope` (built by the job from its decision,
or by a worker from the registry-signed decision token), everything else as a
:class:`PipelineWork`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pipelines.edits import EditPermits
from pipelines.faces.analysis import ShotAnalysis
from pipelines.lipsync import (
    LipSyncJob,
    LipSyncResult,
    SpeechDrive,
    drive_from_recording,
    drive_from_script,
    run_lipsync,
)
from pipelines.media import SourceAudio, load_audio, load_channels, probe
from pipelines.media.audio import Audio
from pipelines.reenact import (
    Motion,
    ReenactBackend,
    ReenactJob,
    ReenactOptions,
    ReenactResult,
    StillSource,
    run_reenact,
)
from pipelines.speech import load_script
from pipelines.speech.dub import prepare_dub
from studio import backends
from studio.provenance.watermark import WatermarkEmbedder
from studio.render.request import RenderRequest, RequestError, SelectionError
from studio.settings import Settings

PipelineResult = LipSyncResult | ReenactResult
Progress = Callable[[int, int], None]
FrameTap = Callable[[int, NDArray[np.uint8]], None]


@dataclass(frozen=True)
class PreparedSpeech:
    frames: int
    drives: dict[str | None, SpeechDrive]
    audio: Audio
    note: str


@dataclass(frozen=True)
class PipelineWork:
    """What step 4 works on: the request, the analysed source (its landmarks on storage the
    worker sees), the driving motion or the prepared speech, the backend chosen, and the
    folder the render and its sidecar are written to."""

    request: RenderRequest
    source: ShotAnalysis | StillSource
    choice: backends.BackendChoice
    out_dir: Path
    motion: Motion | None = None
    speech: PreparedSpeech | None = None
    driver_analysis: ShotAnalysis | None = None

    @property
    def frame_total(self) -> int:
        if isinstance(self.source, ShotAnalysis):
            return self.source.scan.frame_count
        assert self.motion is not None
        return self.motion.frame_count


@dataclass(frozen=True)
class PipelineScope:
    """What the gate allowed: the face tracks to edit (label → performer), the edit guard's
    permits (segments and verified runs) and the watermark payload of the output."""

    allowed: dict[str | None, str]
    permits: EditPermits
    payload: int


def prepare_speech(req: RenderRequest, frames: int, rate: Fraction) -> PreparedSpeech:
    """The new dialogue for a shot of ``frames`` frames at ``rate``: a recorded dub's phones
    and mix, or a script spoken by TTS (one drive per speaker)."""
    duration = Fraction(frames) / rate
    if req.dub is not None and req.dub_channels:
        return _speaker_dubs(req, frames, rate)
    if req.dub is not None:
        dub = prepare_dub(load_audio(req.dub), duration,
                          m_and_e=load_audio(req.m_and_e) if req.m_and_e else None,
                          tolerance_s=req.dub_tolerance_s)
        return PreparedSpeech(frames, {None: drive_from_recording(dub, rate, frames)},
                              dub.mix, "; ".join(dub.notes))
    assert req.script is not None
    script = load_script(req.script, duration=duration)
    spoken = drive_from_script(script, req.language, rate, frames)
    return PreparedSpeech(frames, dict(spoken.drives), spoken.dialogue,
                          "; ".join(spoken.fit.problems))


def _speaker_dubs(req: RenderRequest, frames: int, rate: Fraction) -> PreparedSpeech:
    """A dub with a speaker per channel: each channel drives its speaker's face; the shot's
    audio is the channels summed (over the M&E)."""
    assert req.dub is not None
    duration = Fraction(frames) / rate
    channels = load_channels(req.dub)  # discrete speakers, not a loudspeaker layout
    if len(channels) != len(req.dub_channels):
        raise RequestError(f"{req.dub.name} has {len(channels)} channels, the dub channels "
                           f"name {len(req.dub_channels)} speakers")
    drives: dict[str | None, SpeechDrive] = {}
    notes: list[str] = []
    for speaker, one_channel in zip(req.dub_channels, channels, strict=True):
        one = prepare_dub(one_channel, duration, tolerance_s=req.dub_tolerance_s)
        drives[speaker] = drive_from_recording(one, rate, frames)
        notes.extend(f"{speaker}: {n}" for n in one.notes)
    summed = Audio(np.ascontiguousarray(sum(c.samples for c in channels)), channels[0].rate)
    both = prepare_dub(summed, duration,
                       m_and_e=load_audio(req.m_and_e) if req.m_and_e else None,
                       tolerance_s=req.dub_tolerance_s)
    return PreparedSpeech(frames, drives, both.mix, "; ".join(notes))


def run_pipeline(work: PipelineWork, scope: PipelineScope, settings: Settings, *,
                 progress: Progress | None = None, cancelled: Callable[[], bool] | None = None,
                 frame_tap: FrameTap | None = None) -> tuple[PipelineResult, str]:
    """Render ``work`` within ``scope``: the result and a note on the audio used."""
    marker = WatermarkEmbedder(scope.payload)

    def watermark(index: int, rgb: NDArray[np.uint8]) -> None:
        if frame_tap is not None:
            frame_tap(index, rgb)
        rgb[...] = marker.mark(rgb, index)

    if work.request.operation == "lipsync":
        assert isinstance(work.source, ShotAnalysis)
        return _lipsync(work, work.source, scope, settings, progress, cancelled, watermark)
    return _reenact(work, scope, settings, progress, cancelled, watermark)


def _lipsync(work: PipelineWork, analysis: ShotAnalysis, scope: PipelineScope,
             settings: Settings, progress: Progress | None,
             cancelled: Callable[[], bool] | None, watermark: FrameTap
             ) -> tuple[LipSyncResult, str]:
    job, note = lipsync_job(work, analysis, scope, settings)
    backend = backends.lipsync_backend(settings, work.choice)
    bind = getattr(backend, "bind_source", None)
    if bind is not None:  # neural backends batch frames read ahead from the source
        bind(analysis.source)
    result = run_lipsync(job, backend, progress=progress, cancelled=cancelled,
                         frame_hook=watermark)
    return result, note


def lipsync_job(work: PipelineWork, analysis: ShotAnalysis, scope: PipelineScope,
                settings: Settings) -> tuple[LipSyncJob, str]:
    """The lip-sync job of ``work`` (each allowed face's drive, the dub mix, the output and
    sidecar paths) and the note on its audio: one definition for a whole render and for the
    chunks of a long shot (``studio.render.chunks``)."""
    req = work.request
    video = analysis.info.video
    assert video is not None
    frames = analysis.scan.frame_count
    speech = work.speech
    if speech is None or speech.frames != frames:  # the probe's count was not exact
        speech = prepare_speech(req, frames, video.frame_rate)
    track_ids = [int(str(t)[1:]) for t in scope.allowed]
    drives: dict[int, SpeechDrive] = {}
    for speaker, drive in speech.drives.items():
        if speaker is None and len(speech.drives) == 1 and req.dub is not None:
            drives = dict.fromkeys(track_ids, drive)  # one dub stem: the chosen face(s)
        elif speaker is not None and speaker in req.speakers:
            drives[int(req.speakers[speaker][1:])] = drive
        elif len(track_ids) == 1 and (speaker is None or not req.speakers):
            drives[track_ids[0]] = drive
    stray = sorted(t for t in drives if t not in track_ids)
    if stray:  # the authorization refused these already; never build a drive for one
        raise SelectionError(f"--speaker names {', '.join(f't{t}' for t in stray)}, not "
                             "among the faces this render may edit")
    missing = [t for t in track_ids if t not in drives]
    if missing:
        raise RequestError(
            "map each script speaker to a face with --speaker NAME=tN (speakers: "
            f"{', '.join(str(s) for s in speech.drives)}; faces without lines: "
            f"{', '.join(f't{m}' for m in missing)})")
    job = LipSyncJob(analysis, drives, speech.audio, work.out_dir / "render.mp4",
                     crf=settings.render_crf, preset=settings.render_preset,
                     sidecar=work.out_dir / "render.visemes.json", permits=scope.permits)
    return job, speech.note


def _reenact(work: PipelineWork, scope: PipelineScope, settings: Settings,
             progress: Progress | None, cancelled: Callable[[], bool] | None,
             watermark: FrameTap) -> tuple[ReenactResult, str]:
    job, note = reenact_job(work, scope, settings)
    backend = reenact_backend(work, job, settings)
    result = run_reenact(job, backend, progress=progress, cancelled=cancelled,
                         frame_hook=watermark)
    return result, note


def reenact_job(work: PipelineWork, scope: PipelineScope, settings: Settings
                ) -> tuple[ReenactJob, str]:
    """The reenactment job of ``work`` (the allowed faces, each driven by the motion; the
    audio; the output and sidecar paths) and the note on its audio: one definition for a whole
    render and for the ranges of a long shot (``studio.render.chunks``)."""
    req, source, motion = work.request, work.source, work.motion
    assert motion is not None
    faces = [int(str(t)[1:]) for t in scope.allowed]
    if isinstance(source, StillSource):
        faces = [f - 1 for f in faces]  # still faces are numbered from 0, labels from t1
    audio: SourceAudio | None = None
    note = "no audio"
    if req.driver is not None and probe(req.driver).audio:
        audio, note = SourceAudio(req.driver), "the driving performance's audio"
    elif isinstance(source, ShotAnalysis) and source.info.audio:
        audio, note = SourceAudio(req.source), "the source shot's audio"
    job = ReenactJob(source, dict.fromkeys(faces, motion), work.out_dir / "render.mp4",
                     options=ReenactOptions(head_pose=req.head_pose), audio=audio,
                     crf=settings.render_crf, preset=settings.render_preset,
                     sidecar=work.out_dir / "render.reenact.json", permits=scope.permits)
    return job, note


def reenact_backend(work: PipelineWork, job: ReenactJob, settings: Settings
                    ) -> ReenactBackend:
    """The reenactment backend ``work`` chose, loaded for ``job``."""
    drivers = None if work.driver_analysis is None \
        else dict.fromkeys(job.motions, work.driver_analysis)
    return backends.reenact_backend(settings, work.choice, job, drivers)
