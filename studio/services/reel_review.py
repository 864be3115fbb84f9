"""Review of a reel's language version (issue 17): the shot list with each shot's state, QC
and review, the original and dubbed media of a shot for the A/B player, approve or reject a
shot with a note, and the release (publication) of the version's deliverables.

A review decision is about the shot's current render (:mod:`studio.reels.reviews`). The
release refuses (:class:`~studio.errors.ReelHeldError`, exit 1) while a rendered shot is
rejected (:class:`~studio.errors.ShotRejectedError`) or not yet reviewed, or while a
deliverable waits for (or was refused) the performer's signed approval; the reel job itself
refuses to conform and publish while a shot is rejected. Decisions and releases are ledgered,
and the release reads the decisions from the ledger (:mod:`studio.reels.reviews`).

A decision names the render the reviewer saw (:attr:`ShotDecision.render_sha256`: the page
passes the hash of the render it played, the CLI ``--render``): a shot rendered again in
between is refused (:class:`~studio.errors.RenderChangedError`, exit 5), never approved
unseen.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

from studio.errors import (
    JobStateError,
    ReelHeldError,
    ReelNotFoundError,
    RenderChangedError,
    UsageError,
)
from studio.services.context import AppContext

if TYPE_CHECKING:
    from studio.reels.reviews import ShotReview, Verdict
    from studio.reels.store import Reel, ReelJobRecord, ReelStore

log = logging.getLogger(__name__)


def _store(ctx: AppContext) -> ReelStore:
    from studio.reels.store import ReelStore

    return ReelStore.open(ctx.registry.store)


def _job(store: ReelStore, reel_id: str, language: str) -> tuple[Reel, ReelJobRecord]:
    reel = store.reel(reel_id)
    language = (language or "").strip()
    for job in store.jobs_of(reel.reel_id):
        if job.language.lower() == language.lower():
            return reel, job
    raise ReelNotFoundError(f"reel {reel.reel_id} has no {language or '(no language)'} "
                            "version yet (`studio reel render`)")


def qc_of(ctx: AppContext, outcome: dict[str, Any]) -> dict[str, Any] | None:
    """The QC report of a shot's render, when its job record has one (key ``qc``, with
    ``needs_review``): in the shot's outcome, else in the render job's ``outcome.json``."""
    qc = outcome.get("qc")
    if isinstance(qc, dict):
        return qc
    job_id = outcome.get("render_job")
    if not isinstance(job_id, str) or not job_id or "/" in job_id or job_id.startswith("."):
        return None
    record = ctx.settings.jobs_dir / job_id / "outcome.json"
    try:
        body = json.loads(record.read_text(encoding="utf-8"))
        qc = body.get("qc")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(qc, dict):
        return None
    if "needs_review" not in qc and isinstance(body.get("needs_review"), bool):
        qc = {**qc, "needs_review": body["needs_review"]}  # the verdict beside the report
    return qc


@dataclass(frozen=True)
class ReviewRow:
    """One shot of the review page."""

    shot: int
    start: int
    end: int
    record_tc_in: str
    record_tc_out: str
    state: str
    characters: tuple[str, ...]
    reason: str | None
    output: Path | None
    output_sha256: str | None
    approval: str | None  # the performer's approval of the shot's render, when it is held
    qc: dict[str, Any] | None
    review: ShotReview | None

    @property
    def frames(self) -> int:
        return self.end - self.start

    @property
    def reviewable(self) -> bool:
        return self.output_sha256 is not None

    @property
    def needs_review(self) -> bool | None:
        """QC's verdict (``None``: no QC report in the render's record)."""
        value = None if self.qc is None else self.qc.get("needs_review")
        return value if isinstance(value, bool) else None

    def to_json(self) -> dict[str, Any]:
        return {"shot": self.shot, "start": self.start, "end": self.end,
                "frames": self.frames, "record_tc_in": self.record_tc_in,
                "record_tc_out": self.record_tc_out, "state": self.state,
                "characters": list(self.characters), "reason": self.reason,
                "output": None if self.output is None else str(self.output),
                "output_sha256": self.output_sha256, "approval": self.approval,
                "qc": self.qc, "needs_review": self.needs_review,
                "review": None if self.review is None else self.review.to_json()}


@dataclass(frozen=True)
class ReelReview:
    """A reel's language version as the reviewer sees it."""

    reel: Reel
    job: ReelJobRecord
    rows: tuple[ReviewRow, ...]
    history: tuple[ShotReview, ...]
    #: How the review rows in the database differ from the ledger's decisions (which are
    #: the ones shown); ``None``: they are the same. The release refuses while it is set.
    tampered: str | None = None

    @property
    def frame_rate(self) -> Fraction:
        return Fraction(self.reel.shots.frame_rate)

    @property
    def rejected(self) -> list[int]:
        return [r.shot for r in self.rows if r.review is not None
                and r.review.decision.value == "rejected"]

    @property
    def unreviewed(self) -> list[int]:
        return [r.shot for r in self.rows if r.reviewable and r.review is None]

    def to_json(self) -> dict[str, Any]:
        return {"reel_id": self.reel.reel_id, "language": self.job.language,
                "job_id": self.job.job_id, "status": self.job.status,
                "frame_rate": str(self.frame_rate), "rejected": self.rejected,
                "unreviewed": self.unreviewed, "shots": [r.to_json() for r in self.rows],
                "deliverables": self.job.deliverables,
                "history": [h.to_json() for h in self.history], "tampered": self.tampered}


