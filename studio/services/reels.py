"""Reels (issue 17): import a reel with its shots, cast its characters, render a language
version, and say where each shot stands.

The work is :class:`studio.reels.job.ReelJob`; the records are :mod:`studio.reels.store`
(tables in the registry's database). Pipeline refusals (``pipelines.reel.ReelError``) arrive
as :class:`~studio.errors.ReelInputError` (exit 3) or
:class:`~studio.errors.InputNotFoundError` (exit 4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import InputNotFoundError, ReelInputError, UsageError
from studio.services.context import AppContext

if TYPE_CHECKING:
    from studio.reels.job import BetweenShots, ReelOutcome, ReelRelease
    from studio.reels.store import Reel, ReelJobRecord, ReelStore

_CHARACTER = re.compile(r"^[^\x00-\x1f]{1,64}$")


def _store(ctx: AppContext) -> ReelStore:
    from studio.reels.store import ReelStore

    return ReelStore.open(ctx.registry.store)


@dataclass(frozen=True)
class ReelImport:
    """A reel and where its shots come from: an edit list (CMX 3600 EDL or OpenTimelineIO)
    or automatic detection (cuts, dissolves, fades)."""

    source: Path
    project_id: str
    edit_list: Path | None = None
    detect: bool = False


def import_reel(ctx: AppContext, req: ReelImport) -> Reel:
    from pipelines.media import MediaError
    from pipelines.reel import ReelError, ReelNotFoundError, detect_shots, load_edit_list
    from studio.identity import sha256_file

    if (req.edit_list is None) == (not req.detect):
        raise UsageError("give the reel's edit list (--edl FILE) or ask for detection "
                         "(--detect), one of the two")
    if not req.project_id.strip():
        raise UsageError("give the project id (as in the grants)")
    if not req.source.is_file():
        raise InputNotFoundError(f"reel {req.source}: no such file")
    source = req.source.resolve()
    try:
        if req.edit_list is not None:
            shots = load_edit_list(req.edit_list, source)
            origin = "otio" if req.edit_list.suffix.lower() == ".otio" else "edl"
        else:
            shots = detect_shots(source)
            origin = "detect"
    except ReelNotFoundError as exc:
        raise InputNotFoundError(str(exc)) from None
    except (ReelError, MediaError) as exc:
        raise ReelInputError(f"{req.source.name}: {exc}") from None
    return _store(ctx).add_reel(req.project_id.strip(), source, sha256_file(source), origin,
                                shots)


def cast(ctx: AppContext, reel_id: str, character: str, performer_id: str) -> Reel:
    """Character → performer (a registered performer: their consent is asked per shot)."""
    character = character.strip()
    if not _CHARACTER.match(character):
        raise UsageError(f"character {character!r}: 1-64 printable characters")
    ctx.registry.performer(performer_id)  # NotFoundError (exit 4) for an unknown performer
    store = _store(ctx)
    store.set_cast(reel_id, character, performer_id)
    return store.reel(reel_id)


@dataclass(frozen=True)
class ReelRender:
    """A language version: per-character dialogue stems (``{character: audio}``) or one
    timed script whose lines name the characters; an M&E stem to mix under them."""

    reel_id: str
    release: ReelRelease
    stems: Mapping[str, Path] = field(default_factory=dict)
    script: Path | None = None


def render_reel(ctx: AppContext, req: ReelRender, *, between: BetweenShots | None = None
                ) -> ReelOutcome:
    """Render (or resume) the reel in ``req.release.language``; see
    :class:`studio.reels.job.ReelJob`."""
    from pipelines.reel import ReelError, lines_by_character, load_dialogue
    from studio.identity import sha256_file
    from studio.reels.job import ReelJob
    from studio.reels.store import DialogueSource

    if bool(req.stems) == (req.script is not None):
        raise UsageError("give the dialogue as stems (--dialogue CHARACTER=STEM, repeat) or "
                         "as a timed script (--script FILE), one of the two")
    store = _store(ctx)
    reel = store.reel(req.reel_id)
    for path in [*req.stems.values(), *([req.script] if req.script else []),
                 *([req.release.m_and_e] if req.release.m_and_e else [])]:
        if not Path(path).is_file():
            raise InputNotFoundError(f"{path}: no such file")
    sources: list[DialogueSource]
    if req.script is not None:
        script = req.script.resolve()
        try:
            named = lines_by_character(load_dialogue(script, reel.shots))
        except ReelError as exc:
            raise ReelInputError(str(exc)) from None
        digest = sha256_file(script)
        sources = [DialogueSource(c, "script", script, digest) for c in named]
    else:
        sources = [DialogueSource(c.strip(), "stem", Path(p).resolve(), sha256_file(Path(p)))
                   for c, p in req.stems.items()]
    store.set_dialogue(reel.reel_id, req.release.language, sources)
    job = ReelJob(ctx, store, reel, req.release, store.dialogue(reel.reel_id,
                                                                req.release.language),
                  between=between)
    return job.run()


@dataclass(frozen=True)
class ReelStatus:
    reel: Reel
    jobs: list[ReelJobRecord]

    def to_json(self) -> dict[str, Any]:
        shots = [{"shot": s.index, "start": s.start, "end": s.end, "frames": s.frames,
                  "record_tc_in": s.record_tc_in, "record_tc_out": s.record_tc_out,
                  "transition": None if s.transition_in is None
                  else s.transition_in.kind.value} for s in self.reel.shots]
        return {**self.reel.to_json(), "shot_list": shots,
                "jobs": [j.to_json() for j in self.jobs]}


def reel_status(ctx: AppContext, reel_id: str) -> ReelStatus:
    store = _store(ctx)
    return ReelStatus(store.reel(reel_id), store.jobs_of(reel_id))


def list_reels(ctx: AppContext) -> list[Reel]:
    return _store(ctx).reels()
