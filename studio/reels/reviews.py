"""Per-shot review decisions of a reel job (``studio_reel_reviews``): approve or reject a
rendered shot, with a note.

A decision is about one render of the shot: it names the output's SHA-256. When the shot is
rendered again (a new dub, a new grant), the old decision no longer applies and the new render
waits for its own review. Rows are only added; the newest decision about the shot's current
output stands (:func:`current_reviews`).

The reel job refuses to deliver while a shot's current decision is a rejection
(:func:`rejected_error`), and so does the release of a language version
(:func:`studio.services.reel_review.publish`).

Every decision is also a leaf of the consent registry's ledger (``reel_shot_reviewed``: the
reel, job, language, shot, the render's SHA-256, the decision, the SHA-256 of the reviewer's
name and of the note, the time), appended in the transaction that adds the row, and every
release one more (``reel_released``). The ledger, not the table, is what the decisions are
read from: the rows must equal the leaves one for one (a row deleted, edited or inserted
directly is refused as tampering, :class:`~studio.errors.ReviewTamperedError`), and the
release checks each leaf it relies on against the newest signed checkpoint. So no row of
``studio_reel_reviews`` turns a rejection into a release.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent.errors import ConsentError
from consent.fields import format_timestamp
from consent.ledger import EventType, Ledger, LedgerEntry
from consent.merkle import MerkleError
from studio.errors import (
    JobStateError,
    ReelHeldError,
    ReelNotFoundError,
    RenderChangedError,
    ReviewTamperedError,
    ShotRejectedError,
)

from .models import ReelJobRow, ReelReviewRow, ReelShotRow
from .store import ReelJobRecord, ReelStore, ShotState, now

if TYPE_CHECKING:
    from consent.registry import Registry

#: Longest note kept (a paragraph; the page shows it in the shot list).
MAX_NOTE = 2000


class Verdict(StrEnum):
    APPROVED = "approved"
    REJECTED = "rejected"


@dataclass(frozen=True)
class ShotReview:
    review_id: int
    job_id: str
    shot: int
    output_sha256: str
    decision: Verdict
    note: str
    reviewer: str
    decided_at: datetime
    ledger_index: int | None = None  # the decision's leaf in the ledger

    def to_json(self) -> dict[str, Any]:
        return {"review_id": self.review_id, "job_id": self.job_id, "shot": self.shot,
                "output_sha256": self.output_sha256, "decision": self.decision.value,
                "note": self.note, "reviewer": self.reviewer,
                "decided_at": self.decided_at.isoformat(), "ledger_index": self.ledger_index}


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _leaf_body(row: ReelReviewRow, reel_id: str, language: str) -> dict[str, Any]:
    """What a decision's leaf records: ids and hashes, never a name or the note's text (the
    ledger holds no personal data; the row keeps them, and must hash to these)."""
    return {"review_id": row.review_id, "reel_id": reel_id, "job_id": row.job_id,
            "language": language, "shot": row.shot, "output_sha256": row.output_sha256,
            "decision": row.decision, "reviewer_sha256": _sha(row.reviewer),
            "note_sha256": _sha(row.note)}


def _same_database(reels: ReelStore, registry: Registry) -> None:
    # The row and its leaf are written in one transaction: the reel tables must be the
    # registry's own (ReelStore.open(registry.store)).
    if reels.store is not registry.store:
        raise ValueError("the reel store is not the registry's database")


def add_review(reels: ReelStore, job_id: str, shot: int, output_sha256: str,
               decision: Verdict, note: str, reviewer: str, *,
               registry: Registry) -> ShotReview:
    """Record a decision about the shot's render ``output_sha256``, which must be the shot's
    current render when the transaction commits (else :class:`RenderChangedError`, nothing
    recorded), with its ledger leaf in the same transaction."""
    _same_database(reels, registry)
    at = registry.clock()
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    with reels.store.session() as s:
        # The job's row locked, as the release locks it (mark_released): a decision and a
        # release of the same version are serialised, never interleaved.
        job = s.get(ReelJobRow, job_id, with_for_update=True)
        if job is None:
            raise ReelNotFoundError(f"no reel job {job_id!r}")
        record = s.get(ReelShotRow, (job_id, shot))
        current = (str(record.outcome.get("sha256") or "") if record is not None
                   and record.state == ShotState.RENDERED.value else "")
        if current != output_sha256:
            raise RenderChangedError(
                f"shot {shot} of {job.reel_id} in {job.language}: the render reviewed "
                f"({output_sha256[:16]}…) is not the shot's current render "
                f"({current[:16] + '…' if current else 'none'}); nothing was recorded. "
                "Open the shot again and review what it shows now")
        row = ReelReviewRow(job_id=job_id, shot=shot, output_sha256=output_sha256,
                            decision=decision.value, note=note[:MAX_NOTE], reviewer=reviewer,
                            decided_at=at)
        s.add(row)
        s.flush()
        # A checkpoint signed right after the leaf: the release checks every decision it
        # relies on against a signed root (_check_leaves).
        index = registry.ledger.append(
            s, EventType.REEL_SHOT_REVIEWED, _leaf_body(row, job.reel_id, job.language),
            at=at, refs=[("reel", job.reel_id), ("reel_job", job_id),
                         ("output", output_sha256)], checkpoint=True)
        return ShotReview(row.review_id, row.job_id, row.shot, row.output_sha256,
                          decision, row.note, row.reviewer, row.decided_at, index)


@dataclass(frozen=True)
class Ledgered:
    """A job's decisions as the ledger holds them (oldest first), their leaves, and how the
    rows of ``studio_reel_reviews`` differ from them (empty: they are the same)."""

    reviews: list[ShotReview]
    leaves: list[LedgerEntry]
    problems: list[str]

    def tampered(self, job_id: str) -> ReviewTamperedError | None:
        if not self.problems:
            return None
        return ReviewTamperedError(
            f"the review decisions of reel job {job_id} in the database differ from the "
            f"ledger's: {'; '.join(self.problems)}. Nothing is released; restore the "
            "database (the Ledger tab's search by output, the render's SHA-256, lists the "
            "decisions)")


def _ledgered(s: Session, job_id: str) -> Ledgered:
    """The decisions are the leaves' (shot, render, decision, in the ledger's order): a row
    deleted or edited changes nothing they say, and is reported, as is a row no leaf
    records. A row's note and reviewer are shown only when they hash to the leaf's."""
    leaves = Ledger.entries_referencing(s, "reel_job", job_id, EventType.REEL_SHOT_REVIEWED)
    rows = {r.review_id: r for r in s.scalars(
        select(ReelReviewRow).where(ReelReviewRow.job_id == job_id))}
    problems: list[str] = []
    reviews: list[ShotReview] = []
    seen: set[int] = set()
    for entry in leaves:
        body = entry.body
        rid, shot, output = body.get("review_id"), body.get("shot"), body.get("output_sha256")
        if (not isinstance(rid, int) or rid in seen or body.get("job_id") != job_id
                or not isinstance(shot, int) or not isinstance(output, str)
                or body.get("decision") not in tuple(Verdict)):
            problems.append(f"ledger entry {entry.index} is not a decision of this job")
            continue
        seen.add(rid)
        verdict = Verdict(body["decision"])
        row = rows.get(rid)
        note, reviewer = "(row deleted)", "(row deleted)"
        if row is None:
            problems.append(f"decision {rid} (ledger entry {entry.index}: shot {shot} "
                            f"{verdict.value}) has no row: deleted from studio_reel_reviews")
        else:
            want = _leaf_body(row, str(body.get("reel_id")), str(body.get("language")))
            edited = sorted(k for k, v in want.items() if body.get(k) != v)
            if body.get("time") != format_timestamp(row.decided_at):
                edited.append("decided_at")
            if edited:
                problems.append(f"decision {rid}: {', '.join(edited)} of its row differ "
                                f"from ledger entry {entry.index} (edited)")
            note = row.note if "note_sha256" not in edited else "(note edited)"
            reviewer = row.reviewer if "reviewer_sha256" not in edited else "(edited)"
        reviews.append(ShotReview(rid, job_id, shot, output, verdict, note, reviewer,
                                  datetime.fromisoformat(str(body["time"])), entry.index))
    for rid in sorted(set(rows) - seen):
        problems.append(f"decision {rid} (shot {rows[rid].shot} {rows[rid].decision}) has no "
                        "ledger entry: inserted directly")
    return Ledgered(reviews, leaves, problems)


def _check_leaves(s: Session, registry: Registry, leaves: list[LedgerEntry]) -> None:
    """Each leaf under the newest signed checkpoint, by an inclusion proof: a leaf edited in
    place (or a stored hash rewritten with it) no longer proves against the signed root."""
    if not leaves:
        return
    note = Ledger.latest_checkpoint(s)
    try:
        if note is None:
            raise ConsentError("the ledger has no signed checkpoint")
        checkpoint = registry.ledger.open_checkpoint(note)
        for entry in leaves:
            if entry.index >= checkpoint.size:
                raise ConsentError(f"ledger entry {entry.index} is not covered by the newest "
                                   f"signed checkpoint (size {checkpoint.size})")
            proof = registry.ledger.inclusion_proof(s, entry.index, checkpoint.size)
            if proof.leaf_hash != entry.leaf_hash or proof.root != checkpoint.root:
                raise ConsentError(f"ledger entry {entry.index} does not prove against the "
                                   "signed checkpoint")
            proof.verify()
    except (ConsentError, MerkleError) as exc:
        raise ReviewTamperedError(f"the ledger's record of the review does not verify: {exc}. "
                                  "Nothing is released (`studio ledger verify`)") from None


def ledgered_reviews(reels: ReelStore, job_id: str) -> Ledgered:
    """The job's decisions as the ledger holds them, and any difference of the table's rows
    (for pages that show both: the decisions stand, the tampering is named)."""
    with reels.store.session() as s:
        return _ledgered(s, job_id)


def reviews_of(reels: ReelStore, job_id: str) -> list[ShotReview]:
    """Every decision about the job's shots, oldest first, as the ledger records them
    (:class:`ReviewTamperedError` when the table's rows differ)."""
    with reels.store.session() as s:
        found = _ledgered(s, job_id)
    tampered = found.tampered(job_id)
    if tampered is not None:
        raise tampered
    return found.reviews


def current_reviews(job: ReelJobRecord, reviews: list[ShotReview]) -> dict[int, ShotReview]:
    """Shot → the newest decision about its current render (rendered shots only)."""
    outputs = {s.shot: s.outcome.get("sha256") for s in job.shots
               if s.state is ShotState.RENDERED}
    current: dict[int, ShotReview] = {}
    for r in reviews:  # oldest first: a later decision replaces an earlier one
        if outputs.get(r.shot) == r.output_sha256:
            current[r.shot] = r
    return current


def rejected_error(reels: ReelStore, job: ReelJobRecord, reel_id: str
                   ) -> ShotRejectedError | None:
    """The refusal to deliver ``job`` while a shot's current decision in the ledger is a
    rejection (whatever the table's rows say); with none, review records that differ from
    the ledger's are refused as such (:class:`ReviewTamperedError`, raised)."""
    with reels.store.session() as s:
        found = _ledgered(s, job.job_id)
    rejected = [r for _, r in sorted(current_reviews(job, found.reviews).items())
                if r.decision is Verdict.REJECTED]
    tampered = found.tampered(job.job_id)
    if not rejected:
        if tampered is not None:
            raise tampered
        return None
    return _rejected(rejected, reel_id, job.language, "delivered", tampered)


def _rejected(rejected: list[ShotReview], reel_id: str, language: str, what: str,
              tampered: ReviewTamperedError | None) -> ShotRejectedError:
    shots = "; ".join(f"shot {r.shot} by {r.reviewer}: {r.note!r}" for r in rejected)
    return ShotRejectedError(
        f"reel {reel_id} in {language} is not {what}: rejected in review ({shots}). "
        "Render the shot again (a new dub) or approve it after another look "
        f"(`studio reel review {reel_id} --language {language} --shot "
        f"{rejected[0].shot} --approve --render …`)"
        + ("" if tampered is None else f". Also: {tampered.message}"),
        tuple(r.shot for r in rejected))


def held_but_unchanged(status: str, deliverables: dict[str, Any]) -> bool:
    """A version held by a rejection (status ``rejected``) whose held run would have
    delivered exactly the deliverables on record (the reel job records that run's digest
    of its inputs, ``held_digest``): once the shot is approved, they may be released
    without rendering again."""
    held = deliverables.get("held_digest")
    return (status == "rejected" and isinstance(held, str) and bool(held)
            and held == deliverables.get("digest") and bool(deliverables.get("items")))


def mark_released(reels: ReelStore, job_id: str, released: dict[str, Any], *,
                  registry: Registry) -> int:
    """Record the release of the job's deliverables (status ``delivered``) and append it to
    the ledger (``reel_released``); return its ledger index.

    The release's checks ran before (``services.reel_review.publish``), and take a while (the
    ledger's answer about each deliverable's approval); the reviews are checked again here,
    in the transaction that records the release, with the job's row locked as
    :func:`add_review` locks it and the ledger's lock held: a rejection (or a new render)
    committed meanwhile holds the release instead of being overtaken by it. The decisions
    are the ledger's (:func:`_ledgered`), each leaf proved against the signed checkpoint."""
    _same_database(reels, registry)
    at = registry.clock()
    at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    with reels.store.session() as s:
        row = s.get(ReelJobRow, job_id, with_for_update=True)
        if row is None:
            raise ReelNotFoundError(f"no reel job {job_id!r}")
        if row.status not in ("done", "delivered") and not held_but_unchanged(
                row.status, dict(row.deliverables)):
            raise JobStateError(f"reel {row.reel_id} in {row.language} changed during the "
                                f"release ({row.status}): nothing was released")
        registry.ledger.lock(s)  # every decision committed so far is among the leaves read
        outputs = {r.shot: str(r.outcome.get("sha256") or "") for r in s.scalars(
            select(ReelShotRow).where(ReelShotRow.job_id == job_id))
            if r.state == ShotState.RENDERED.value and r.outcome.get("sha256")}
        found = _ledgered(s, job_id)
        _check_leaves(s, registry, found.leaves)
        current: dict[int, ShotReview] = {}
        for review in found.reviews:  # the ledger's order: a later decision replaces one
            if outputs.get(review.shot) == review.output_sha256:
                current[review.shot] = review
        rejected = [r for _, r in sorted(current.items())
                    if r.decision is Verdict.REJECTED]
        tampered = found.tampered(job_id)
        if rejected:
            raise _rejected(rejected, row.reel_id, row.language, "released", tampered)
        if tampered is not None:
            raise tampered
        unreviewed = sorted(set(outputs) - set(current))
        if unreviewed:
            raise ReelHeldError(f"reel {row.reel_id} in {row.language} is not released: "
                                f"shots {unreviewed} were rendered again during the release "
                                "and are not reviewed yet")
        items = list(row.deliverables.get("items", []))
        body = {"reel_id": row.reel_id, "job_id": job_id, "language": row.language,
                "digest": str(row.deliverables.get("digest") or ""),
                "released_by_sha256": _sha(str(released.get("by", ""))),
                "deliverables": [{"kind": str(i.get("kind")), "sha256": str(i.get("sha256")),
                                  **({"character": str(i["character"])}
                                     if i.get("character") else {})} for i in items],
                "shots": [{"shot": shot, "output_sha256": r.output_sha256,
                           "review_index": r.ledger_index}
                          for shot, r in sorted(current.items())]}
        index = registry.ledger.append(
            s, EventType.REEL_RELEASED, body, at=at, checkpoint=True,
            refs=[("reel", row.reel_id), ("reel_job", job_id)]
            + [("output", str(i.get("sha256"))) for i in items])
        row.deliverables = {**row.deliverables, "released": {**released,
                                                             "ledger_index": index}}
        row.status = "delivered"
        row.updated_at = now()
        return index