def deliverable_label(item: dict[str, Any]) -> str:
    """A deliverable as a reviewer names it: ``master``, ``stem (ANA)``, ``m-and-e``."""
    kind, who = str(item.get("kind", "")), item.get("character")
    return f"{kind} ({who})" if who else kind


def deliverable_rows(job: ReelJobRecord) -> list[dict[str, Any]]:
    """The deliverables table of a language version: each signed file (the review proxy, the
    master, the mix, every character's stem, the M&E) with its label."""
    return [{**item, "label": deliverable_label(item)}
            for item in job.deliverables.get("items", [])]


def _missing_deliverables(ctx: AppContext, store: ReelStore, job: ReelJobRecord
                          ) -> list[str]:
    """What the release would lack: a deliverable file gone or changed since it was
    published, or a character's stem that the version has no file for (made before stems
    were delivered on their own)."""
    from studio.identity import sha256_file

    items = list(job.deliverables.get("items", []))
    missing = []
    for item in items:
        path = Path(str(item.get("path", "")))
        if not path.is_file() or sha256_file(path) != item.get("sha256"):
            missing.append(f"{deliverable_label(item)} ({path.name}: gone or changed)")
    if any(i.get("kind") == "mix" for i in items):
        stems = {i.get("character") for i in items if i.get("kind") == "stem"}
        for source in store.dialogue(job.reel_id, job.language):
            if source.kind == "stem" and source.character not in stems:
                missing.append(f"stem ({source.character})")
    return missing


def review_of(ctx: AppContext, reel_id: str, language: str) -> ReelReview:
    from studio.reels.reviews import current_reviews, ledgered_reviews
    from studio.reels.store import ShotState

    store = _store(ctx)
    reel, job = _job(store, reel_id, language)
    ledgered = ledgered_reviews(store, job.job_id)
    tampered = ledgered.tampered(job.job_id)
    history = ledgered.reviews
    current = current_reviews(job, history)
    records = {s.shot: s for s in job.shots}
    rows = []
    for shot in reel.shots:
        record = records.get(shot.index)
        outcome = record.outcome if record is not None else {}
        rendered = record is not None and record.state is ShotState.RENDERED
        rows.append(ReviewRow(
            shot.index, shot.start, shot.end, shot.record_tc_in, shot.record_tc_out,
            record.state.value if record is not None else "pending",
            record.characters if record is not None else (),
            record.reason if record is not None else None,
            Path(outcome["output"]) if rendered and outcome.get("output") else None,
            str(outcome["sha256"]) if rendered and outcome.get("sha256") else None,
            str(outcome["approval"]) if rendered and outcome.get("approval") else None,
            qc_of(ctx, outcome) if rendered else None, current.get(shot.index)))
    return ReelReview(reel, job, tuple(rows), tuple(history),
                      None if tampered is None else tampered.message)


