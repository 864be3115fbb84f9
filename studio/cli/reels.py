"""``studio reel …``: import a reel, cast its characters, render a language version, status.

A thin adapter over :mod:`studio.services.reels`; exit codes as every command (0 ok, 1 a
deny, 2 usage, 3 input rejected, 4 not found).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from consent.enums import Channel
from studio.cli.common import JsonOpt, _context, _emit, _errors, out
from studio.errors import UsageError

reel_app = typer.Typer(help="Reels: shots, cast, dialogue, and language versions rendered "
                       "under consent shot by shot.", no_args_is_help=True)


@reel_app.command("import")
def reel_import(
    source: Annotated[Path, typer.Argument(help="The reel (a long video).")],
    project: Annotated[str, typer.Option("--project", help="Project id (as in the grants).")],
    edl: Annotated[Path | None, typer.Option("--edl", help="Its edit list: CMX 3600 EDL or "
                                             "OpenTimelineIO (.otio).")] = None,
    detect: Annotated[bool, typer.Option("--detect", help="Find the shots automatically "
                                         "(cuts, dissolves, fades).")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Import a reel and its shot list."""
    from studio.services import reels

    with _errors(as_json):
        ctx = _context()
        try:
            reel = reels.import_reel(ctx, reels.ReelImport(source, project, edl, detect))
        finally:
            ctx.close()
    _emit(as_json, {"ok": True, **reel.to_json()},
          lambda: out.print(f"imported {reel.reel_id}: {len(reel.shots)} shots, "
                            f"{reel.shots.frame_count} frames at {reel.shots.frame_rate} fps "
                            f"from {reel.shots_from} (timecode {reel.shots.start_timecode})",
                            highlight=False))


@reel_app.command("cast")
def reel_cast(
    reel_id: Annotated[str, typer.Argument(help="The reel's id (`studio reel import`).")],
    character: Annotated[str, typer.Argument(help="The character, as the dialogue names it.")],
    performer: Annotated[str, typer.Argument(help="The registered performer who plays them.")],
    as_json: JsonOpt = False,
) -> None:
    """Cast a character: their lines drive this performer's face, under their consent."""
    from studio.services import reels

    with _errors(as_json):
        ctx = _context()
        try:
            reel = reels.cast(ctx, reel_id, character, performer)
        finally:
            ctx.close()
    _emit(as_json, {"ok": True, **reel.to_json()},
          lambda: out.print(f"{reel.reel_id}: {character} is played by {performer}",
                            highlight=False))


def _stems(values: list[str] | None) -> dict[str, Path]:
    stems: dict[str, Path] = {}
    for item in values or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise UsageError(f"--dialogue {item!r}: write CHARACTER=STEM")
        stems[name.strip()] = Path(path.strip())
    return stems


