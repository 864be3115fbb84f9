"""The job manager: history survives a restart; a render cut off by a restart says so."""

from __future__ import annotations

from datetime import UTC, datetime

from studio.accounts.models import JobRow
from studio.jobs import JobManager, JobStatus
from studio.ui.handlers import Studio


def test_history_survives_a_restart_and_interrupted_jobs_are_marked(studio: Studio) -> None:
    now = datetime.now(UTC)
    with studio.registry.store.session() as s:
        s.add(JobRow(job_id="job-old", username="otto", operation="lipsync", status="running",
                     stage="run", progress=0.5, summary={"source": "shot.mp4"}, output=None,
                     error=None, decision_id=None, created_at=now, updated_at=now))
        s.add(JobRow(job_id="job-done", username="opal", operation="lipsync", status="done",
                     stage="publish", progress=1.0, summary={}, output="/x/out.mp4",
                     error=None, decision_id="dec-1", created_at=now, updated_at=now))
    manager = JobManager(studio.settings, studio.registry, studio.registry.store, workers=2)
    try:
        old = manager.get("job-old")
        assert old.status is JobStatus.FAILED and "interrupted" in (old.error or "")
        assert [r.job_id for r in manager.history("otto")] == ["job-old"]
        assert {r.job_id for r in manager.history()} == {"job-old", "job-done"}
        assert manager.get("job-done").status is JobStatus.DONE
        assert manager.workers == 2
    finally:
        manager.shutdown()


def test_the_pool_size_comes_from_the_settings(studio: Studio) -> None:
    assert studio.jobs.workers == studio.settings.concurrent_renders == 1
