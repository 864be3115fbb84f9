"""``studio render …`` and ``studio verify FILE``: the render path and the provenance check.

Mounted on the main ``studio`` app by :mod:`studio.cli`; shares :mod:`studio.cli.common` so
that every command speaks the same exit codes (0 ok, 1 denied or failed verification, 3 input
rejected, 4 not found).
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from consent.enums import Channel
from studio.cli.common import (
    EXIT_DENY,
    EXIT_REJECTED,
    EXIT_USAGE,
    JsonOpt,
    _context,
    _emit,
    _errors,
    _fail,
    err,
    out,
)
from studio.errors import ConsentRefused, RenderCancelled, RenderDenied, UsageError
from studio.render.events import ProgressEvent
from studio.render.request import RenderRequest

if TYPE_CHECKING:
    from studio.provenance.verify import VerifyReport

render_app = typer.Typer(help="Render under consent: gate, pipeline, watermark, C2PA, ledger.",
                         no_args_is_help=True)

motion_app = typer.Typer(help="Driving performances kept as motion files (no pixels).",
                         no_args_is_help=True)

#: Options every render command takes (one definition each: the help text cannot drift).
ProjectOpt = Annotated[str, typer.Option("--project", help="Project id (as in the grant).")]
TerritoryOpt = Annotated[str, typer.Option("--territory", help="Release territory (ISO 3166).")]
ChannelOpt = Annotated[Channel, typer.Option("--channel", help="Release channel.")]
EpisodeOpt = Annotated[str | None, typer.Option("--episode")]
SceneOpt = Annotated[str | None, typer.Option("--scene")]
OutputOpt = Annotated[str | None, typer.Option("--output", help="Output file name in the "
                                               "outputs folder (.mp4 or .mov).")]
NonCommercialOpt = Annotated[bool, typer.Option("--non-commercial",
                                                help="A non-commercial project.")]
ExecutorOpt = Annotated[str | None, typer.Option(
    "--executor", help="Where the pipeline runs: 'local' (this process) or 'ray' (the cluster "
    "at $RAY_ADDRESS, else a local Ray instance). Default: $STUDIO_EXECUTOR (local).")]
TrackOpt = Annotated[list[str] | None, typer.Option(
    "--track", help="Face track to edit (t1, t2, …; see `studio consent check --video`). "
    "Default: every face that matches a performer with consent.")]


def _parse_speakers(values: list[str] | None) -> dict[str, str]:
    speakers: dict[str, str] = {}
    for item in values or []:
        name, sep, track = item.partition("=")
        if not sep or not name.strip() or not track.strip():
            raise UsageError(f"--speaker {item!r}: write NAME=t1")
        speakers[name.strip()] = track.strip()
    return speakers


class _Bar:
    """Progress events drawn as a rich progress bar (stderr), one task per stage."""

    def __init__(self, enabled: bool) -> None:
        self.progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 TextColumn("{task.completed}/{task.total}"),
                                 TimeRemainingColumn(), console=err, transient=False,
                                 disable=not enabled)
        self._task: Any = None
        self._stage: str | None = None

    def __call__(self, event: ProgressEvent) -> None:
        if str(event.stage) != self._stage:
            self._stage = str(event.stage)
            label = f"{event.stage.number}/7 {event.stage}"
            if self._task is not None:
                self.progress.update(self._task, completed=self.progress.tasks[-1].total or 1)
            self._task = self.progress.add_task(label, total=event.total or 1)
        if event.total:
            self.progress.update(self._task, completed=event.done, total=event.total)

    def finish(self) -> None:
        if self._task is not None:
            self.progress.update(self._task, completed=self.progress.tasks[-1].total or 1)


@render_app.command("lipsync")
def render_lipsync(
    source: Annotated[Path, typer.Argument(help="The source shot.")],
    project: ProjectOpt,
    language: Annotated[str, typer.Option("--language", help="Target language (BCP-47).")],
    territory: TerritoryOpt,
    operator: Annotated[str, typer.Option("--operator", help="Who renders (for the ledger).")],
    dub: Annotated[Path | None, typer.Option("--dub", help="Recorded dub dialogue stem.")
                   ] = None,
    m_and_e: Annotated[Path | None, typer.Option("--m-and-e", help="Music & effects stem to mix "
                                                 "under the dub.")] = None,
    script: Annotated[Path | None, typer.Option("--script", help="Translated, timed script "
                                                "(SRT or WebVTT) to speak by TTS.")] = None,
    speaker: Annotated[list[str] | None, typer.Option(
        "--speaker", help="Script speaker to face: NAME=t1 (repeat).")] = None,
    track: TrackOpt = None,
    source_language: Annotated[str | None, typer.Option(
        "--source-language", help="The shot's spoken language (for the C2PA 'translated' "
        "action).")] = None,
    channel: ChannelOpt = Channel.STREAMING,
    episode: EpisodeOpt = None,
    scene: SceneOpt = None,
    output: OutputOpt = None,
    tolerance: Annotated[float, typer.Option("--tolerance", help="Seconds a dub may differ from "
                                             "the shot (padded / silent tail trimmed).")
                         ] = 0.5,
    non_commercial: NonCommercialOpt = False,
    executor: ExecutorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lip-sync a shot to a recorded dub or a translated script, under consent."""
    with _errors(as_json):
        request = RenderRequest(
            operation="lipsync", source=source, project_id=project, language=language,
            territory=territory, operator=operator, channel=channel,
            source_language=source_language, episode=episode, scene=scene,
            tracks=tuple(track or ()), commercial=not non_commercial, output_name=output,
            dub=dub, m_and_e=m_and_e, script=script, speakers=_parse_speakers(speaker),
            dub_tolerance_s=tolerance)
    _run(request, as_json, executor)


