"""Renders submitted from the studio UI (or its API): a bounded pool, live progress, cancel,
and a persisted history per user.

The pool has ``Settings.concurrent_renders`` workers; more submissions wait, queued. A page
never waits on a render: it submits, gets a job id at once, and polls :meth:`JobManager.get`.
Each job keeps its record in the ``studio_jobs`` table (status changes and stages), so the
history survives a restart; a job that was queued or running when the studio stopped is
marked failed ("interrupted") on the next start, and its media, reserved output name and
watermark payload are cleaned up (``studio.render.staging``). Its full record (request,
decisions, log, outcome) is the render's own folder ``<data>/jobs/<job id>/``.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from consent.documents import format_validation_error
from consent.errors import ConsentError, NotFoundError
from consent.registry import Registry
from consent.store import Store
from pipelines.media.errors import MediaError
from studio.accounts.models import JobRow
from studio.provenance.manifest import ProvenanceError
from studio.render import (
    ProgressEvent,
    RenderCancelled,
    RenderDenied,
    RenderJob,
    RenderRequest,
    Stage,
    staging,
)
from studio.render.job import new_job_id
from studio.settings import Settings

log = logging.getLogger(__name__)


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


def _now() -> datetime:
    return datetime.now(UTC)


def _summary(request: RenderRequest) -> dict[str, Any]:
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


def _record(row: JobRow) -> JobRecord:
    return JobRecord(row.job_id, row.username, row.operation, JobStatus(row.status),
                     row.created_at, row.updated_at, row.stage, 0, row.progress,
                     output=row.output, error=row.error, decision_id=row.decision_id,
                     summary=dict(row.summary))


class JobManager:
    """See the module docstring. Thread-safe; one per studio process."""

    def __init__(self, settings: Settings, registry: Registry, store: Store, *,
                 workers: int | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.workers = max(1, workers or settings.concurrent_renders)
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="studio-render")
        self._lock = threading.Lock()
        self._live: dict[str, JobRecord] = {}
        self._jobs: dict[str, RenderJob] = {}
        self._futures: dict[str, Future[None]] = {}
        self._recover()

    def _recover(self) -> None:
        with self.store.session() as s:
            for row in s.scalars(select(JobRow).where(
                    JobRow.status.in_([JobStatus.QUEUED.value, JobStatus.RUNNING.value]))):
                row.status = JobStatus.FAILED.value
                row.error = "interrupted: the studio stopped before this render finished"
                row.updated_at = _now()
        # Their media, reserved names and issued watermark payloads (studio.render.staging).
        for job_id in staging.sweep(self.settings, self.registry, job_folders=True):
            log.info("cleaned up interrupted render %s", job_id)

    # -- submit / follow / cancel --------------------------------------------------------------

    def submit(self, request: RenderRequest, username: str) -> JobRecord:
        job_id = new_job_id()
        job = RenderJob(request, self.settings, self.registry, job_id=job_id,
                        listener=lambda event: self._progress(job_id, event))
        now = _now()
        record = JobRecord(job.job_id, username, request.operation, JobStatus.QUEUED, now, now,
                           message="waiting for a free render slot", summary=_summary(request))
        with self._lock:
            self._live[job.job_id] = record
            self._jobs[job.job_id] = job
        self._persist(record, new=True)
        self._futures[job.job_id] = self._pool.submit(self._run, job)
        return record

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            live = self._live.get(job_id)
        if live is not None:
            return live
        with self.store.session() as s:
            row = s.get(JobRow, job_id)
            if row is None:
                raise NotFoundError(f"no job {job_id}")
            return _record(row)

    def history(self, username: str | None = None, limit: int = 200) -> list[JobRecord]:
        """Newest first; every user's when ``username`` is None. Live jobs show live progress."""
        with self.store.session() as s:
            query = select(JobRow).order_by(JobRow.created_at.desc()).limit(limit)
            if username is not None:
                query = query.where(JobRow.username == username)
            rows = [_record(r) for r in s.scalars(query)]
        with self._lock:
            return [self._live.get(r.job_id, r) for r in rows]

    def cancel(self, job_id: str) -> JobRecord:
        with self._lock:
            job = self._jobs.get(job_id)
            record = self._live.get(job_id)
        if job is None or record is None:
            current = self.get(job_id)
            raise ConsentError(f"job {job_id} is {current.status.value}; nothing to cancel")
        job.cancel.set()
        return self._update(job_id, message="cancelling…")

    def wait(self, job_id: str, timeout: float | None = None) -> JobRecord:
        future = self._futures.get(job_id)
        if future is not None:
            future.result(timeout)
        return self.get(job_id)

    def shutdown(self, *, cancel: bool = True) -> None:
        if cancel:
            with self._lock:
                jobs = list(self._jobs.values())
            for job in jobs:
                job.cancel.set()
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- internals -------------------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> JobRecord:
        with self._lock:
            record = replace(self._live[job_id], updated_at=_now(), **changes)
            self._live[job_id] = record
        return record

    def _progress(self, job_id: str, event: ProgressEvent) -> None:
        step = event.stage.number
        within = event.done / event.total if event.total else 0.0
        with self._lock:
            before = self._live[job_id]
        record = self._update(job_id, stage=str(event.stage), step=step,
                              progress=min(1.0, ((step - 1) + within) / len(Stage)),
                              message=event.message or before.message, eta_s=event.eta_s)
        if before.stage != record.stage:
            self._persist(record)

    def _run(self, job: RenderJob) -> None:
        job_id = job.job_id
        try:
            if job.cancel.is_set():
                raise RenderCancelled(f"render {job_id} cancelled before it started")
            self._persist(self._update(job_id, status=JobStatus.RUNNING, message="starting"))
            outcome = job.run()
            final = self._update(job_id, status=JobStatus.DONE, progress=1.0,
                                 step=len(Stage), stage=str(Stage.PUBLISH),
                                 message=f"published {outcome.output.name}",
                                 output=str(outcome.output),
                                 decision_id=outcome.decision.decision_id,
                                 decision=outcome.decision.to_json(), outcome=outcome.to_json())
        except RenderDenied as exc:
            final = self._update(job_id, status=JobStatus.DENIED,
                                 message=f"denied by the consent gate at {exc.stage}",
                                 error="; ".join(exc.decision.reasons) or "denied",
                                 decision_id=exc.decision.decision_id,
                                 decision=exc.decision.to_json())
        except RenderCancelled as exc:
            final = self._update(job_id, status=JobStatus.CANCELLED, message="cancelled",
                                 error=str(exc))
        except ValidationError as exc:
            final = self._update(job_id, status=JobStatus.FAILED, message="refused",
                                 error=format_validation_error("request", exc))
        except (ValueError, MediaError, ProvenanceError, ConsentError, OSError,
                InterruptedError) as exc:
            final = self._update(job_id, status=JobStatus.FAILED, message="failed",
                                 error=str(exc))
        except Exception as exc:  # a bug: say so, keep the studio running
            log.exception("render %s failed", job_id)
            final = self._update(job_id, status=JobStatus.FAILED, message="failed",
                                 error=f"internal error: {type(exc).__name__}: {exc}")
        self._persist(final)
        with self._lock:
            self._jobs.pop(job_id, None)
            # Keep the finished record live (with its decision and outcome) for the page.

    def _persist(self, record: JobRecord, *, new: bool = False) -> None:
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
