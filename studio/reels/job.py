"""The reel job: one reel in one language, shot by shot, then conformed and delivered.

For every shot of the reel's shot list, in order:

* the lines spoken in it are found (``pipelines.reel.assign_dialogue``: per-character stems
  by voice activity, or a timed script's lines);
* a shot in which no cast character speaks is **copied** (left to the conform untouched);
* otherwise the shot is cut to a file and its faces are identified (the render's own
  analysis, kept sealed so the render reuses it); the face track of each speaking
  character's performer is chosen and one :class:`~studio.render.job.RenderJob` lip-syncs
  every chosen face to its character's dialogue cut to the shot (stems: a dub with a
  channel per speaker; a script: one script whose cues name them), up to
  ``MAX_SPEAKERS`` faces; the consent gate decides per shot and face inside the render; the
  output is signed, watermarked and ledgered as any render's;
* a shot whose speaking character's face is not on screen (no face at all, or only other
  performers') is copied and said so; one whose faces all match no performer with consent is
  a **refused** shot, ledgered (``refuse_unconsented_shot``), and a gate deny is a refused
  shot with the gate's reasons: nothing of either is rendered. When several faces were asked
  about in one decision and the deny names some performers only, the others are asked about
  again alone and rendered; the refused faces stay untouched (``left_out``).

Each shot's state is written to the database as it changes (:mod:`studio.reels.store`), with
the key of the inputs its render used (:func:`shot_key`): running the job again resumes after
the last finished shot, and after one character's dub changes only the shots whose key
changed (that character's) render again. Refused and failed shots are asked again on every
run: consent may have been given since.

Then the full reel is conformed (``pipelines.reel.conform_reel``: the source's frame count,
rate and timecode; the rendered shots in place; the characters' stems mixed over the M&E and
normalised to EBU R128) into an H.264 review proxy and a ProRes 422 HQ master (and the mix as
WAV). The gate is asked once more for the reel as a whole (every rendered shot's subjects and
segments, in reel frames, under the reel's own hash): each deliverable is signed (C2PA, each
rendered shot an ingredient carrying its own manifest, the stems and M&E ingredients) and
published under that decision (``Registry.publish_output``: the last check and the
publication in one transaction).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import html
import json
import logging
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import Any

from consent.errors import ConsentError
from consent.fields import Channel
from consent.gate import AuthorizationRequest, Decision, IdentityMatch
from pipelines.errors import PipelineError
from pipelines.media import MediaError, probe
from pipelines.media.audio import EBU_R128, Audio, downmix, load_audio, mix, normalise, resample
from pipelines.reel import (
    DialogueAssignment,
    DialogueLine,
    ReelError,
    ReelNotFoundError,
    Shot,
    assign_dialogue,
    conform_reel,
    load_dialogue,
    stem_lines,
)
from studio import __version__
from studio.errors import (
    ConsentRefused,
    InputNotFoundError,
    JobStateError,
    NoConsentedFaceError,
    ReelInputError,
    RenderDenied,
    ShotRejectedError,
    StudioError,
)
from studio.identity import IdentifyResult, sha256_file
from studio.services.context import AppContext

from .cutting import cut_shots, shot_audio, write_channels, write_wav
from .reviews import rejected_error
from .store import DialogueSource, Reel, ReelStore, ShotRecord, ShotState
from .voiceover import as_read, speak_lines, unspoken_lines

log = logging.getLogger(__name__)

MIX_RATE = 48_000
#: Raised whenever what a delivery is made from changes, so that deliverables made by an
#: earlier version are made again (2: script lines no render speaks are voiced in the mix).
DELIVERY_VERSION = 2
#: Changes to what a shot's key covers (a new field) make every key new.
KEY_VERSION = 1

#: Called with a shot's index once its state is settled, before the next shot (tests put an
#: interruption there; a UI, progress).
BetweenShots = Callable[[int], None]


@dataclass(frozen=True)
class ReelRelease:
    """The language version asked for, and who asks."""

    language: str
    territory: str
    operator: str
    channel: Channel = Channel.STREAMING
    source_language: str | None = None
    m_and_e: Path | None = None
    commercial: bool = True

    def to_json(self) -> dict[str, Any]:
        return {"language": self.language, "territory": self.territory,
                "operator": self.operator, "channel": str(self.channel),
                "source_language": self.source_language,
                "m_and_e": None if self.m_and_e is None else str(self.m_and_e),
                "commercial": self.commercial}


@dataclass(frozen=True)
class ShotPlan:
    """What one shot needs: the cast characters speaking in it and their dub for it."""

    shot: Shot
    characters: tuple[str, ...]
    key: str
    dubs: dict[str, Path] = field(default_factory=dict)  # stems: the dub cut to the shot
    scripts: dict[str, Path] = field(default_factory=dict)  # scripts: the shot's lines
    #: scripts: each character's lines in the shot (what ``scripts`` holds, as lines), so
    #: that the lines of several speakers on screen together can go into one script.
    lines: dict[str, tuple[Any, ...]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()  # lines of characters who are not cast


@dataclass(frozen=True)
class ReelOutcome:
    job_id: str
    shots: tuple[ShotRecord, ...]
    rendered_now: tuple[int, ...]
    deliverables: dict[str, Any]
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "shots": [s.to_json() for s in self.shots],
                "rendered_now": list(self.rendered_now), "deliverables": self.deliverables,
                "notes": list(self.notes)}


def shot_key(reel: Reel, shot: Shot, release: ReelRelease, parts: list[dict[str, Any]]
             ) -> str:
    """SHA-256 of everything a shot's render depends on: the reel's bytes and the shot's
    frames, the release, and per speaking character their performer and dub (``parts``)."""
    body = {"v": KEY_VERSION, "reel": reel.source_sha256, "project": reel.project_id,
            "frames": [shot.start, shot.end], "language": release.language,
            "territory": release.territory, "channel": str(release.channel),
            "source_language": release.source_language, "commercial": release.commercial,
            "characters": parts}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


@dataclass
class ReelJob:
    """Run (or resume) ``reel`` in ``release.language`` (module docstring)."""

    ctx: AppContext
    reels: ReelStore
    reel: Reel
    release: ReelRelease
    dialogue: list[DialogueSource]
    between: BetweenShots | None = None

    def __post_init__(self) -> None:
        settings = self.ctx.settings
        self.folder = settings.data_dir / "reels" / self.reel.reel_id
        self.lang_folder = self.folder / self.release.language
        self.notes: list[str] = []
        self.job_id = ""
        self.assignment: DialogueAssignment | None = None

    # -- the run ----------------------------------------------------------------------------

    def run(self) -> ReelOutcome:
        reel = self.reel
        if not reel.source.is_file():
            raise InputNotFoundError(f"the reel's source {reel.source} is gone")
        if sha256_file(reel.source) != reel.source_sha256:
            raise ReelInputError(f"{reel.source.name} changed since the reel was imported "
                                 "(its SHA-256 differs): import it again")
        if not self.dialogue:
            raise ReelInputError(f"reel {reel.reel_id} has no dialogue in "
                                 f"{self.release.language}")
        self.lang_folder.mkdir(parents=True, exist_ok=True)
        with _exclusive(self.lang_folder / "lock", f"reel {reel.reel_id} in "
                        f"{self.release.language}"):
            return self._run()

    def _run(self) -> ReelOutcome:
        reel = self.reel
        self._sweep()
        assignment = self._assign()
        self.assignment = assignment
        plans = self._plan(assignment)
        job_id = self.reels.open_job(reel.reel_id, self.release.language,
                                     self.release.to_json(), len(reel.shots))
        self.job_id = job_id
        try:
            rendered = self._shots(job_id, plans)
            record = self.reels.job(job_id)
            if any(s.state is ShotState.FAILED for s in record.shots):
                failed = [s.shot for s in record.shots if s.state is ShotState.FAILED]
                self.reels.finish_job(job_id, "failed", error=f"shots {failed} failed; "
                                      "nothing delivered (run the job again)")
                return ReelOutcome(job_id, record.shots, rendered, {}, tuple(self.notes))
            # A shot rejected in review (its current render) holds the whole reel back.
            rejected = rejected_error(self.reels, record, reel.reel_id)
            if rejected is not None:
                # The digest this run would have delivered under: equal to the record's,
                # the deliverables on record are this version, releasable once the shot is
                # approved (reviews.held_but_unchanged) without rendering again.
                self.reels.finish_job(job_id, "rejected", error=rejected.message,
                                      deliverables={**record.deliverables,
                                                    "held_digest": self._digest(record.shots)})
                raise rejected
            deliverables = self._deliver(record.deliverables, record.shots)
            self.reels.finish_job(job_id, "done", deliverables=deliverables)
            return ReelOutcome(job_id, self.reels.job(job_id).shots, rendered, deliverables,
                               tuple(self.notes))
        except ShotRejectedError:
            raise
        except BaseException as exc:
            self.reels.finish_job(job_id, "interrupted", error=f"{type(exc).__name__}: {exc}")
            raise

    def _sweep(self) -> None:
        """What a run killed earlier left: renders and publications that died (the render's
        own sweep), and this language's half-made deliverables."""
        from studio.render import staging

        staging.sweep(self.ctx.settings, self.ctx.registry)
        for old in self.lang_folder.glob("deliver-*"):
            shutil.rmtree(old, ignore_errors=True)
        for old in self.lang_folder.glob("scan-*"):
            shutil.rmtree(old, ignore_errors=True)

    # -- dialogue ---------------------------------------------------------------------------

    def _assign(self) -> DialogueAssignment:
        shots = self.reel.shots
        stems = {d.character: d.path for d in self.dialogue if d.kind == "stem"}
        scripts = dict.fromkeys(d.path for d in self.dialogue if d.kind == "script")
        for d in self.dialogue:
            if sha256_file(d.path) != d.sha256:
                raise ReelInputError(f"{d.path.name} ({d.character}'s dialogue) changed since "
                                     "it was given: give it again")
        try:
            lines: list[DialogueLine] = list(stem_lines(stems)) if stems else []
            for script in scripts:
                lines.extend(load_dialogue(script, shots))
            assignment = assign_dialogue(lines, shots, crossing="split")
        except ReelNotFoundError as exc:
            raise InputNotFoundError(str(exc)) from None
        except ReelError as exc:
            raise ReelInputError(str(exc)) from None
        for c in assignment.crossing:
            self.notes.append(f"{c.line.origin} ({c.line.character}) crosses the cut between "
                              f"shots {', '.join(map(str, c.shots))}: split between them")
        for line in assignment.unnamed:
            self.notes.append(f"{line.origin} names no character: neither rendered nor "
                              "spoken in the mix")
        return assignment

    def _plan(self, assignment: DialogueAssignment) -> list[ShotPlan]:
        reel, release = self.reel, self.release
        rate = reel.shots.frame_rate
        stems: dict[str, Audio] = {}
        for d in self.dialogue:
            if d.kind == "stem":
                try:
                    stems[d.character] = load_audio(d.path)
                except MediaError as exc:
                    raise ReelInputError(f"{d.character}'s stem {d.path.name}: {exc}") from None
        plans: list[ShotPlan] = []
        for shot in reel.shots:
            # The part of a script line split across a cut too short for any of its words
            # says nothing here (``ShotLine.words``): not a speaker of this shot.
            speaking = {c: v for c, v in assignment.shots[shot.index].by_character.items()
                        if any(sl.words() or not sl.split or not sl.line.text for sl in v)}
            cast = tuple(c for c in speaking if c in reel.cast)
            notes = tuple(f"shot {shot.index}: {c} speaks but is not cast (`studio reel "
                          f"cast`): not rendered" for c in speaking if c not in reel.cast)
            self.notes.extend(notes)
            parts: list[dict[str, Any]] = []
            dubs: dict[str, Path] = {}
            scripts: dict[str, Path] = {}
            said: dict[str, tuple[Any, ...]] = {}
            for c in cast:
                part: dict[str, Any] = {"character": c, "performer": reel.cast[c]}
                if c in stems:
                    cut = shot_audio(stems[c], shot.start, shot.end, rate)
                    digest = hashlib.sha256(cut.samples.tobytes()).hexdigest()
                    path = self.lang_folder / "dubs" / f"s{shot.index:03d}-{digest[:16]}.wav"
                    if not path.is_file():
                        write_wav(cut, path)
                    dubs[c] = path
                    part["dub"] = digest
                else:
                    said[c] = tuple(assignment.lines(shot.index, c))
                    srt = _shot_script({c: said[c]}, shot, rate)
                    scripts[c] = self._script_file(shot, srt)
                    part["script"] = hashlib.sha256(srt.encode()).hexdigest()
                parts.append(part)
            plans.append(ShotPlan(shot, cast, shot_key(reel, shot, release, parts), dubs,
                                  scripts, said, notes))
        return plans

    # -- shots ------------------------------------------------------------------------------

    def _shots(self, job_id: str, plans: list[ShotPlan]) -> tuple[int, ...]:
        before = {s.shot: s for s in self.reels.job(job_id).shots}
        todo = [p for p in plans if not self._kept(before[p.shot.index], p)]
        cuts = {p.shot.index: self._cut_path(p.shot) for p in todo if p.characters}
        missing = {i: path for i, path in cuts.items() if not path.is_file()}
        try:
            cut_shots(self.reel.source, self.reel.shots, missing)
        except ReelError as exc:
            raise ReelInputError(str(exc)) from None
        rendered: list[int] = []
        for plan in todo:
            index = plan.shot.index
            if not plan.characters:
                reason = plan.notes[0] if plan.notes else "no dialogue"
                self.reels.set_shot(job_id, ShotRecord(index, ShotState.COPIED, plan.key, (),
                                                       reason))
            else:
                self.reels.set_shot(job_id, ShotRecord(index, ShotState.RENDERING, plan.key,
                                                       plan.characters))
                previous = before[index]
                record = self._render(plan, cuts[index], previous)
                self.reels.set_shot(job_id, record)
                # A render kept (``_render`` returned it, maybe with fresher notes) is not new.
                kept = previous.state is ShotState.RENDERED \
                    and previous.outcome.get("output") == record.outcome.get("output")
                if record.state is ShotState.RENDERED and not kept:
                    rendered.append(index)
            if self.between is not None:
                self.between(index)
        return tuple(rendered)

    def _kept(self, record: ShotRecord, plan: ShotPlan) -> bool:
        """A finished shot whose inputs are unchanged (and whose render is still there). A
        shot copied because its speaker was not on screen is looked at again, like a
        refused one: an enrolment or a grant may have changed that since; so is a shot
        rendered for some of its speakers only (``_render`` keeps it when the faces it would
        now edit are the same)."""
        if not record.state.finished or record.input_key != plan.key:
            return False
        if record.state is ShotState.COPIED:
            return not record.characters
        return self._render_still_good(record) and not _partial(record)

    def _render_still_good(self, record: ShotRecord) -> bool:
        output = record.outcome.get("output")
        return output is not None and Path(output).is_file() and self._grants_active(record)

    def _grants_active(self, record: ShotRecord) -> bool:
        """Whether every grant a kept render was made under is still active: after a
        revocation (or a lapse) the shot is asked about again, and the gate refuses it."""
        from consent.errors import NotFoundError

        for grant in record.outcome.get("decision", {}).get("grants_used", []):
            try:
                if self.ctx.registry.grant(grant["grant_id"]).status != "active":
                    return False
            except NotFoundError:
                return False
        return True

    def _cut_path(self, shot: Shot) -> Path:
        return self.folder / "shots" / f"s{shot.index:03d}-{shot.start}-{shot.end}.mp4"

    def _render(self, plan: ShotPlan, cut: Path, previous: ShotRecord | None = None
                ) -> ShotRecord:
        """Identify the shot's faces, choose the speaking characters', render them; or keep
        ``previous``, a render of this shot's inputs for some of its speakers, when the
        faces chosen now are the ones it edited."""
        from studio.services.refusals import refuse_unconsented_shot

        shot, release, ctx = plan.shot, self.release, self.ctx
        index = shot.index
        identity = self._identify(cut)
        tracks = {t.track_id: t.match.performer_id for t in identity.tracks}
        found = {c: tid for c in plan.characters for tid, pid in tracks.items()
                 if pid == self.reel.cast[c]}
        if not found:
            speaking = ", ".join(f"{c} ({self.reel.cast[c]})" for c in plan.characters)
            # Faces, none of them a performer with consent: the speaker's face may be one of
            # them (unenrolled, or revoked: templates deleted), so the gate's refusal is
            # ledgered. No face at all: a voice over, nothing to ask about.
            if tracks and not any(pid is not None for pid in tracks.values()):
                exc = NoConsentedFaceError(
                    f"shot {index} ({shot.record_tc_in}): {speaking} speaks, but no face in "
                    f"the shot matches an enrolled performer with consent (tracks: "
                    f"{', '.join(tracks) or 'none'})", tuple(tracks),
                    tuple(identity.matches))
                refused = refuse_unconsented_shot(
                    ctx, exc, operation="lipsync", project_id=self.reel.project_id,
                    language=release.language, territory=release.territory,
                    channel=release.channel, operator=release.operator,
                    source_sha256=sha256_file(cut), commercial=release.commercial)
                return ShotRecord(index, ShotState.REFUSED, plan.key, plan.characters,
                                  str(refused), {"decision_id": refused.decision.decision_id})
            return ShotRecord(index, ShotState.COPIED, plan.key, plan.characters,
                              f"{speaking} not on screen in shot {index}: left untouched")
        character = next(c for c in plan.characters if c in found)  # the first to speak
        # Speakers on screen together, each with dialogue of their own (a stem, or lines of
        # the script): one render edits every one of their faces, each to its own voice (a
        # dub with a channel per speaker, or one script whose cues name them) under its own
        # performer's grant: one gate decision names every subject, the edit guard runs
        # once. A face speaks for one character (the first to speak, if a performer is cast
        # in two roles), and at most MAX_SPEAKERS faces are edited in one shot.
        chosen = _choose(plan, found) or [character]
        # A cast speaker whose performer's face is not recognised (off screen, never
        # enrolled, or revoked: templates deleted) is not rendered, and said so.
        unseen = [c for c in plan.characters if c not in found]
        if unseen:
            self.notes.append(f"shot {index}: {', '.join(unseen)} not on screen (no face "
                              "matches their performer): not rendered")
        others = [c for c in found if c not in chosen]
        if others:
            self.notes.append(f"shot {index}: {', '.join(others)} also speak on screen; "
                              f"only {', '.join(chosen)} rendered")
        record, denied = self._render_chosen(plan, cut, found, chosen, previous)
        if denied is None or len(chosen) < 2:
            # A kept render's ``left_out`` was an earlier run's: nobody was refused beside
            # the faces chosen now (the one left out then is not on screen with consent).
            outcome = {k: v for k, v in record.outcome.items() if k != "left_out"}
            return record if outcome == record.outcome else replace(record, outcome=outcome)
        # One decision asks about every chosen face, so one performer's deny refuses it
        # whole. The gate is then asked about the faces whose performers no failed rule
        # names, alone (a decision of its own, ledgered): their faces are rendered and the
        # others' left untouched, their lines voiced over them in the mix (``voiceover``).
        # A failed rule that names no performer (the project, the channel, ...) is every
        # face's: the shot stays refused.
        failed = [r for r in denied.rules if not r.passed]
        blocked = {r.performer_id for r in failed}
        if None in blocked:
            return record
        # Chosen again without them: a speaker past MAX_SPEAKERS may take a refused one's
        # place (asked about in the new decision like the rest).
        remaining = _choose(plan, {c: t for c, t in found.items()
                                   if self.reel.cast[c] not in blocked})
        if not remaining:
            return record
        left_out = [c for c in chosen if c not in remaining]
        self.notes.append(f"shot {index}: {', '.join(left_out)} refused by the gate "
                          f"({'; '.join(denied.reasons)}): only {', '.join(remaining)} "
                          "rendered")
        retry, _ = self._render_chosen(plan, cut, found, remaining, previous)
        return replace(retry, outcome={**retry.outcome, "left_out": {
            "characters": left_out, "decision_id": denied.decision_id,
            "reasons": denied.reasons}})

    def _render_chosen(self, plan: ShotPlan, cut: Path, found: Mapping[str, str],
                       chosen: list[str], previous: ShotRecord | None
                       ) -> tuple[ShotRecord, Decision | None]:
        """One render of ``chosen``'s faces (or ``previous``, when it edited exactly those
        faces from these inputs and still stands); with the gate's deny when refused."""
        from studio.render.request import RenderRequest
        from studio.services.render import start_render

        shot, release, ctx = plan.shot, self.release, self.ctx
        index = shot.index
        character = chosen[0]
        together = len(chosen) > 1
        if (previous is not None and previous.state is ShotState.RENDERED
                and previous.input_key == plan.key
                and previous.outcome.get("tracks") == {c: found[c] for c in chosen}
                and self._render_still_good(previous)):
            return previous, None  # the speakers it left out still are not rendered
        label = found[character]
        name = (f"{self.reel.reel_id}.{release.language}.s{index:03d}."
                f"{plan.key[:10]}.{datetime.now(UTC).strftime('%H%M%S%f')}.mp4")
        dub = script = None
        speakers = {c: found[c] for c in chosen} if together else {}
        if character in plan.scripts:
            script = self._script_file(plan.shot, _shot_script(
                {c: plan.lines[c] for c in chosen}, plan.shot, self.reel.shots.frame_rate))
            # The script's cues are under each character's speaker label, not always the name.
            labels = _speaker_labels(chosen)
            speakers = {labels[c]: found[c] for c in chosen}
        elif together:
            dub = self._speaker_dub(plan, chosen)
        else:
            dub = plan.dubs.get(character)
        request = RenderRequest(
            operation="lipsync", source=cut, project_id=self.reel.project_id,
            language=release.language, territory=release.territory, operator=release.operator,
            channel=release.channel, source_language=release.source_language,
            tracks=tuple(found[c] for c in chosen), commercial=release.commercial,
            output_name=name, dub=dub, script=script,
            speakers=speakers,
            dub_channels=tuple(chosen) if together and dub is not None else ())
        try:
            outcome = start_render(ctx, request).run()
        except (RenderDenied, ConsentRefused) as exc:
            # One decision for every chosen face: a deny (any one performer's grant) is the
            # whole shot's, and the record names every face that was asked about.
            return ShotRecord(index, ShotState.REFUSED, plan.key, plan.characters, str(exc),
                              {"decision_id": exc.decision.decision_id,
                               "character": character, "track": label,
                               "characters": chosen,
                               "tracks": {c: found[c] for c in chosen}}), exc.decision
        except (StudioError, ConsentError, PipelineError, ValueError) as exc:
            return ShotRecord(index, ShotState.FAILED, plan.key, plan.characters,
                              f"{type(exc).__name__}: {exc}",
                              {"character": character, "track": label,
                               "characters": chosen,
                               "tracks": {c: found[c] for c in chosen}}), None
        return ShotRecord(index, ShotState.RENDERED, plan.key, plan.characters, None, {
            "character": character, "track": label, "performer": self.reel.cast[character],
            "characters": chosen, "tracks": {c: found[c] for c in chosen},
            "performers": {c: self.reel.cast[c] for c in chosen},
            "output": str(outcome.output), "sha256": outcome.output_sha256,
            "manifest": outcome.manifest_label, "render_job": outcome.job_id,
            "frames": outcome.frames, "seconds": round(outcome.seconds, 2),
            "approval": outcome.approval, "untouched": list(outcome.untouched),
            "backend": {"name": outcome.backend, "model": outcome.model,
                        "licence": outcome.licence},
            "decision": outcome.decision.to_json()}), None

    def _script_file(self, shot: Shot, srt: str) -> Path:
        """``srt`` kept under the language's scripts, named by its hash."""
        digest = hashlib.sha256(srt.encode()).hexdigest()
        path = self.lang_folder / "scripts" / f"s{shot.index:03d}-{digest[:16]}.srt"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.is_file():
            path.write_text(srt, encoding="utf-8")
        return path

    def _speaker_dub(self, plan: ShotPlan, characters: list[str]) -> Path:
        """The characters' dubs for the shot in one WAV, a channel each (in order)."""
        import numpy as np

        cuts = [_mono48(load_audio(plan.dubs[c])) for c in characters]
        length = max(a.shape[1] for a in cuts)
        samples = np.concatenate([_fit(a, length) for a in cuts])
        digest = hashlib.sha256(samples.tobytes()).hexdigest()
        path = self.lang_folder / "dubs" / f"s{plan.shot.index:03d}-{digest[:16]}.speakers.wav"
        if not path.is_file():
            write_channels([Audio(row[None, :], MIX_RATE) for row in samples], path)
        return path

    def _identify(self, cut: Path) -> IdentifyResult:
        """The shot's faces and who they are, from the render's own analysis (kept sealed by
        :mod:`studio.render.analysis_cache`, so the render that follows reuses it)."""
        from studio.identity import embedder_for, identify_scan
        from studio.render.analysis_cache import analyse_for_render, identity_gap_frames

        settings = self.ctx.settings
        info = probe(cut)
        rate = info.require_video().frame_rate
        embedder = embedder_for(settings)
        work = Path(tempfile.mkdtemp(prefix="scan-", dir=self.lang_folder))
        try:
            analysis, _ = analyse_for_render(settings, cut, sha256_file(cut), info, embedder,
                                             work)
            return identify_scan(analysis.scan, self.ctx.registry, embedder, max_faces=8,
                                 max_gap=identity_gap_frames(settings, rate))
        finally:
            shutil.rmtree(work, ignore_errors=True)

    # -- deliverables -----------------------------------------------------------------------

    def _deliver(self, previous: dict[str, Any], shots: tuple[ShotRecord, ...]
                 ) -> dict[str, Any]:
        rendered = [s for s in shots if s.state is ShotState.RENDERED]
        digest = self._digest(shots)
        if previous.get("digest") == digest and all(
                Path(item["path"]).is_file() for item in previous.get("items", [])):
            return previous
        if not rendered:
            self.notes.append("no shot was rendered: nothing to deliver")
            return {"digest": digest, "items": [], "note": "no shot was rendered"}
        return Delivery(self, rendered, digest).run()

    def _digest(self, shots: tuple[ShotRecord, ...]) -> str:
        """What the deliverables are made from: the reel, the release, the M&E, the
        dialogue and each shot's state and render."""
        inputs = {"version": DELIVERY_VERSION,
                  "reel": self.reel.source_sha256, "release": self.release.to_json(),
                  "m_and_e": None if self.release.m_and_e is None
                  else sha256_file(self.release.m_and_e),
                  "dialogue": sorted((d.character, d.sha256) for d in self.dialogue),
                  "shots": [(s.shot, s.state.value, s.input_key, s.outcome.get("sha256"))
                            for s in shots]}
        return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@contextlib.contextmanager
