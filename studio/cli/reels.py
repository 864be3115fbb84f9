"""``studio reel …``: import a reel, cast its characters, render a language version, status.

A thin adapter over :mod:`studio.services.reels`; exit codes as every command (0 ok, 1 a
deny, 2 usage, 3 input rejected, 4 not found).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from consent.fields import Channel
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
            out.print(f"{item['kind']}: {item['path']} (approval: {item['approval']})",
                      highlight=False)
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

    _emit(as_json, {"ok": True, **body}, human)


def _shot_table(shots: list[dict[str, Any]]) -> None:
    table = Table("shot", "state", "characters")
    table.add_column("reason / output", overflow="fold")  # a path is never cut short
    for s in shots:
        table.add_row(str(s["shot"]), s["state"], ", ".join(s["characters"]),
                      s["reason"] or str(s["outcome"].get("output", "")))
    out.print(table)