@render_app.command("reenact")
def render_reenact(
    source: Annotated[Path, typer.Argument(help="The source shot, or a still image.")],
    project: ProjectOpt,
    language: Annotated[str, typer.Option("--language", help="Release language (BCP-47).")],
    territory: TerritoryOpt,
    operator: Annotated[str, typer.Option("--operator", help="Who renders (for the ledger).")],
    driver: Annotated[Path | None, typer.Option("--driver", help="Driving performance video.")
                      ] = None,
    motion: Annotated[Path | None, typer.Option("--motion", help="A saved motion file "
                                                "(`studio motion extract`).")] = None,
    track: TrackOpt = None,
    head_pose: Annotated[bool, typer.Option("--head-pose", help="Also carry the driver's head "
                                            "rotation (within limits).")] = False,
    channel: ChannelOpt = Channel.STREAMING,
    episode: EpisodeOpt = None,
    scene: SceneOpt = None,
    output: OutputOpt = None,
    non_commercial: NonCommercialOpt = False,
    executor: ExecutorOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-animate a performer's face from a driving performance, under both people's consent."""
    with _errors(as_json):
        request = RenderRequest(
            operation="reenact", source=source, project_id=project, language=language,
            territory=territory, operator=operator, channel=channel, episode=episode,
            scene=scene, tracks=tuple(track or ()), commercial=not non_commercial,
            output_name=output, driver=driver, motion=motion, head_pose=head_pose)
    _run(request, as_json, executor)


@motion_app.command("extract")
def motion_extract(
    driver: Annotated[Path, typer.Argument(help="The driving performance video.")],
    out_path: Annotated[Path, typer.Option("--out", help="Motion file to write (.npz).")],
    project: Annotated[str, typer.Option("--project", help="Project the performance is kept "
                                         "for (the file drives renders of this project only).")],
    language: Annotated[str, typer.Option("--language", help="Release language (BCP-47).")],
    territory: TerritoryOpt,
    operator: Annotated[str, typer.Option("--operator", help="Who extracts (for the ledger).")],
    channel: ChannelOpt = Channel.STREAMING,
    neutral: Annotated[str, typer.Option("--neutral", help="Neutral frame: 'rest', 'first' "
                                         "or a frame number.")] = "rest",
    as_json: JsonOpt = False,
) -> None:
    """Keep a driver's performance as a motion file issued by the registry.

    The file holds landmark deltas and the driver's face embeddings, no pixels. The consent
    gate decides performance_driving for the project first (ledgered); only on allow is the
    file written, sealed with the registry's key over its contents, the project, the grant
    and that decision. Renders refuse files without a valid seal.
    """
    from studio.services.motion import MotionExtraction, Neutral, extract_motion_file

    neutral_frame: Neutral
    if neutral in ("rest", "first"):
        neutral_frame = "rest" if neutral == "rest" else "first"
    elif neutral.isdigit():
        neutral_frame = int(neutral)
    else:
        _fail(EXIT_USAGE, "--neutral is 'rest', 'first' or a frame number", as_json, "usage")
    with _errors(as_json):
        issued = extract_motion_file(_context(), MotionExtraction(
            driver, out_path, project, language, territory, channel, operator, neutral_frame))
        motion = issued.motion
    decision, match = issued.decision, issued.match
    if issued.path is None:
        _emit(as_json, {"ok": False, "error": "denied", "decision": decision.to_json()},
              lambda: err.print("[bold red]DENIED[/]: " + "; ".join(decision.reasons),
                                highlight=False))
        raise typer.Exit(EXIT_DENY)
    _emit(as_json, {"ok": True, "out": str(out_path), "frames": motion.frame_count,
                    "frame_rate": str(motion.frame_rate), "performer_id": match.performer_id,
                    "project_id": project, "decision_id": decision.decision_id,
                    "decision_ledger_index": decision.ledger_index,
                    "grants": [g.grant_id for g in decision.grants_used]},
          lambda: out.print(f"kept {motion.frame_count} frames of motion by "
                            f"{match.performer_id} for project {project} → {out_path}\n"
                            f"  sealed by the registry under decision {decision.decision_id} "
                            f"(ledger {decision.ledger_index})", highlight=False))


def _run(request: RenderRequest, as_json: bool, executor: str | None = None) -> None:
    # The render stack (torch, mediapipe, the pipelines) loads only when a render runs.
    from studio.services.render import start_render

    bar = _Bar(enabled=not as_json)
    with _errors(as_json):
        ctx = _context()
        # The same choice as the studio's job pool: the settings' executor unless told.
        run = start_render(ctx, request, listener=bar,
                           executor=executor or ctx.settings.executor)
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        # First Ctrl-C cancels cleanly (nothing is published); a second one is the default.
        run.cancel()
        signal.signal(signal.SIGINT, previous)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, interrupt)
    try:
        with _errors(as_json):
            try:
                with bar.progress:
                    outcome = run.run()
                    bar.finish()
            except RenderDenied as exc:
                denied = exc
                _emit(as_json, {"ok": False, "error": "denied", "stage": str(denied.stage),
                                "job_id": run.job_id, "decision": denied.decision.to_json()},
                      lambda: err.print(f"[bold red]DENIED[/] at {denied.stage}: "
                                        + "; ".join(denied.decision.reasons), highlight=False))
                raise typer.Exit(EXIT_DENY) from None
            except ConsentRefused as exc:  # no consented face: input rejected, ledgered
                refused = exc
                _emit(as_json, {"ok": False, "error": refused.code, "message": refused.message,
                                "job_id": run.job_id, "decision": refused.decision.to_json()},
                      lambda: err.print(f"[bold red]error:[/] {refused.message}",
                                        highlight=False))
                raise typer.Exit(EXIT_REJECTED) from None
            except RenderCancelled as exc:
                _fail(EXIT_DENY, str(exc), as_json, "cancelled")
    finally:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, previous)

    def human() -> None:
        out.print(f"[bold green]published[/] {outcome.output}", highlight=False)
        out.print(f"  sha256 {outcome.output_sha256}\n  manifest {outcome.manifest_label}\n"
                  f"  watermark {outcome.watermark_payload:08x}\n  decision "
                  f"{outcome.decision.decision_id} (ledger {outcome.decision.ledger_index}), "
                  f"output ledger entry {outcome.output_ledger_index}\n  {outcome.frames} "
                  f"frames in {outcome.seconds:.1f} s\n  backend {outcome.backend} "
                  f"({outcome.model}; {outcome.licence})", highlight=False)
        if outcome.qc is not None:  # the render's lip-sync QC (docs/lipsync_qc.md)
            reasons = [r for t in outcome.qc.get("tracks", []) for r in t.get("reasons", [])]
            why = "; ".join(reasons) or str(outcome.qc.get("error") or "")
            out.print("  QC " + (f"[bold red]needs review[/]: {why}" if outcome.needs_review
                                 else "[green]ok[/]"), highlight=False)

    _emit(as_json, {"ok": True, **outcome.to_json()}, human)


def verify(
    file: Annotated[Path, typer.Argument(help="Any media file.")],
    no_watermark: Annotated[bool, typer.Option("--no-watermark", help="Skip watermark "
                                               "detection (faster).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Provenance, signer, consent status now, ledger proof and watermark of a file."""
    from studio.services.verify import start_watermark_read
    from studio.services.verify import verify as verify_file

    with _errors(as_json):
        # The watermark read, most of the time, runs while the registry opens.
        read = None if no_watermark else start_watermark_read(file)
        report = verify_file(_context(), file, watermark=not no_watermark,
                             watermark_read=read)

    def human(r: VerifyReport = report) -> None:
        colour = {"Trusted": "green", "Valid": "yellow", "Recovered": "yellow"}
        out.print(f"[bold]{r.path.name}[/]  sha256 {r.sha256}", highlight=False)
        out.print(f"  provenance  [{colour.get(r.provenance, 'red')}]{r.provenance}[/]")
        out.print(f"  published   {'[green]' if r.publication == 'published' else '[red]'}"
                  f"{r.publication}[/]")
        out.print(f"  signer      {r.signer_trust}")
        out.print(f"  consent now {'[green]' if r.consent_now == 'active' else '[red]'}"
                  f"{r.consent_now}[/]")
        out.print(f"  watermark   {r.watermark_status}")
        held = r.approval is not None and not r.approval.deliverable
        out.print(f"  approval    {'[red]' if held else ''}{r.approval_state}"
                  f"{' (held: not deliverable)[/]' if held else ''}", highlight=False)
        within = r.segments_check in ("edited within authorised", "not recorded")
        out.print(f"  segments    {'[green]' if within else '[red]'}{r.segments_check}[/]",
                  highlight=False)
        report_ = r.source_manifest()
        if r.manifest_error and r.recovered is None:
            out.print(f"  {r.manifest_error}", highlight=False)
        if r.recovered is not None:
            out.print(f"  {r.recovered.note}", highlight=False)
        if report_ is not None:
            for line in report_.describe().splitlines()[1:]:
                out.print(f"  {line}", highlight=False)
        for g in r.consent:
            out.print(f"  grant {g.grant_id}: {g.status} — {g.detail}", highlight=False)
        if r.ledger is not None:
            state = "verified" if r.ledger.verified else "[red]FAILED[/]"
            out.print(f"  ledger: output event at index {r.ledger.index} of "
                      f"{r.ledger.tree_size}, inclusion proof {state}")
        if r.approval_error is not None:
            out.print(f"  [red]approval unknown[/]: {r.approval_error}", highlight=False)
        for d in [] if r.approval is None else r.approval.decisions:
            out.print(f"  {d.decision.value} by {d.performer_id} (grant {d.grant_id}, "
                      f"approval {d.approval_id}, ledger entry {d.index})", highlight=False)
        if r.ledger is None and report_ is not None:
            out.print("  [red]signed, not published[/]: the ledger has no publication event "
                      "for this file (a render that never published; do not use it)")
        if r.reel is not None:  # a reel's master or proxy: each shot's own watermark
            out.print(f"  reel {r.reel['reel_id']} ({r.reel['language']} {r.reel['kind']}): "
                      f"shot watermarks {'ok' if r.reel['ok'] else '[red]NOT OK[/]'}")
            for m in r.reel["shots"]:
                out.print(f"    shot {m['shot']} (frames {m['start']}-{m['end'] - 1}): "
                          f"{m['status']}{' ' + m['payload'] if m['payload'] else ''}",
                          highlight=False)

    _emit(as_json, report.to_json(), human)
    if not report.ok:
        raise typer.Exit(EXIT_DENY)


def qc(
    output: Annotated[Path, typer.Argument(help="The lip-synced render.")],
    source: Annotated[Path, typer.Option("--source", help="The shot it was rendered from.")],
    dub: Annotated[Path, typer.Option("--dub", help="The dub (dialogue) it was synced to.")],
    no_identity: Annotated[bool, typer.Option("--no-identity", help="Skip the identity "
                                              "distance (faster).")] = False,
    report_path: Annotated[Path | None, typer.Option("--report", help="Also write the QC "
                                                     "report JSON here.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """QC of a lip-sync: sync to the dub, leak, range, identity, jitter, bilabials.

    Exit 0: within every threshold; 1: needs review; 3: media QC cannot measure; 4: a file is
    missing. Thresholds and how they were chosen: README, "QC on every render".
    """
    import json

    from pipelines.qc.files import qc_files

    with _errors(as_json):  # a missing file: 4; media QC cannot measure: 3 (the one table)
        report = qc_files(output, source, dub, identity=not no_identity)
    document = report.to_json()
    if report_path is not None:
        report_path.write_text(json.dumps(document, indent=1), encoding="utf-8")

    def human() -> None:
        for t in report.tracks:
            verdict = "[bold red]NEEDS REVIEW[/]" if t.needs_review else "[bold green]ok[/]"
            identity = "n/a" if t.identity is None else f"{t.identity:.3f}"
            out.print(f"{report.output}: {verdict}\n  sync to the dub {t.sync:.2f} "
                      f"(lag {t.sync_lag:+d}; envelope {t.sync_envelope:.2f})  leak "
                      f"{t.leak:+.2f}  range {t.range:.2f}×  identity {identity}  jitter "
                      f"{t.jitter:.2f}×  bilabials closed {t.bilabials_closed}/"
                      f"{t.bilabials_total}", highlight=False)
            for reason in t.reasons:
                out.print(f"  - {reason}", highlight=False)

    _emit(as_json, {"ok": not report.needs_review, **document}, human)
    if report.needs_review:
        raise typer.Exit(EXIT_DENY)