def list_versions(ctx: AppContext) -> list[tuple[str, str, str]]:
    """Every reel's language versions: (reel id, language, status)."""
    store = _store(ctx)
    return [(j.reel_id, j.language, j.status) for reel in store.reels()
            for j in store.jobs_of(reel.reel_id)]


@dataclass(frozen=True)
class ShotMedia:
    """What the A/B player shows of one shot: the reel's original frames of the shot and
    the dubbed render, at the reel's frame rate."""

    shot: int
    original: Path
    dubbed: Path
    frame_rate: Fraction
    frames: int
    record_tc_in: str
    output_sha256: str  # the dubbed render's, checked on the file handed to the player


def shot_media(ctx: AppContext, reel_id: str, language: str, shot: int) -> ShotMedia:
    from studio.reels.cutting import cut_shots

    review = review_of(ctx, reel_id, language)
    row = _row(review, shot)
    if row.output is None or not row.output.is_file():
        raise JobStateError(f"shot {shot} of {reel_id} in {review.job.language} has no "
                            f"render to compare ({row.state})")
    reel = review.reel
    # The reel job's own cut of the shot (studio.reels.job.ReelJob._cut_path); cut again
    # from the reel when it was cleaned away.
    original = (ctx.settings.data_dir / "reels" / reel.reel_id / "shots"
                / f"s{row.shot:03d}-{row.start}-{row.end}.mp4")
    if not original.is_file():
        cut_shots(reel.source, reel.shots, {row.shot: original})
    from studio.identity import sha256_file

    # What the reviewer will watch is the render the decision will name: a file changed
    # under its record is not shown as that render.
    if row.output_sha256 is None or sha256_file(row.output) != row.output_sha256:
        raise JobStateError(f"shot {shot} of {reel_id} in {review.job.language}: the render's "
                            "file differs from its record (render it again)")
    return ShotMedia(row.shot, original, row.output, review.frame_rate, row.frames,
                     row.record_tc_in, row.output_sha256)


def _row(review: ReelReview, shot: int) -> ReviewRow:
    for row in review.rows:
        if row.shot == shot:
            return row
    raise ReelNotFoundError(f"reel {review.reel.reel_id} has no shot {shot} (shots 0-"
                            f"{len(review.rows) - 1})")


@dataclass(frozen=True)
class ShotDecision:
    """A reviewer approves or rejects one shot of a language version, with a note (a
    rejection needs one: it is what the operator acts on)."""

    reel_id: str
    language: str
    shot: int
    decision: Verdict | str
    note: str
    reviewer: str
    #: The render the reviewer saw: its SHA-256, or a prefix of at least
    #: :data:`MIN_RENDER_PREFIX` hex digits (what ``studio reel review`` lists). A shot
    #: rendered since is refused (RenderChangedError). ``None`` decides on the current render
    #: (for callers that show none); the page and the CLI always name one.
    render_sha256: str | None = None


#: The shortest render hash prefix a decision may name (64 bits: no render is made to match
#: another's by chance, nor cheaply on purpose).
MIN_RENDER_PREFIX = 16


def _seen(render: str | None) -> str | None:
    if render is None:
        return None
    text = render.strip().lower()
    if not MIN_RENDER_PREFIX <= len(text) <= 64 or any(c not in "0123456789abcdef"
                                                         for c in text):
        raise UsageError(f"the render reviewed: its SHA-256 (at least {MIN_RENDER_PREFIX} hex "
                         "digits, as `studio reel review` lists it)")
    return text