@reel_app.command("render")
def reel_render(
    reel_id: Annotated[str, typer.Argument(help="The reel's id.")],
    language: Annotated[str, typer.Option("--language", help="Target language (BCP-47).")],
    territory: Annotated[str, typer.Option("--territory", help="Release territory.")],
    operator: Annotated[str, typer.Option("--operator", help="Who renders (for the ledger).")],
    dialogue: Annotated[list[str] | None, typer.Option(
        "--dialogue", help="A character's dub stem, as long as the reel: CHARACTER=STEM "
        "(repeat).")] = None,
    script: Annotated[Path | None, typer.Option(
        "--script", help="A timed script naming the characters (SRT/WebVTT speakers, CSV).")
                      ] = None,
    m_and_e: Annotated[Path | None, typer.Option("--m-and-e", help="Music & effects stem to "
                                                 "mix under the dialogue.")] = None,
    source_language: Annotated[str | None, typer.Option("--source-language")] = None,
    channel: Annotated[Channel, typer.Option("--channel")] = Channel.STREAMING,
    non_commercial: Annotated[bool, typer.Option("--non-commercial")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Render a language version shot by shot (resumable), conform and deliver it."""
    from studio.reels.job import ReelRelease
    from studio.services import reels
    from studio.services.reel_review import deliverable_label

    with _errors(as_json):
        release = ReelRelease(language, territory, operator, channel, source_language,
                              m_and_e, not non_commercial)
        ctx = _context()
        try:
            outcome = reels.render_reel(ctx, reels.ReelRender(reel_id, release,
                                                              _stems(dialogue), script))
        finally:
            ctx.close()

    def human() -> None:
        _shot_table(outcome.to_json()["shots"])
        out.print(f"rendered now: {list(outcome.rendered_now) or 'none'}", highlight=False)
        for item in outcome.deliverables.get("items", []):
            out.print(f"{deliverable_label(item)}: {item['path']} (approval: "
                      f"{item['approval']})", highlight=False)
        for note in outcome.notes:
            out.print(f"note: {note}", highlight=False)

    _emit(as_json, {"ok": True, **outcome.to_json()}, human)


@reel_app.command("status")
def reel_status(
    reel_id: Annotated[str, typer.Argument(help="The reel's id.")],
    as_json: JsonOpt = False,
) -> None:
    """The reel, its cast, and each language version's shots and deliverables."""
    from studio.services import reels

    with _errors(as_json):
        ctx = _context()
        try:
            status = reels.reel_status(ctx, reel_id)
        finally:
            ctx.close()
    body = status.to_json()

    def human() -> None:
        out.print(f"{body['reel_id']} ({body['project_id']}): {body['shots']} shots, "
                  f"{body['frames']} frames; cast: "
                  f"{', '.join(f'{c}={p}' for c, p in body['cast'].items()) or 'none'}",
                  highlight=False)
        for job in body["jobs"]:
            out.print(f"{job['language']}: {job['status']} {job['counts']}"
                      f"{' - ' + job['error'] if job['error'] else ''}", highlight=False)
            _shot_table(job["shots"])
            _deliverable_table(job["deliverables"])

    _emit(as_json, {"ok": True, **body}, human)


def _deliverable_table(deliverables: dict[str, Any]) -> None:
    """The signed files of a language version: proxy, master, mix, stems, M&E."""
    from studio.services.reel_review import deliverable_label

    items = deliverables.get("items", [])
    if not items:
        return
    table = Table("deliverable", "approval", "sha256")
    table.add_column("file", overflow="fold")
    for item in items:
        table.add_row(deliverable_label(item), str(item.get("approval", "")),
                      str(item.get("sha256", ""))[:16], str(item.get("path", "")))
    out.print(table)


def _shot_table(shots: list[dict[str, Any]]) -> None:
    table = Table("shot", "state", "characters")
    table.add_column("reason / output", overflow="fold")  # a path is never cut short
    for s in shots:
        table.add_row(str(s["shot"]), s["state"], ", ".join(s["characters"]),
                      s["reason"] or str(s["outcome"].get("output", "")))
    out.print(table)


LanguageOpt = Annotated[str, typer.Option("--language", "--lang",
                                          help="The language version (BCP-47).")]


@reel_app.command("review")
def reel_review(
    reel_id: Annotated[str, typer.Argument(help="The reel's id.")],
    language: LanguageOpt,
    shot: Annotated[int | None, typer.Option("--shot", help="The shot to decide on (its "
                                             "index); without it, the review is listed.")
                    ] = None,
    approve: Annotated[bool, typer.Option("--approve", help="Approve the shot's render.")
                       ] = False,
    reject: Annotated[bool, typer.Option("--reject", help="Reject it: the reel is not "
                                         "delivered until it is rendered again or approved.")
                      ] = False,
    note: Annotated[str, typer.Option("--note", help="Why (required to reject).")] = "",
    reviewer: Annotated[str, typer.Option("--reviewer", help="Who reviews (for the "
                                          "record).")] = "",
    render: Annotated[str, typer.Option("--render", help="The render you reviewed: its "
                                        "SHA-256 or its first 16 hex digits, as the listing "
                                        "shows them (required with --approve or --reject; "
                                        "exit 5 if the shot was rendered again since).")
                      ] = "",
    as_json: JsonOpt = False,
) -> None:
    """A language version's review: each shot's state, QC, render and decision; or approve
    or reject one shot's render with a note."""
    from studio.services import reel_review

    with _errors(as_json):
        if shot is not None and approve == reject:
            raise UsageError("give --approve or --reject (one of the two) with --shot")
        if shot is None and (approve or reject):
            raise UsageError("name the shot to decide on (--shot N)")
        if shot is not None and not render.strip():
            raise UsageError("name the render you reviewed (--render, from the listing: "
                             f"`studio reel review {reel_id} --language {language}`)")
        ctx = _context()
        try:
            if shot is not None:
                reel_review.decide(ctx, reel_review.ShotDecision(
                    reel_id, language, shot, "approved" if approve else "rejected", note,
                    reviewer or "cli", render))
            review = reel_review.review_of(ctx, reel_id, language)
        finally:
            ctx.close()
    body = review.to_json()

    def human() -> None:
        table = Table("shot", "timecode", "state", "QC", "render", "review")
        table.add_column("note", overflow="fold")
        for row in review.rows:
            qc = "—" if row.needs_review is None else (
                "needs review" if row.needs_review else "ok")
            decision = "" if row.review is None else (
                f"{row.review.decision.value} ({row.review.reviewer})")
            table.add_row(str(row.shot), row.record_tc_in, row.state, qc,
                          (row.output_sha256 or "")[:reel_review.MIN_RENDER_PREFIX], decision,
                          "" if row.review is None else row.review.note)
        out.print(table)
        out.print(f"{review.reel.reel_id} in {review.job.language}: {review.job.status}; "
                  f"rejected {review.rejected or 'none'}, not reviewed "
                  f"{review.unreviewed or 'none'}", highlight=False)
        if review.tampered:  # the decisions listed are the ledger's
            out.print(f"review records tampered with: {review.tampered}", highlight=False)

    _emit(as_json, {"ok": True, **body}, human)


@reel_app.command("publish")
def reel_publish(
    reel_id: Annotated[str, typer.Argument(help="The reel's id.")],
    language: LanguageOpt,
    by: Annotated[str, typer.Option("--by", help="Who releases it (for the record).")],
    as_json: JsonOpt = False,
) -> None:
    """Release a reviewed language version for delivery (exit 1 while a shot is rejected or
    not reviewed, a deliverable awaits the performer's approval, or the review records
    differ from the ledger's; exit 5 when a run held by a rejection changed its inputs:
    render it again)."""
    from studio.services import reel_review

    with _errors(as_json):
        ctx = _context()
        try:
            released = reel_review.publish(ctx, reel_id, language, by)
        finally:
            ctx.close()

    def human() -> None:
        out.print(f"{released.reel_id} in {released.language} released by "
                  f"{released.released_by} (ledger entry {released.ledger_index}):",
                  highlight=False)
        for item in released.items:
            out.print(f"  {item['kind']}: {item['path']}", highlight=False)

    _emit(as_json, {"ok": True, **released.to_json()}, human)
