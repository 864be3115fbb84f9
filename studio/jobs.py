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
from dataclasses import replace
from typing import Any

from consent.errors import NotFoundError
from consent.registry import Registry
from studio.errors import ConsentRefused, JobStateError, RenderCancelled, RenderDenied
from studio.executors import Executor, executor_for
from studio.render import ProgressEvent, RenderRequest, Stage, staging
from studio.services.context import AppContext
from studio.services.errors import internal, translate
from studio.services.jobs import JobRecord, JobRecords, JobStatus, JobStore, now, summary
from studio.services.render import RenderRun, start_render
from studio.settings import Settings

log = logging.getLogger(__name__)


__all__ = ["JobManager", "JobRecord", "JobStatus"]


class JobManager:
    """See the module docstring. Thread-safe; one per studio process."""

    def __init__(self, settings: Settings, registry: Registry, store: JobStore, *,
                 workers: int | None = None, executor: Executor | None = None) -> None:
        self.settings = settings
        self.registry = registry
        self.store = store
        self.records = JobRecords(store)
        self._ctx = AppContext(settings, registry)
        # Where each render's pipeline runs: here, or on a Ray cluster (studio.executors).
        self.executor = executor or executor_for(settings, registry)
        self.workers = max(1, workers or settings.concurrent_renders)
        self._pool = ThreadPoolExecutor(max_workers=self.workers,
                                        thread_name_prefix="studio-render")
        self._lock = threading.Lock()
        self._live: dict[str, JobRecord] = {}
        self._jobs: dict[str, RenderRun] = {}
        self._futures: dict[str, Future[None]] = {}
        self._recover()

    def _recover(self) -> None:
        self.records.interrupt_unfinished()
        # Their media, reserved names and issued watermark payloads (studio.render.staging).
        for job_id in staging.sweep(self.settings, self.registry, job_folders=True):
            log.info("cleaned up interrupted render %s", job_id)

    # -- submit / follow / cancel --------------------------------------------------------------

    def submit(self, request: RenderRequest, username: str) -> JobRecord:
        from studio.render.job import new_job_id

        job_id = new_job_id()
        run = start_render(self._ctx, request, job_id=job_id,
                           listener=lambda event: self._progress(job_id, event))
        job = run.job
        self.executor.prepare(job)
        at = now()
        record = JobRecord(job.job_id, username, request.operation, JobStatus.QUEUED, at, at,
                           message="waiting for a free render slot", summary=summary(request))
        with self._lock:
            self._live[job.job_id] = record
            self._jobs[job.job_id] = run
        self._persist(record, new=True)
        self._futures[job.job_id] = self._pool.submit(self._run, run)
        return record

    def get(self, job_id: str) -> JobRecord:
        with self._lock:
            live = self._live.get(job_id)
        if live is not None:
            return live
        stored = self.records.get(job_id)
        if stored is None:
            raise NotFoundError(f"no job {job_id}")
        return stored

    def history(self, username: str | None = None, limit: int = 200) -> list[JobRecord]:
        """Newest first; every user's when ``username`` is None. Live jobs show live progress."""
        rows = self.records.history(username, limit)
        with self._lock:
            return [self._live.get(r.job_id, r) for r in rows]

    def cancel(self, job_id: str) -> JobRecord:
        with self._lock:
            run = self._jobs.get(job_id)
            record = self._live.get(job_id)
        if run is None or record is None:
            current = self.get(job_id)
            raise JobStateError(f"job {job_id} is {current.status.value}; nothing to cancel")
        run.cancel()
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
            for run in jobs:
                run.cancel()
        self._pool.shutdown(wait=True, cancel_futures=False)
        self.executor.close()

    # -- internals -------------------------------------------------------------------------------

    def _update(self, job_id: str, **changes: Any) -> JobRecord:
        with self._lock:
            record = replace(self._live[job_id], updated_at=now(), **changes)
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

    def _run(self, run: RenderRun) -> None:
        job_id = run.job_id
        try:
            if run.cancelled:
                raise RenderCancelled(f"render {job_id} cancelled before it started")
            self._persist(self._update(job_id, status=JobStatus.RUNNING, message="starting"))
            outcome = run.run()
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
        except ConsentRefused as exc:  # no consented face: a refusal of record
            final = self._update(job_id, status=JobStatus.DENIED, message="refused: no "
                                 "consented face", error=exc.message,
                                 decision_id=exc.decision.decision_id,
                                 decision=exc.decision.to_json())
        except RenderCancelled as exc:
            final = self._update(job_id, status=JobStatus.CANCELLED, message="cancelled",
                                 error=str(exc))
        except Exception as exc:  # the one table says what it was (studio.services.errors)
            said = translate(exc)
            if said is None:  # a bug: say so, keep the studio running
                log.exception("render %s failed", job_id)
                said = internal(exc)
            final = self._update(job_id, status=JobStatus.FAILED, message="failed",
                                 error=said.message)
        self._persist(final)
        with self._lock:
            self._jobs.pop(job_id, None)
            # Keep the finished record live (with its decision and outcome) for the page.

    def _persist(self, record: JobRecord, *, new: bool = False) -> None:
        self.records.persist(record, new=new)
