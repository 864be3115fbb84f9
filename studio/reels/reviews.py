"""Per-shot review decisions of a reel job (``studio_reel_reviews``): approve or reject a
rendered shot, with a note.

A decision is about one render of the shot: it names the output's SHA-256. When the shot is
rendered again (a new dub, a new grant), the old decision no longer applies and the new render
waits for its own review. Rows are only added; the newest decision about the shot's current
output stands (:func:`current_reviews`).

The reel job refuses to deliver while a shot's current decision is a rejection
(:func:`rejected_error`), and so does the release of a language version
(:func:`studio.services.reel_review.publish`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select

from studio.errors import JobStateError, ReelHeldError, ReelNotFoundError, ShotRejectedError

from .models import ReelJobRow, ReelReviewRow, ReelShotRow
from .store import ReelJobRecord, ReelStore, ShotState, now

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

    def to_json(self) -> dict[str, Any]:
        return {"review_id": self.review_id, "job_id": self.job_id, "shot": self.shot,
                "output_sha256": self.output_sha256, "decision": self.decision.value,
                "note": self.note, "reviewer": self.reviewer,
                "decided_at": self.decided_at.isoformat()}


def _review(row: ReelReviewRow) -> ShotReview:
    return ShotReview(row.review_id, row.job_id, row.shot, row.output_sha256,
                      Verdict(row.decision), row.note, row.reviewer, row.decided_at)


def add_review(reels: ReelStore, job_id: str, shot: int, output_sha256: str,
               decision: Verdict, note: str, reviewer: str) -> ShotReview:
    with reels.store.session() as s:
        # The job's row locked, as the release locks it (mark_released): a decision and a
        # release of the same version are serialised, never interleaved.
        if s.get(ReelJobRow, job_id, with_for_update=True) is None:
            raise ReelNotFoundError(f"no reel job {job_id!r}")
        row = ReelReviewRow(job_id=job_id, shot=shot, output_sha256=output_sha256,
                            decision=decision.value, note=note[:MAX_NOTE], reviewer=reviewer,
                            decided_at=now())
        s.add(row)
        s.flush()
        return _review(row)


def reviews_of(reels: ReelStore, job_id: str) -> list[ShotReview]:
    """Every decision about the job's shots, oldest first."""
    with reels.store.session() as s:
        return [_review(r) for r in s.scalars(
            select(ReelReviewRow).where(ReelReviewRow.job_id == job_id)
            .order_by(ReelReviewRow.review_id))]


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
    """The refusal to deliver ``job`` while a shot's current review is a rejection."""
    rejected = [r for _, r in sorted(current_reviews(job, reviews_of(reels, job.job_id))
                                     .items()) if r.decision is Verdict.REJECTED]
    if not rejected:
        return None
    shots = "; ".join(f"shot {r.shot} by {r.reviewer}: {r.note!r}" for r in rejected)
    return ShotRejectedError(
        f"reel {reel_id} in {job.language} is not delivered: rejected in review ({shots}). "
        "Render the shot again (a new dub) or approve it after another look "
        f"(`studio reel review {reel_id} --language {job.language} --shot "
        f"{rejected[0].shot} --approve`)",
        tuple(r.shot for r in rejected))


def mark_released(reels: ReelStore, job_id: str, released: dict[str, Any]) -> None:
    """Record the release of the job's deliverables (status ``delivered``).

    The release's checks ran before (``services.reel_review.publish``), and take a while (the
    ledger's answer about each deliverable's approval); the reviews are checked again here,
    in the transaction that records the release, with the job's row locked as
    :func:`add_review` locks it: a rejection (or a new render) committed meanwhile holds the
    release instead of being overtaken by it."""
    with reels.store.session() as s:
        row = s.get(ReelJobRow, job_id, with_for_update=True)
        if row is None:
            raise ReelNotFoundError(f"no reel job {job_id!r}")
        if row.status not in ("done", "delivered"):
            raise JobStateError(f"reel {row.reel_id} in {row.language} changed during the "
                                f"release ({row.status}): nothing was released")
        outputs = {r.shot: str(r.outcome.get("sha256") or "") for r in s.scalars(
            select(ReelShotRow).where(ReelShotRow.job_id == job_id))
            if r.state == ShotState.RENDERED.value and r.outcome.get("sha256")}
        current: dict[int, ReelReviewRow] = {}
        for review in s.scalars(select(ReelReviewRow).where(ReelReviewRow.job_id == job_id)
                                .order_by(ReelReviewRow.review_id)):
            if outputs.get(review.shot) == review.output_sha256:
                current[review.shot] = review
        rejected = [r for _, r in sorted(current.items())
                    if r.decision == Verdict.REJECTED.value]
        if rejected:
            shots = "; ".join(f"shot {r.shot} by {r.reviewer}: {r.note!r}" for r in rejected)
            raise ShotRejectedError(
                f"reel {row.reel_id} in {row.language} is not released: rejected in review "
                f"during the release ({shots})", tuple(r.shot for r in rejected))
        unreviewed = sorted(set(outputs) - set(current))
        if unreviewed:
            raise ReelHeldError(f"reel {row.reel_id} in {row.language} is not released: "
                                f"shots {unreviewed} were rendered again during the release "
                                "and are not reviewed yet")
        row.deliverables = {**row.deliverables, "released": released}
        row.status = "delivered"
        row.updated_at = now()