def _exclusive(path: Path, what: str) -> Iterator[None]:
    """One run of a reel job per reel and language at a time (an advisory lock, released by
    the kernel when the process dies, so a killed run never blocks the next)."""
    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise JobStateError(f"{what} is being rendered by another run; wait for it, or "
                                "see `studio reel status`") from None
        yield
    finally:
        os.close(fd)


def _choose(plan: ShotPlan, found: Mapping[str, str]) -> list[str]:
    """The speakers one render edits: in order of speech, those on screen (``found``:
    character → face) with dialogue of their own, one character per face, at most
    ``MAX_SPEAKERS``."""
    from studio.render.request import MAX_SPEAKERS

    chosen: list[str] = []
    for c in plan.characters:
        if (c in found and (c in plan.dubs or c in plan.scripts)
                and found[c] not in {found[o] for o in chosen}
                and len(chosen) < MAX_SPEAKERS):
            chosen.append(c)
    return chosen


def _partial(record: ShotRecord) -> bool:
    """A render that left out some of the shot's speakers (not on screen with consent then)."""
    return not set(record.characters) <= set(record.outcome.get("characters", ()))


def _shot_script(lines: Mapping[str, tuple[Any, ...]], shot: Shot, rate: Fraction) -> str:
    """The characters' lines in the shot as one SRT, timed from the shot's first frame, each
    cue under its character's speaker label (:func:`_speaker_labels`: the render maps each
    label to its face), in time order. The text is escaped (``&``, ``<``, ``>``): the script
    reader strips tags and takes a voice span (``<v BEN>``) for the cue's speaker, so a line
    of ANA's whose text carries one would drive BEN's face; escaped, it reads back as
    written."""
    labels = _speaker_labels(lines)
    zero = Fraction(shot.start) / rate
    # A line split across a cut says each of its words once: this part's share
    # (``ShotLine.words``), in this part's time; a part with no word of it has no cue.
    timed = sorted(((max(Fraction(0), a - zero), min(Fraction(shot.frames) / rate, b - zero),
                     labels[character], html.escape(text, quote=False))
                    for character, said in lines.items() for sl in said
                    for a, b in [sl.seconds(rate)]
                    for text in [_cue_text(sl)] if text),
                   key=lambda cue: (cue[0], cue[1], cue[2]))
    return "\n".join(f"{n}\n{_srt_time(a)} --> {_srt_time(b)}\n{label}: {text}\n"
                     for n, (a, b, label, text) in enumerate(timed, start=1))


