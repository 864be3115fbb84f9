"""Render jobs as the studio keeps them: their records (the ``studio_jobs`` table, so the
history survives a restart) and who may see, cancel and download which.

The pool that runs them is :class:`studio.jobs.JobManager`; each job is a
:class:`studio.services.render.RenderRun`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from sqlalchemy import select

from consent.store import Store
from studio.accounts import AccessDenied, Role, User
from studio.accounts.models import JobRow
from studio.errors import UsageError
from studio.render.request import RenderRequest

if TYPE_CHECKING:
    from studio.jobs import JobManager

#: The database the job records live in (the registry's), as the job pool is given it.
JobStore: TypeAlias = Store


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    DENIED = "denied"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.QUEUED, JobStatus.RUNNING)


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    username: str
    operation: str
    status: JobStatus
    created_at: datetime
    updated_at: datetime
    stage: str = ""
    step: int = 0
    progress: float = 0.0
    message: str = ""
    eta_s: float | None = None
    output: str | None = None
    error: str | None = None
    decision_id: str | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    decision: dict[str, Any] | None = None
    outcome: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "user": self.username, "operation": self.operation,
                "status": self.status.value, "stage": self.stage, "step": self.step,
                "progress": round(self.progress, 3), "message": self.message,
                "eta_s": None if self.eta_s is None else round(self.eta_s, 1),
                "output": self.output, "error": self.error, "decision_id": self.decision_id,
                "summary": self.summary, "created_at": self.created_at.isoformat(),
                "updated_at": self.updated_at.isoformat(), "decision": self.decision,
                "outcome": self.outcome}


def now() -> datetime:
    return datetime.now(UTC)


def summary(request: RenderRequest) -> dict[str, Any]:
    """What a job's history shows of its request (file names, never paths)."""
    keep = ("project_id", "language", "territory", "channel", "operator", "output_name")
    out: dict[str, Any] = {k: str(getattr(request, k)) for k in keep
                           if getattr(request, k) is not None}
    out["source"] = request.source.name
    out["tracks"] = list(request.tracks)
    for name in ("dub", "m_and_e", "script", "driver", "motion"):
        value = getattr(request, name)
        if value is not None:
            out[name] = value.name
    return out


class JobRecords:
    """The ``studio_jobs`` table: one row per job, its status changes and stages."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def interrupt_unfinished(self) -> None:
        """Mark jobs that were queued or running when the studio stopped as failed."""
        with self.store.session() as s:
            for row in s.scalars(select(JobRow).where(
                    JobRow.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))):
                row.status = JobStatus.FAILED.value
                row.error = "interrupted: the studio stopped before this render finished"
                row.updated_at = now()

    def get(self, job_id: str) -> JobRecord | None:
        with self.store.session() as s:
            row = s.get(JobRow, job_id)
            return None if row is None else _record(row)

    def history(self, username: str | None = None, limit: int = 200) -> list[JobRecord]:
        """Newest first; every user's when ``username`` is None."""
        with self.store.session() as s:
            query = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
            if username is not None:
                query = query.where(JobRow.username == username)
            return [_record(r) for r in s.scalars(query)]

    def persist(self, record: JobRecord, *, new: bool = False) -> None:
        with self.store.session() as s:
            row = None if new else s.get(JobRow, record.job_id)
            if row is None:
                row = JobRow(job_id=record.job_id, username=record.username,
                             operation=record.operation, created_at=record.created_at,
                             summary=record.summary)
                s.add(row)
            row.status = record.status.value
            row.stage = record.stage
            row.progress = record.progress
            row.output = record.output
            row.error = record.error
            row.decision_id = record.decision_id
            row.updated_at = record.updated_at


def _record(row: JobRow) -> JobRecord:
    return JobRecord(row.job_id, row.username, row.operation, JobStatus(row.status),
                     row.created_at, row.updated_at, row.stage, 0, row.progress,
                     output=row.output, error=row.error, decision_id=row.decision_id,
                     summary=dict(row.summary))


# ---------------------------------------------------------------------------- access

def job_for(jobs: JobManager, user: User, job_id: str) -> JobRecord:
    """A job its owner, an auditor or an admin may see."""
    job_id = (job_id or "").strip()
    if not job_id:
        raise UsageError("give a job id")
    record = jobs.get(job_id)
    if record.username != user.username and not user.can(Role.AUDITOR):
        raise AccessDenied("that job belongs to another user")
    return record


def cancel_job(jobs: JobManager, user: User, job_id: str) -> JobRecord:
    """Cancel a queued or running job: its owner or an admin only."""
    record = job_for(jobs, user, job_id)
    if record.username != user.username and user.role is not Role.ADMIN:
        raise AccessDenied("only the job's owner or an admin can cancel it")
    return jobs.cancel(record.job_id)


def list_jobs(jobs: JobManager, user: User, *, everyone: bool = False) -> list[JobRecord]:
    """The user's own jobs, or (auditors and admins) every user's."""
    if everyone and not user.can(Role.AUDITOR):
        raise AccessDenied("only auditors and admins see every user's jobs")
    return jobs.history(None if everyone else user.username)


@dataclass(frozen=True)
class JobQC:
    """The lip-sync QC of a finished render (``qc`` in its job record, issue 16): per edited
    track the figures of ``pipelines.qc.report.TrackQC`` as JSON, the thresholds, and the
    verdict; ``error`` when the QC could not measure (then it needs review too)."""

    needs_review: bool
    tracks: tuple[dict[str, Any], ...]
    thresholds: dict[str, Any]
    error: str | None = None

    @property
    def reasons(self) -> tuple[str, ...]:
        found = [f"t{t.get('track_id')}: {r}" for t in self.tracks for r in t.get("reasons", [])]
        return (*found, *([self.error] if self.error else []))

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> JobQC:
        tracks = tuple(t for t in doc.get("tracks") or [] if isinstance(t, dict))
        return cls(bool(doc.get("needs_review")), tracks, dict(doc.get("thresholds") or {}),
                   doc.get("error") if isinstance(doc.get("error"), str) else None)


def record_qc(jobs: JobManager, record: JobRecord) -> JobQC | None:
    """The QC of ``record`` (no access check: for records already shown to the user): from
    the live record, else from the job's ``outcome.json`` (the database keeps no outcome).
    None while it runs, when it failed, and for renders without QC (reenactments,
    ``STUDIO_RENDER_QC=off``)."""
    if record.status is not JobStatus.DONE:
        return None
    outcome = record.outcome
    if outcome is None:
        path = jobs.settings.jobs_dir / record.job_id / "outcome.json"
        try:
            outcome = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    qc = outcome.get("qc") if isinstance(outcome, dict) else None
    return JobQC.from_json(qc) if isinstance(qc, dict) else None


def job_qc(jobs: JobManager, user: User, job_id: str) -> JobQC | None:
    """The QC of a job its owner, an auditor or an admin may see (:func:`record_qc`)."""
    return record_qc(jobs, job_for(jobs, user, job_id))


def job_output(jobs: JobManager, user: User, job_id: str) -> Path | None:
    """The published output of a finished job, for its owner (or an auditor or admin) to
    download; ``None`` while there is none."""
    record = job_for(jobs, user, job_id)
    if record.status is not JobStatus.DONE or not record.output:
        return None
    path = Path(record.output)
    return path if path.is_file() else None
