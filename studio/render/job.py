"""One render, start to finish: the seven steps of docs/ARCHITECTURE.md.

::

  1 ingest     copy every input into the job's staging folder, hashed in the same read
               (``staging.stage_inputs``); every later step reads those copies only, so an
               input changed at the operator's path afterwards is never identified, edited or
               recorded; probe the shot
  2 identify   track the faces once (meshes recorded for step 4), match them to performers
  3 authorize  the consent gate decides (ledgered, allow or deny)
  4 run        the pipeline edits the allowed faces only; the watermark goes in as frames encode;
               then the lip-sync QC of the output (``studio.render.qc_step``)
  5 re-check   the gate decides again: a revocation during the run stops the output here
  6 stamp      sign the C2PA manifest (AI disclosure, ingredients, consent reference, soft
               binding, QC); keep it in the manifest store by output hash and watermark payload
  7 publish    one transaction under the ledger's lock: the gate decides a last time, the
               signed file is hard-linked into the outputs folder, ``output_published`` is
               appended (``Registry.publish_output``)

The job's folder (``<data>/jobs/<job id>/``) keeps the record only: the request, the input
hashes, the decisions, a log and the outcome. Media (landmarks, render.mp4, the sidecar,
signed.mp4) live in ``<data>/staging/jobs/<job id>/`` (:mod:`studio.render.staging`), which no
user is given and which is deleted when the render ends, however it ends, or at the next start
after a crash. The output name is reserved there before step 1, so a second render with the
same ``--output`` is refused before any work and never reaches the ledger.

Step 7 and a revocation cannot interleave: the revocation is ordered either before the last
check (nothing is published; the ledger shows the revocation, then the deny) or after the
publication (its revocation report lists the output). Crash ordering of step 7:

- before the transaction: nothing public; the next start releases the payload and the name.
- after the link, before the commit: a file in ``outputs/`` with no ledger event. ``studio
  verify`` says "signed, not published" and exits 1; the next start removes the file (the
  staging state names the links it was about to make; only the same inode is removed).
- after the commit: published. Cleaning up the staging folder is all that is left.

A failure (not a crash) between the link and the commit undoes the link. The ledger only ever
appends whole entries, so a crash anywhere leaves a ledger that verifies.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import secrets
import shutil
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from consent.errors import ConsentError, MotionSealError, SealScopeError
from consent.gate import AuthorizationRequest, Decision, IdentityMatch
from consent.motion_seal import CheckedSeal
from consent.registry import Registry
from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.faces.embedding import FaceEmbedder
from pipelines.lipsync import LipSyncResult
from pipelines.media import probe
from pipelines.models import registry
from pipelines.reenact import Motion, ReenactResult, StillSource, extract_motion
from studio import __version__, backends
from studio.errors import OutputExistsError
from studio.errors import RenderCancelled as RenderCancelled
from studio.errors import RenderDenied as RenderDenied
from studio.identity import (
    IdentifyResult,
    embedder_for,
    identify_scan,
    identify_still,
    is_still,
)
from studio.motion_seals import driving_request, open_sealed_motion
from studio.provenance.identity import signing_identity
from studio.provenance.manifest import (
    MAX_EMBEDDED_INGREDIENT,
    ChangedRegion,
    ConsentReference,
    IngredientInput,
    LanguagePair,
    ManifestInputs,
    Rect,
    SoftwareAgent,
    UnsupportedFormatError,
    WatermarkBinding,
)
from studio.provenance.signing import detect_mime, sign_file
from studio.provenance.store import STORED_CROPS, ManifestStore, frame_hashes_of
from studio.render import staging
from studio.render.analysis_cache import analyse_for_render, identity_gap_frames
from studio.render.authorization import DRIVER_TRACK, driver_verdict, render_authorization
from studio.render.events import Listener, ProgressReporter, Stage
from studio.render.meshes import pin
from studio.render.pipeline_step import (
    PipelineResult,
    PipelineScope,
    PipelineWork,
    PreparedSpeech,
    prepare_speech,
    run_pipeline,
)
from studio.render.qc_cache import QCSourceCache
from studio.render.qc_step import RenderQC, add_to_sidecar, lipsync_qc, track_drives
from studio.render.request import RenderRequest, RequestError
from studio.render.segments import (
    edit_permits,
    manifest_segments,
    request_segments,
    same_segments,
    unverified_spans,
    with_segments,
)
from studio.render.staging import Staging
from studio.settings import Settings

log = logging.getLogger(__name__)

#: Step 4 run elsewhere (``RenderJob.remote``): (job, work, what may be edited, the allowed
#: decision, input hashes) → the pipeline's result and its audio note.
RemotePipeline = Callable[["RenderJob", PipelineWork, PipelineScope, Decision, dict[str, str]],
                          tuple[PipelineResult, str]]


@dataclass(frozen=True)
class RenderOutcome:
    job_id: str
    output: Path
    sidecar: Path | None
    output_sha256: str
    manifest_label: str
    watermark_payload: int
    decision: Decision
    output_ledger_index: int
    frames: int
    seconds: float
    job_dir: Path
    backend: str = ""
    model: str = ""
    licence: str = ""
    #: Faces and stretches of faces left untouched (``t2``, ``t1:30-59``), as decided.
    untouched: tuple[str, ...] = ()
    #: What the edit guard applied and dropped (``GuardReport.to_json``).
    guard: dict[str, Any] = field(default_factory=dict)
    #: The performer approval the output waits for, as published: ``not_required``, or
    #: ``awaiting`` (held, not deliverable) when a grant used requires approval
    #: (``studio consent approval-status`` says what it is now).
    approval: str = "not_required"
    #: The lip-sync QC report (``QCReport.to_json``, or why it could not measure) and its
    #: verdict; None when the render had no QC (a reenactment, ``STUDIO_RENDER_QC=off``).
    #: Reels read these two keys from each shot's record: keep their names.
    qc: dict[str, Any] | None = None
    needs_review: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "output": str(self.output),
                "sidecar": None if self.sidecar is None else str(self.sidecar),
                "output_sha256": self.output_sha256, "manifest": self.manifest_label,
                "watermark_payload": f"{self.watermark_payload:08x}",
                "decision_id": self.decision.decision_id,
                "decision_ledger_index": self.decision.ledger_index,
                "output_ledger_index": self.output_ledger_index, "frames": self.frames,
                "seconds": round(self.seconds, 2), "job_dir": str(self.job_dir),
                "backend": {"name": self.backend, "model": self.model, "licence": self.licence},
                "untouched_faces": list(self.untouched), "guard": self.guard,
                "approval": self.approval, "qc": self.qc, "needs_review": self.needs_review}


def new_job_id() -> str:
    return f"job-{datetime.now(UTC).strftime('%Y%m%dT%H%M%S')}-{secrets.token_hex(4)}"


@dataclass
class RenderJob:
    """Run one :class:`RenderRequest` (module docstring). ``cancel`` may be set from any thread."""

    request: RenderRequest
    settings: Settings
    registry: Registry
    listener: Listener | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    job_id: str = field(default_factory=new_job_id)
    #: Longest unverifiable stretch (seconds) a face may be edited across (``IdentityTrace``);
    #: None: the settings' ``identity_gap_s``.
    max_gap_s: float | None = None
    #: Sees each frame as the edit guard leaves it, before the watermark (audits and tests).
    frame_tap: Callable[[int, NDArray[np.uint8]], None] | None = None
    #: Called with a point's name (each stage as it starts, "ingested" once the inputs are
    #: copied, "signed", "stored", "linked" inside the publication's transaction,
    #: "published"): tests put a revocation, a crash or a swapped input exactly there.
    between: Callable[[str], None] | None = None
    #: Runs step 4 elsewhere (a render worker, ``studio.executors``): given the job, the work
    #: and the allowed decision, returns what ``run_pipeline`` would. None: in this process.
    remote: RemotePipeline | None = None

    def __post_init__(self) -> None:
        self.folder = self.settings.jobs_dir / self.job_id
        self.progress = ProgressReporter(self.listener)
        self._log: list[dict[str, Any]] = []
        self._stage = Stage.INGEST
        self._choice = backends.BackendChoice(backends.EMBEDDED, "", "", True)
        self._driver_performer: str | None = None
        self._driver_analysis: ShotAnalysis | None = None
        self._early_speech: PreparedSpeech | None = None
        #: The inputs' SHA-256 (name → hash) as ingested: the bytes the render runs on.
        self.inputs: dict[str, str] = {}

    # -- bookkeeping ----------------------------------------------------------------------------

    def _note(self, stage: Stage, message: str, **data: Any) -> None:
        entry = {"at": datetime.now(UTC).isoformat(), "stage": str(stage), "message": message,
                 **data}
        self._log.append(entry)
        with (self.folder / "log.jsonl").open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, default=str) + "\n")

    def _save(self, name: str, value: Any) -> None:
        path = self.folder / name
        tmp = path.with_name(name + ".part")
        tmp.write_text(json.dumps(value, indent=1, default=str), encoding="utf-8")
        os.replace(tmp, path)

    def _check_cancel(self) -> None:
        if self.cancel.is_set():
            raise RenderCancelled(f"render {self.job_id} cancelled; nothing was published")

    # -- the seven steps ------------------------------------------------------------------------

    def run(self) -> RenderOutcome:
        started = time.monotonic()
        # Renders that died (kill -9, power cut) are cleaned up first: their names, payloads
        # and media (studio.render.staging).
        staging.sweep(self.settings, self.registry)
        self.staging = Staging.open(self.settings, self.job_id)
        # This process's own copies of what it checked (the face meshes): never on the
        # shared staging storage, which others may write.
        self._private = staging.private_folder()
        ended = "failed"
        try:
            self.folder.mkdir(parents=True, exist_ok=False)
            try:
                outcome = self._run(started)
            except InterruptedError as exc:
                if not self.cancel.is_set():
                    raise
                # The pipelines stop on the cancel event with InterruptedError: one path.
                raise RenderCancelled(f"render {self.job_id} cancelled; nothing was "
                                      "published") from exc
            ended = "published"
            return outcome
        except BaseException as exc:
            ended = {RenderDenied: "denied", RenderCancelled: "cancelled"}.get(type(exc),
                                                                              ended)
            if self.folder.is_dir():
                self._note(self._stage, f"stopped: {type(exc).__name__}: {exc}")
            raise
        finally:
            self.staging.record(ended=ended)
            self.staging.close(self.registry)
            shutil.rmtree(self._private, ignore_errors=True)

    def _enter(self, stage: Stage, message: str, total: int = 0) -> None:
        self._check_cancel()
        self._stage = stage
        self.progress.stage(stage, message, total)
        self._note(stage, message)
        self._at(str(stage))

    def _at(self, point: str) -> None:
        if self.between is not None:
            self.between(point)

    def _run(self, started: float) -> RenderOutcome:
        req = self.request
        self._save("request.json", _request_json(req))
        try:
            self._choice = backends.choose(self.settings, req.project_id, req.operation)
        except (backends.BackendError, registry.UnknownBackendError) as exc:
            raise RequestError(str(exc)) from None
        if self._choice.neural:
            # Before any decision: a missing checkpoint is the operator's to fix, not a deny.
            root = registry.models_root(self.settings.data_dir)
            registry.require_files(self._choice.name,
                                   registry.backend_dir(self._choice.name, root),
                                   pins=registry.PinStore.for_root(root), hash_files=False)
        name = req.output_name or req.default_output_name(self.job_id)
        self.staging.reserve(name, self.registry)  # before any work; refused here if taken

        self._enter(Stage.INGEST, "copying and hashing inputs")
        asked = req.input_files()
        staged = staging.stage_inputs(asked, self.staging.folder / "inputs")
        inputs = {n: s.sha256 for n, s in staged.items()}
        self.inputs = inputs
        self._save("inputs.json", {n: {"path": str(p), "sha256": inputs[n]}
                                   for n, p in asked.items()})
        # From here on the render reads the hashed copies only, never the operator's paths
        # (a shared ingest folder could change under it); they stay in the record above,
        # the output's default name and the manifest's title.
        req = replace(req, **{n: s.path for n, s in staged.items()})  # type: ignore[arg-type]
        self._at("ingested")

        embedder = embedder_for(self.settings)
        analysis_total = 0
        self._enter(Stage.IDENTIFY, "tracking faces")

        def frames(done: int, total: int) -> None:
            nonlocal analysis_total
            analysis_total = total
            self.progress.frames(done, total)

        source: ShotAnalysis | StillSource
        if is_still(req.source):
            if req.operation != "reenact":
                raise RequestError("a lip-sync needs a video shot, not a still image")
            source = StillSource(req.source)
            identity = identify_still(req.source, self.registry, embedder)
        else:
            info = probe(req.source)
            rate = info.video.frame_rate if info.video is not None else None
            max_gap = identity_gap_frames(self.settings, rate, self.max_gap_s)
            # The dub's phones (or the script's speech) are worked out on the other core
            # while the faces are tracked: they need only the shot's timing.
            with ThreadPoolExecutor(1, thread_name_prefix="speech") as pool:
                early = None
                if req.operation == "lipsync":
                    timing = probe(req.source).video
                    if timing is not None and timing.frame_count > 0:
                        early = pool.submit(self._speech, req, timing.frame_count,
                                            timing.frame_rate)
                # The continuous identity trace (render_analysis_params), or the operator's
                # scan of these very bytes if the studio kept it (sealed; only the tracking
                # is reused: identity and consent are decided afresh below).
                source, reused = analyse_for_render(
                    self.settings, req.source, inputs["source"], info, embedder,
                    self.staging.folder / "work", gap_s=self.max_gap_s, progress=frames,
                    cancelled=self.cancel.is_set)
                if reused:
                    self._note(Stage.IDENTIFY, "reused the sealed analysis of this shot",
                               tracks=len(source.tracks))
                # The meshes copied privately, checked against what the tracking recorded:
                # step 4 warps these bytes, never the staging files (studio.render.meshes).
                source = pin(source, into=self._private / "source")
                if early is not None:
                    self._early_speech = early.result()
            identity = identify_scan(source.scan, self.registry, embedder, max_faces=8,
                                     max_gap=max_gap)
        matches, known = list(identity.matches), list(identity.track_ids)
        motion: Motion | None = None
        if req.operation == "reenact":
            motion, driver_match = self._driver(req, embedder, inputs)
            matches.append(driver_match)
            known.append(DRIVER_TRACK)
        self._save("identity.json", identity.to_json())

        self._enter(Stage.AUTHORIZE, "asking the consent gate")
        auth = self._authorization(req, identity, inputs)
        # The gate authorises (track, frame range) segments verified as each performer; the
        # other stretches of those tracks are faces like any unconsented one.
        still_frames = None
        if isinstance(source, StillSource):
            assert motion is not None
            still_frames = max(1, round(motion.duration * source.frame_rate))
        try:
            unmatched = backends.project_unmatched_faces(self.settings, req.project_id,
                                                         req.unmatched_faces)
        except backends.BackendError as exc:
            raise RequestError(str(exc)) from None
        auth = with_segments(auth, request_segments(auth, identity, still_frames=still_frames),
                             unmatched)  # type: ignore[arg-type]
        known = [*known, *unverified_spans(auth, identity)]
        decision = self.registry.authorize(auth, matches, known_tracks=known)
        self._save("decision.json", decision.to_json())
        if not decision.allowed:
            raise RenderDenied(decision, Stage.AUTHORIZE)
        allowed = {s.track_id: s.performer_id for s in auth.subjects
                   if s.track_id != DRIVER_TRACK}
        permits = edit_permits(decision, identity, still=isinstance(source, StillSource))

        payload = ManifestStore(self.settings.manifests_dir).allocate_payload(
            random.SystemRandom())
        self.staging.record(payload=payload)  # released at cleanup unless published
        work = PipelineWork(req, source, self._choice, self.staging.folder, motion=motion,
                            speech=self._early_speech, driver_analysis=self._driver_analysis)
        scope = PipelineScope(allowed, permits, payload)
        self._enter(Stage.RUN, "rendering", total=work.frame_total)
        result: PipelineResult
        if self.remote is None:
            result, audio_note = run_pipeline(work, scope, self.settings,
                                              progress=self.progress.frames,
                                              cancelled=self.cancel.is_set,
                                              frame_tap=self.frame_tap)
        else:
            result, audio_note = self.remote(self, work, scope, decision, inputs)
        self._note(Stage.RUN, f"rendered {result.frame_count} frames at {result.fps:.1f} fps",
                   audio=audio_note)
        qc = self._qc(req, source, result, embedder, inputs["source"])

        self._enter(Stage.RECHECK, "asking the consent gate again")
        # The re-check must authorise the very segments the render ran under.
        recheck = same_segments(decision,
                                self.registry.authorize(auth, matches, known_tracks=known))
        self._save("recheck.json", recheck.to_json())
        if not recheck.allowed:
            raise RenderDenied(recheck, Stage.RECHECK)

        self._enter(Stage.STAMP, "signing the C2PA manifest")
        signed_path = self.staging.folder / "signed.mp4"
        manifest_inputs = self._manifest(req, inputs, result, recheck, payload, qc)
        signed = sign_file(result.output, signed_path, manifest_inputs,
                           signing_identity(self.settings),
                           verify_after_sign=self.settings.c2pa_verify_after_sign)
        self.staging.record(sha256=signed.sha256)
        self._at("signed")
        store = ManifestStore(self.settings.manifests_dir)
        store.put(signed.sha256, signed.manifest_bytes, payload=payload,
                  frame_hashes=frame_hashes_of(signed_path, crops=STORED_CROPS),
                  mime=signed.mime,
                  title=manifest_inputs.title)
        result.output.unlink(missing_ok=True)
        self._at("stored")

        self._enter(Stage.PUBLISH, "publishing")
        target = self.settings.outputs_dir / name
        links = [(signed_path, target)]
        sidecar = None
        if result.sidecar.exists():
            kind = ".visemes.json" if req.operation == "lipsync" else ".reenact.json"
            sidecar = self.settings.outputs_dir / (name + kind)
            links.append((result.sidecar, sidecar))
        # Written before linking, so that a crash inside the transaction can be undone.
        self.staging.record(links=[(public.name, staged.name) for staged, public in links])

        def link() -> Callable[[], None]:
            made = [_link(staged, public) for staged, public in links]
            self._at("linked")

            def undo() -> None:
                for path in made:
                    path.unlink(missing_ok=True)
            return undo

        self._check_cancel()
        publication = self.registry.publish_output(
            auth, matches, recheck, signed.sha256, signed.manifest_label, link,
            known_tracks=known)
        self._save("final-check.json", publication.final_check.to_json())
        if publication.output_index is None:
            raise RenderDenied(publication.final_check, Stage.PUBLISH)
        out_index = publication.output_index
        self._at("published")
        outcome = RenderOutcome(self.job_id, target, sidecar, signed.sha256,
                                signed.manifest_label, payload, recheck, out_index,
                                result.frame_count, time.monotonic() - started, self.folder,
                                self._choice.name, self._choice.model, self._choice.licence,
                                recheck.untouched_tracks, result.guard.to_json(),
                                self._approval(signed.sha256),
                                None if qc is None else qc.report,
                                None if qc is None else qc.needs_review)
        self._save("outcome.json", outcome.to_json())
        self._note(Stage.PUBLISH, f"published {target.name}", sha256=signed.sha256)
        return outcome

    # -- helpers ---------------------------------------------------------------------------------

    def _approval(self, output_sha256: str) -> str:
        """The published output's approval state; ``unknown`` (never a failed render: it is
        published) when the ledger cannot say, as ``studio verify`` will then report."""
        try:
            return self.registry.approval_status(output_sha256).state.value
        except ConsentError as exc:
            self._note(Stage.PUBLISH, f"approval status unknown: {exc}")
            return "unknown"

    def _authorization(self, req: RenderRequest, identity: IdentifyResult,
                       inputs: dict[str, str]) -> AuthorizationRequest:
        # Built by the same function as the studio's "Check consent" (no drift).
        return render_authorization(req, identity, inputs, self.settings, self._choice,
                                    self._driver_performer)

    def _speech(self, req: RenderRequest, frames: int, rate: Fraction) -> PreparedSpeech:
        return prepare_speech(req, frames, rate)

    def _driver(self, req: RenderRequest, embedder: FaceEmbedder, inputs: dict[str, str]
                ) -> tuple[Motion, IdentityMatch]:
        """The driving performance as a motion, and the verdict on who performed it.

        A motion file counts only under the registry's seal (:mod:`studio.motion_seals`):
        an unsigned, re-signed, edited or foreign file, or one sealed for another project,
        is refused before anything is decided; the verdict comes from the sealed embeddings
        and must name the sealed driver (:meth:`_sealed_driver`)."""
        sealed: CheckedSeal | None = None
        if req.motion is not None:
            loaded, sealed = open_sealed_motion(self.registry, self.settings, req.motion,
                                                req.project_id)
            motion = loaded.motion
            self._note(Stage.IDENTIFY, "motion file seal verified",
                       performer=sealed.seal.driver_performer_id,
                       decision=sealed.seal.decision_id,
                       decision_ledger_index=sealed.seal.decision_ledger_index,
                       signer=sealed.signer_key_id)
        else:
            assert req.driver is not None
            driver = pin(analyse_shot(req.driver, self.staging.folder / "work" / "driver",
                                      embedder, cancelled=self.cancel.is_set),
                         into=self._private / "driver")
            motion = extract_motion(driver, neutral_frame="rest", embedder=embedder.name,
                                    video_sha256=inputs["driver"])
            self._driver_analysis = driver
        match = driver_verdict(motion, self.registry, embedder)
        if sealed is not None:
            self._sealed_driver(req, sealed, match, inputs)
        self._driver_performer = match.performer_id
        self._note(Stage.IDENTIFY, "driver identified", performer=match.performer_id,
                   distance=match.distance, frames=match.frames)
        return motion, match

    def _sealed_driver(self, req: RenderRequest, sealed: CheckedSeal, match: IdentityMatch,
                       inputs: dict[str, str]) -> None:
        """A sealed motion drives a face only while the grant it was sealed under is active,
        and only as the performer it was sealed for."""
        seal = sealed.seal
        if sealed.inactive_grants:
            # The gate says why, and the ledger keeps it: with the grant revoked or lapsed
            # the driver's consent is gone and this is a deny. Should another grant of theirs
            # still allow it, the file itself stays refused: it was issued under this one.
            request = driving_request(
                self.settings, seal.driver_performer_id, operation=req.operation,
                project_id=req.project_id, language=req.language, territory=req.territory,
                channel=req.channel, operator=req.operator, source_sha256=inputs["source"],
                commercial=req.commercial, models=(self._choice.model_use(),))
            decision = self.registry.authorize(request, [match], known_tracks=[DRIVER_TRACK])
            self._save("motion-decision.json", decision.to_json())
            if not decision.allowed:
                raise RenderDenied(decision, Stage.AUTHORIZE)
            lapsed = sealed.inactive_grants[0]
            raise MotionSealError(f"the motion file was issued under grant {lapsed.grant_id}, "
                                  f"which is now {lapsed.status} ({lapsed.detail}); re-extract "
                                  "it under an active grant")
        if match.performer_id != seal.driver_performer_id:
            raise SealScopeError(
                f"the motion file's sealed embeddings match "
                f"{match.performer_id or 'no enrolled performer'}, but it was issued for "
                f"{seal.driver_performer_id}'s performance")

    def _qc(self, req: RenderRequest, source: ShotAnalysis | StillSource,
            result: PipelineResult, embedder: FaceEmbedder, source_sha256: str
            ) -> RenderQC | None:
        """The lip-sync QC of the encoded output (``studio.render.qc_step``), put into the
        sidecar here; the job record and the manifest take it from the return value. The
        source's mouth series are kept per shot (``studio.render.qc_cache``)."""
        if (not self.settings.render_qc or req.operation != "lipsync"
                or not isinstance(source, ShotAnalysis)):
            return None
        frames = source.scan.frame_count
        speech = self._early_speech
        if speech is None or speech.frames != frames:  # as step 4 did: the probe was off
            speech = prepare_speech(req, frames, source.info.require_video().frame_rate)
        edited = sorted(c.track_id for c in result.changes if c.frames)
        drives = track_drives(speech.drives, req, edited)
        named = req.dub if req.dub is not None else req.script
        qc = lipsync_qc(source, drives, result.output, dub_name=named.name if named else "",
                        embedder=embedder, cancelled=self.cancel.is_set,
                        source_cache=QCSourceCache.for_settings(self.settings),
                        source_sha256=source_sha256)
        self._note(Stage.RUN, f"QC in {qc.seconds:.1f} s: "
                   + ("needs review" if qc.needs_review else "ok"),
                   needs_review=qc.needs_review, seconds=round(qc.seconds, 3),
                   cpu_s=round(qc.cpu_seconds, 3),
                   reasons=[r for t in qc.report.get("tracks", []) for r in t["reasons"]]
                   or qc.report.get("error"))
        if result.sidecar.exists():
            add_to_sidecar(result.sidecar, qc)
        return qc

    def _manifest(self, req: RenderRequest, inputs: dict[str, str],
                  result: LipSyncResult | ReenactResult, decision: Decision, payload: int,
                  qc: RenderQC | None = None) -> ManifestInputs:
        with self.registry.store.session() as s:
            note = self.registry.ledger.checkpoint(s, datetime.now(UTC))
        # One entry per grant: a reenactment uses one grant for several techniques.
        grants = dict.fromkeys((g.grant_id, g.sha256) for g in decision.grants_used)
        consent = ConsentReference(
            grant_ids=tuple(g for g, _ in grants),
            grant_sha256s=tuple(h for _, h in grants),
            decision_id=decision.decision_id,
            decision_leaf_index=int(decision.ledger_index or 0),
            ledger_checkpoint=note,
            ledger_checkpoint_sha256=hashlib.sha256(note.encode()).hexdigest(),
            registry_key_id=self.registry.public_key.key_id,
            approval_required=self.registry.approvals_required(decision))
        # Every input is added from its file (``path``): the SDK carries and validates any
        # manifest it has. Only the script travels inside the manifest (``embed``), when small.
        others = []
        if req.dub is not None:
            others.append(IngredientInput("dub-audio", "dub dialogue", "componentOf",
                                          _mime(req.dub, "audio/wav"), inputs["dub"],
                                          str(req.dub)))
        if req.m_and_e is not None:
            others.append(IngredientInput("m-and-e", "music and effects", "componentOf",
                                          _mime(req.m_and_e, "audio/wav"), inputs["m_and_e"],
                                          str(req.m_and_e)))
        if req.script is not None:
            others.append(IngredientInput("script", "translated script", "inputTo",
                                          "text/plain", inputs["script"], str(req.script),
                                          embed=req.script.stat().st_size
                                          <= MAX_EMBEDDED_INGREDIENT))
        if req.driver is not None:
            others.append(IngredientInput("driving-video", "driving performance", "inputTo",
                                          _mime(req.driver, "video/mp4"), inputs["driver"],
                                          str(req.driver)))
        if req.motion is not None:
            others.append(IngredientInput("motion-file", "driving performance (motion file)",
                                          "inputTo", "application/octet-stream",
                                          inputs["motion"], str(req.motion)))
        rate = result.frame_rate
        regions = tuple(
            ChangedRegion(Rect(c.box[0], c.box[1], c.box[2] - c.box[0], c.box[3] - c.box[1]),
                          frames=(c.first_frame, c.last_frame),
                          seconds=(float(c.first_frame / rate), float((c.last_frame + 1) / rate)),
                          description=("mouth region" if req.operation == "lipsync"
                                       else "face") + f" of face track t{c.track_id}")
            for c in result.changes if c.frames)
        duration_ms = int(result.frame_count / rate * 1000)
        what = "lip-sync" if req.operation == "lipsync" else "reenactment"
        return ManifestInputs(
            title=req.output_name or f"{self.request.source.stem} ({req.language} {what})",
            mime="video/mp4", operation=req.operation,
            agent=SoftwareAgent("consent-dubbing-studio", __version__, result.backend,
                                self._choice.model, self._choice.licence),
            source=IngredientInput("source-shot", "source shot" if not is_still(req.source)
                                   else "source still", "parentOf",
                                   _mime(req.source, "video/mp4"), inputs["source"],
                                   str(req.source)),
            consent=consent, others=tuple(others),
            languages=LanguagePair(req.source_language, req.language)
            if req.source_language and req.source_language.lower() != req.language.lower()
            else None,
            regions=regions, watermark=WatermarkBinding(payload, duration_ms),
            segments=manifest_segments(decision, result.changes, still=is_still(req.source)),
            thumbnail=self.settings.c2pa_thumbnail,
            qc=None if qc is None else qc.manifest_data())


def _request_json(req: RenderRequest) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in req.__dict__.items():
        out[name] = str(value) if isinstance(value, Path) else value
    return out


def _mime(path: Path, default: str) -> str:
    try:
        return detect_mime(path)
    except UnsupportedFormatError:  # recorded generically rather than guessed
        return default


def _link(path: Path, target: Path) -> Path:
    """Hard-link ``path`` as ``target`` (atomic; never replaces a file: the name was reserved
    for this job, so a clash means someone put a file there by hand)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(path, target)
    except FileExistsError:
        raise OutputExistsError(f"an output named {target.name} already exists; choose another "
                           "name") from None
    except OSError:
        # Another filesystem: copy beside the target, then link (still atomic, no clobber).
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        shutil.copyfile(path, tmp)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise OutputExistsError(f"an output named {target.name} already exists; choose "
                               "another name") from None
        finally:
            tmp.unlink(missing_ok=True)
    return target