def _cue_text(sl: Any) -> str:
    """What a line (``ShotLine``) says in its shot's script: its words (``ShotLine.words``);
    ``...`` for a line without text, in each of its parts (its character speaks there:
    ``_plan``), and for a text the script reader reads as nothing (a style override alone
    would read back as the speaker label said by no speaker); ``""``, no cue, for the part
    of a split line that got none of its words."""
    text: str = sl.words()
    if not text:
        return "" if sl.split and sl.line.text else "..."
    return text if as_read(text) else "..."


def _speaker_labels(characters: Iterable[str]) -> dict[str, str]:
    """The name each character's lines go under in a shot's script: the character's own
    where the script reader reads ``NAME: text`` back as exactly that speaker, else
    ``SPEAKER n`` (unused by the others). A name such as ``Dr Kim``, ``t1`` or a lower-case
    one reads as no speaker (the name spoken as part of the line, and two such speakers on
    screen one voice), and ``ANA: BEN`` as ANA."""
    names = list(characters)
    labels = {c: c for c in names if _reads_back(c)}
    n = 0
    for c in names:
        if c not in labels:
            n += 1
            while f"SPEAKER {n}" in names or f"SPEAKER {n}" in labels.values():
                n += 1
            labels[c] = f"SPEAKER {n}"
    return {c: labels[c] for c in names}