def decide(ctx: AppContext, req: ShotDecision) -> ShotReview:
    from studio.reels.reviews import MAX_NOTE, Verdict, add_review

    try:
        verdict = Verdict(str(req.decision).strip().lower())
    except ValueError:
        raise UsageError(f"decision {req.decision!r}: approved or rejected") from None
    note = (req.note or "").strip()
    if verdict is Verdict.REJECTED and not note:
        raise UsageError("say why the shot is rejected (a note)")
    if len(note) > MAX_NOTE:
        raise UsageError(f"the note is {len(note)} characters; at most {MAX_NOTE}")
    if not (req.reviewer or "").strip():
        raise UsageError("who reviews (the reviewer's name)")
    seen = _seen(req.render_sha256)
    review = review_of(ctx, req.reel_id, req.language)
    row = _row(review, req.shot)
    if row.output_sha256 is None:
        raise JobStateError(f"shot {req.shot} was not rendered ({row.state}): nothing to "
                            "review")
    if seen is not None and not row.output_sha256.startswith(seen):
        raise RenderChangedError(
            f"shot {row.shot} of {review.reel.reel_id} in {review.job.language} was rendered "
            f"again: its render is now {row.output_sha256[:MIN_RENDER_PREFIX]}…, not the "
            f"{seen[:MIN_RENDER_PREFIX]}… you reviewed; nothing was recorded. Open the shot "
            "again and review what it shows now")
    store = _store(ctx)
    # add_review checks again, in its transaction, that this render is still the current one.
    return add_review(store, review.job.job_id, row.shot, row.output_sha256, verdict, note,
                      req.reviewer.strip(), registry=ctx.registry)


@dataclass(frozen=True)
class Released:
    reel_id: str
    language: str
    job_id: str
    items: list[dict[str, Any]]
    released_at: str
    released_by: str
    ledger_index: int | None = None  # the release's leaf (reel_released)

    def to_json(self) -> dict[str, Any]:
        return {"reel_id": self.reel_id, "language": self.language, "job_id": self.job_id,
                "items": self.items, "released_at": self.released_at,
                "released_by": self.released_by, "ledger_index": self.ledger_index}


def publish(ctx: AppContext, reel_id: str, language: str, by: str) -> Released:
    """Release a reviewed language version for delivery: every rendered shot approved in
    review, no shot rejected, and each deliverable deliverable (the performer's approval when
    a grant requires it). Refusals say what is missing (:class:`ReelHeldError`, exit 1)."""
    from studio.reels.reviews import held_but_unchanged, mark_released, rejected_error

    if not (by or "").strip():
        raise UsageError("who releases (a name, for the record)")
    store = _store(ctx)
    review = review_of(ctx, reel_id, language)
    job = review.job
    items = list(job.deliverables.get("items", []))
    if job.status not in ("done", "delivered", "rejected") or not items:
        raise JobStateError(f"reel {reel_id} in {job.language} has no deliverables to "
                            f"release ({job.status}; `studio reel render` first)")
    rejected = rejected_error(store, job, review.reel.reel_id)
    if rejected is not None:
        raise rejected
    if review.unreviewed:
        raise ReelHeldError(f"reel {reel_id} in {job.language} is not released: shots "
                            f"{review.unreviewed} are not reviewed yet (review page, or "
                            "`studio reel review`)")
    if job.status not in ("done", "delivered") and not held_but_unchanged(
            job.status, job.deliverables):
        # The run that was held changed what it would deliver (a shot rendered again, other
        # dialogue or M&E, other options): the deliverables on record are not that version.
        raise JobStateError(f"reel {reel_id} in {job.language} was held after a rejection "
                            "by a run whose inputs differ from the deliverables on record: "
                            "render it again (`studio reel render`) before releasing it")
    missing = _missing_deliverables(ctx, store, job)
    if missing:
        raise ReelHeldError(f"reel {reel_id} in {job.language} is not released: "
                            f"{', '.join(missing)} (render it again: `studio reel render`)")
    waiting = []
    for item in items:
        status = ctx.registry.approval_status(str(item["sha256"]))
        if not status.deliverable:
            waiting.append(f"{deliverable_label(item)} ({status.state.value})")
    if waiting:
        raise ReelHeldError(f"reel {reel_id} in {job.language} is not released: "
                            f"{', '.join(waiting)} without the performer's approval "
                            "(`studio consent import-approval`, or the review page's upload)")
    at = datetime.now(UTC).isoformat()
    index = mark_released(store, job.job_id, {"at": at, "by": by.strip()},
                          registry=ctx.registry)
    return Released(review.reel.reel_id, job.language, job.job_id, items, at, by.strip(),
                    index)