@functools.lru_cache(maxsize=256)
def _reads_back(name: str) -> bool:
    """Whether a cue ``NAME: x`` reads back (``load_script``) as speaker ``name`` saying x."""
    from pipelines.speech.script import ScriptError, load_script

    probe = f"1\n00:00:00,000 --> 00:00:01,000\n{name}: x\n"
    try:
        cues = load_script(probe.encode(), fmt="srt").cues
    except ScriptError:
        return False
    return len(cues) == 1 and cues[0].speaker == name and cues[0].text == "x"


def _srt_time(t: Fraction) -> str:
    ms = round(t * 1000)
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


# --------------------------------------------------------------------------- delivery


class Delivery:
    """Conform, decide for the reel as a whole, sign and publish each deliverable."""

    def __init__(self, job: ReelJob, rendered: list[ShotRecord], digest: str) -> None:
        self.job = job
        self.rendered = rendered
        self.digest = digest
        self.staging = job.lang_folder / f"deliver-{digest[:12]}"

    def run(self) -> dict[str, Any]:
        job = self.job
        registry = job.ctx.registry
        reel, release = job.reel, job.release
        shots = reel.shots
        replacements = {s.shot: Path(s.outcome["output"]) for s in self.rendered}
        sound = self._sound()
        audio = sound.mix
        self.staging.mkdir(parents=True, exist_ok=True)
        base = f"{reel.reel_id}.{release.language}.{self.digest[:8]}"
        made: list[tuple[str, Path, str]] = []
        try:
            proxy = self.staging / f"{base}.review.mp4"
            conform_reel(reel.source, shots, replacements, proxy, mode="encode",
                         audio=audio if audio is not None else "source", codec="h264")
            made.append(("review", proxy, "video/mp4"))
            master = self.staging / f"{base}.master.mov"
            conform_reel(reel.source, shots, replacements, master, codec="prores",
                         audio=audio if audio is not None else "source")
            made.append(("master", master, "video/quicktime"))
            if audio is not None:
                made.append(("mix", write_wav(audio, self.staging / f"{base}.mix.wav"),
                             "audio/wav"))
            # Each character's stem and the M&E as files of their own (at the mix's gain:
            # with the M&E they sum to the mix up to its limiter), for a house that
            # re-mixes or re-versions.
            for character, stem in sound.stems.items():
                made.append((f"stem:{character}", write_wav(
                    stem, self.staging / f"{base}.stem.{_stem_name(character)}.wav"),
                    "audio/wav"))
            if sound.m_and_e is not None:
                made.append(("m-and-e", write_wav(sound.m_and_e,
                                                   self.staging / f"{base}.m-and-e.wav"),
                             "audio/wav"))
        except ReelError as exc:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise ReelInputError(str(exc)) from None
        auth, matches, known = reel_authorization(
            reel, release, [(shots[s.shot], s.outcome["decision"]) for s in self.rendered])
        decision = registry.authorize(auth, matches, known_tracks=known)
        if not decision.allowed:
            shutil.rmtree(self.staging, ignore_errors=True)
            raise RenderDenied(decision, _publish_stage())
        items = []
        try:
            for kind, path, mime in made:
                items.append(self._publish(kind, path, mime, auth, matches, known, decision))
        finally:
            shutil.rmtree(self.staging, ignore_errors=True)
        return {"digest": self.digest, "decision_id": decision.decision_id,
                "decision_ledger_index": decision.ledger_index, "items": items}

    def _sound(self) -> Sound:
        """The characters' stems on the reel's timeline (with a script: the speech of each
        rendered shot in its place, under the shot's characters, and every line no render
        speaks synthesised in its place, under its character: ``voiceover``), summed over
        the M&E when given into the mix at EBU R128; the stems and the M&E at the mix's
        gain."""
        job = self.job
        stems = [d for d in job.dialogue if d.kind == "stem"]
        scripted = any(d.kind == "script" for d in job.dialogue)
        if not stems and not scripted and job.release.m_and_e is None:
            return Sound(None, {}, None)
        shots = job.reel.shots
        length = round(Fraction(shots.frame_count) / shots.frame_rate * MIX_RATE)
        tracks = {d.character: _fit(_mono48(load_audio(d.path)), length) for d in stems}
        if scripted:
            spoken: list[tuple[int, str]] = []
            for record in self.rendered:
                shot = shots[record.shot]
                first = round(Fraction(shot.start) / shots.frame_rate * MIX_RATE)
                count = round(Fraction(shot.frames) / shots.frame_rate * MIX_RATE)
                try:
                    speech = _mono48(load_audio(Path(record.outcome["output"])))
                except MediaError:
                    continue  # a render without sound: its lines are voiced over instead
                spoken += [(record.shot, c) for c in _shot_characters(record)]
                # A two-person shot's speech is one track (the render's): its stem is theirs.
                who = "+".join(_shot_characters(record))
                track = tracks.setdefault(who, _silence(1, length))
                track[:, first:first + count] += _fit(speech, count)[:, :length - first]
            unspoken = () if job.assignment is None \
                else unspoken_lines(job.assignment, spoken, shots.frame_rate)
            voiced = speak_lines(unspoken, language=job.release.language, rate=MIX_RATE,
                                 length=length)
            voiced.add_to(tracks, length)
            job.notes.extend(voiced.notes)
            if unspoken:
                job.notes.append(f"script: {len(unspoken)} line(s) no render speaks (off "
                                 "screen, not cast, refused or left out) are voiced over "
                                 "the untouched picture in the mix")
        dialogue = Audio(sum(tracks.values(), start=_silence(1, length)), MIX_RATE)
        out = dialogue
        me: Audio | None = None
        if job.release.m_and_e is not None:
            loaded = resample(load_audio(job.release.m_and_e), MIX_RATE)
            me = Audio(_fit(loaded.samples, length), MIX_RATE)
            out = mix(dialogue, me, overrun="trim")
        try:
            final = normalise(out, EBU_R128)
        except ValueError:  # silent: nothing to bring to the target
            final = out
        # The gain normalise applied, by least squares (exact where its limiter did not act).
        import numpy as np

        energy = float(np.sum(out.samples.astype(np.float64) ** 2))
        gain = float(np.sum(final.samples.astype(np.float64) * out.samples) / energy) \
            if energy > 0 else 1.0
        return Sound(final,
                     {c: _gained(t, gain) for c, t in tracks.items()},
                     None if me is None else _gained(me.samples, gain))

    def _publish(self, kind: str, path: Path, mime: str, auth: AuthorizationRequest,
                 matches: list[IdentityMatch], known: list[str], decision: Decision
                 ) -> dict[str, Any]:
        from studio.provenance.identity import signing_identity
        from studio.provenance.signing import sign_file
        from studio.provenance.store import ManifestStore, frame_hashes_of
        from studio.render.job import _link
        from studio.render.staging import Staging

        job = self.job
        settings, registry = job.ctx.settings, job.ctx.registry
        target = settings.outputs_dir / path.name
        # The render's own staging (studio.render.staging): the name is reserved, and a
        # crash between the link and the ledger's commit is undone by the next sweep.
        staging = Staging.open(settings, f"{job.job_id}-{_slug(kind)}-{self.digest[:12]}-"
                                         f"{secrets.token_hex(3)}")
        try:
            staging.reserve(target.name, registry)
            signed_path = staging.folder / target.name
            inputs = self._manifest(kind, mime, decision)
            signed = sign_file(path, signed_path, inputs, signing_identity(settings),
                               verify_after_sign=settings.c2pa_verify_after_sign)
            staging.record(sha256=signed.sha256)
            ManifestStore(settings.manifests_dir).put(
                signed.sha256, signed.manifest_bytes,
                frame_hashes=frame_hashes_of(signed_path) if mime.startswith("video/") else (),
                mime=signed.mime, title=inputs.title)
            staging.record(links=[(target.name, signed_path.name)])

            def link() -> Callable[[], None]:
                made = _link(signed_path, target)
                return lambda: made.unlink(missing_ok=True)

            publication = registry.publish_output(auth, matches, decision, signed.sha256,
                                                  signed.manifest_label, link,
                                                  known_tracks=known)
            staging.record(ended="published" if publication.output_index is not None
                           else "denied")
        finally:
            staging.close(registry)
        if publication.output_index is None:
            raise RenderDenied(publication.final_check, _publish_stage())
        try:
            approval = registry.approval_status(signed.sha256).state.value
        except ConsentError:
            approval = "unknown"
        return {"kind": kind.split(":", 1)[0], "character": kind.partition(":")[2] or None,
                "path": str(target), "sha256": signed.sha256,
                "manifest": signed.manifest_label,
                "output_ledger_index": publication.output_index, "approval": approval}

    def _manifest(self, kind: str, mime: str, decision: Decision) -> Any:
        from studio.provenance.manifest import (
            MAX_EMBEDDED_INGREDIENT,
            ConsentReference,
            IngredientInput,
            LanguagePair,
            ManifestInputs,
            SoftwareAgent,
        )
        from studio.render.job import _mime

        job = self.job
        registry, reel, release = job.ctx.registry, job.reel, job.release
        with registry.store.session() as s:
            note = registry.ledger.checkpoint(s, datetime.now(UTC))
        grants = {g.grant_id: g.sha256 for g in decision.grants_used}
        consent = ConsentReference(
            grant_ids=tuple(grants), grant_sha256s=tuple(grants.values()),
            decision_id=decision.decision_id,
            decision_leaf_index=int(decision.ledger_index or 0), ledger_checkpoint=note,
            ledger_checkpoint_sha256=hashlib.sha256(note.encode()).hexdigest(),
            registry_key_id=registry.public_key.key_id,
            approval_required=registry.approvals_required(decision))
        character = kind.split(":", 1)[1] if kind.startswith("stem:") else None
        # A character's stem: their shots and their performers' consent only.
        shots = [s for s in self.rendered if character is None
                 or set(_shot_characters(s)) & set(character.split("+"))]
        if character is not None:
            performers = {reel.cast[c] for c in character.split("+") if c in reel.cast}
            grants = {g: h for g, h in grants.items() if any(
                u.grant_id == g and u.performer_id in performers
                for u in decision.grants_used)} or grants
            consent = ConsentReference(
                grant_ids=tuple(grants), grant_sha256s=tuple(grants.values()),
                decision_id=consent.decision_id,
                decision_leaf_index=consent.decision_leaf_index, ledger_checkpoint=note,
                ledger_checkpoint_sha256=consent.ledger_checkpoint_sha256,
                registry_key_id=consent.registry_key_id,
                approval_required=consent.approval_required)
        others = [IngredientInput(f"shot-{s.shot:03d}", f"lip-synced shot {s.shot}",
                                  "componentOf", "video/mp4", s.outcome["sha256"],
                                  s.outcome["output"]) for s in shots]
        scripts: set[str] = set()
        for n, d in enumerate(job.dialogue, start=1):
            if d.kind == "stem" and (character is None or d.character in character.split("+")):
                others.append(IngredientInput(f"dub-stem-{n}", "dub dialogue stem",
                                              "componentOf", _mime(d.path, "audio/wav"),
                                              d.sha256, str(d.path)))
            elif d.kind == "script" and kind != "m-and-e" and d.sha256 not in scripts:
                # The words of every voiced line (in a render or over untouched picture):
                # one script, given once for every character it names.
                scripts.add(d.sha256)
                others.append(IngredientInput(
                    f"dub-script-{n}", "translated script", "inputTo", "text/plain",
                    d.sha256, str(d.path),
                    embed=d.path.stat().st_size <= MAX_EMBEDDED_INGREDIENT))
        if release.m_and_e is not None and (character is None or kind == "m-and-e"):
            others.append(IngredientInput("m-and-e", "music and effects", "componentOf",
                                          _mime(release.m_and_e, "audio/wav"),
                                          sha256_file(release.m_and_e), str(release.m_and_e)))
        backend = self.rendered[0].outcome.get("backend", {})
        title = {"review": "review proxy", "master": "master", "mix": "dialogue mix",
                 "m-and-e": "music and effects"}.get(kind, f"dialogue stem: {character}")
        return ManifestInputs(
            title=f"{reel.source.stem} ({release.language} {title})", mime=mime,
            operation="lipsync",
            agent=SoftwareAgent("consent-dubbing-studio", __version__,
                                str(backend.get("name", "")), str(backend.get("model", "")),
                                str(backend.get("licence", ""))),
            source=IngredientInput("source-reel", "source reel", "parentOf",
                                   _mime(reel.source, "video/mp4"), reel.source_sha256,
                                   str(reel.source)),
            consent=consent, others=tuple(others),
            languages=LanguagePair(release.source_language, release.language)
            if release.source_language
            and release.source_language.lower() != release.language.lower() else None,
            thumbnail=job.ctx.settings.c2pa_thumbnail if mime.startswith("video/") else False)


@dataclass(frozen=True)
class Sound:
    """A language version's audio: the mix, each character's stem and the M&E (the last two
    at the mix's gain); ``mix`` is ``None`` when there is no audio of the studio's own."""

    mix: Audio | None
    stems: dict[str, Audio]
    m_and_e: Audio | None


def _gained(samples: Any, gain: float) -> Audio:
    import numpy as np

    return Audio((samples * np.float32(gain)).astype(np.float32), MIX_RATE)


def _shot_characters(record: ShotRecord) -> tuple[str, ...]:
    """The characters a rendered shot's render speaks for (older records: ``character``)."""
    names = record.outcome.get("characters") or [record.outcome.get("character")]
    return tuple(str(c) for c in names if c)


def _slug(name: str) -> str:
    """``name`` as a file-name part (letters, digits, ``.``, ``_``, ``-``)."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:40] or "x"


def _stem_name(character: str) -> str:
    """``character``'s stem as a file-name part: its slug, followed by a hash of the name
    when the slug is not the name (``Zoé`` and ``Zoë`` are both ``Zo``, every name in
    Cyrillic ``x``: one file for two stems would give one the other's words)."""
    slug = _slug(character)
    if slug == character:
        return slug
    return f"{slug}-{hashlib.sha256(character.encode()).hexdigest()[:8]}"


def _publish_stage() -> Any:
    from studio.render.events import Stage

    return Stage.PUBLISH


def _mono48(audio: Audio) -> Any:
    if audio.samples.shape[0] != 1:
        audio = downmix(audio, "mono")
    return resample(audio, MIX_RATE).samples


def _silence(channels: int, length: int) -> Any:
    import numpy as np

    return np.zeros((channels, length), dtype=np.float32)


def _fit(samples: Any, length: int) -> Any:
    """``samples`` cut or padded with silence to ``length``."""
    import numpy as np

    out = np.zeros((samples.shape[0], length), dtype=np.float32)
    n = min(length, samples.shape[1])
    out[:, :n] = samples[:, :n]
    return out


def reel_authorization(reel: Reel, release: ReelRelease,
                       shots: list[tuple[Shot, dict[str, Any]]]
                       ) -> tuple[AuthorizationRequest, list[IdentityMatch], list[str]]:
    """The gate's request for the reel as a whole: every rendered shot's subjects and
    authorised segments (track ``t1`` of shot 3 becomes ``s3:t1``, its frames reel frames),
    under the reel's own hash; with the shots' identity verdicts, renamed the same way."""
    subjects: list[dict[str, Any]] = []
    segments: list[dict[str, Any]] = []
    matches: list[IdentityMatch] = []
    known: list[str] = []
    models: dict[str, dict[str, Any]] = {}
    first: dict[str, Any] | None = None
    for shot, decision in shots:
        request = decision["request"]
        first = first or request
        prefix = f"s{shot.index}:"
        for subject in request["subjects"]:
            subjects.append({**subject, "track_id": prefix + subject["track_id"]})
        for seg in request["segments"]:
            segments.append({**seg, "track_id": prefix + seg["track_id"],
                             "first_frame": seg["first_frame"] + shot.start,
                             "last_frame": seg["last_frame"] + shot.start})
        for m in decision["identities"]:
            matches.append(IdentityMatch.model_validate(
                {**m, "track_id": prefix + m["track_id"]}))
            known.append(prefix + m["track_id"])
        known.extend(prefix + t for t in decision.get("untouched_tracks", []))
        for model in request.get("models", []):
            models[json.dumps(model, sort_keys=True)] = model
    assert first is not None
    body = {**first, "subjects": subjects, "segments": segments,
        "source_media_sha256": reel.source_sha256, "script_sha256": None,
        "models": list(models.values()), "episode": None, "scene": None}
    return AuthorizationRequest.model_validate(body), matches, list(dict.fromkeys(known))
