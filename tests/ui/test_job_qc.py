"""The render's QC in the studio (issue 16): the services layer hands it to the Jobs and result
views, which show the figures and a visible "needs review" flag."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from studio.jobs import JobManager, JobStatus
from studio.render import RenderRequest
from studio.services import jobs
from studio.settings import Settings
from studio.ui.handlers import Handlers, Studio
from tests.media.mediagen import tone, write_audio

from .conftest import DEMO_SHOT, as_user


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The studio's default, QC on (the suite turns it off elsewhere: tests/conftest.py)."""
    return replace(settings, render_qc=True)


@pytest.mark.slow
def test_a_render_that_needs_review_is_flagged_in_the_job_views(studio: Studio, h: Handlers,
                                                                tmp_path: Path) -> None:
    # A dub with no speech (a 220 Hz tone): the render goes through, the mouth stays shut.
    dub = write_audio(tmp_path / "tone.wav", tone(220.0, 3.0, 48000).reshape(1, -1), 48000)
    otto = studio.accounts.get("otto")
    request = RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                            language="fr", source_language="en", territory="FR",
                            operator=otto.ledger_name, dub=dub, output_name="tone.fr.mp4")
    job_id = studio.jobs.submit(request, "otto").job_id
    record = studio.jobs.wait(job_id, timeout=600)
    assert record.status is JobStatus.DONE, record.error

    # The services function the views use.
    qc = jobs.job_qc(studio.jobs, otto, job_id)
    assert qc is not None and qc.needs_review
    assert [t["track_id"] for t in qc.tracks] == [1]
    assert any("sync to the dub" in r for r in qc.reasons), qc.reasons
    assert qc.thresholds["sync_min"] == 0.6

    # The result view: the flag, why, and the figures per track.
    _progress, text, _video, _download, _rules = h.job_status(job_id, request=as_user("otto"))
    assert "QC: NEEDS REVIEW" in text and "sync to the dub" in text
    assert 'data-qc="needs-review"' in text and "| t1 |" in text
    # The Jobs table's QC column.
    row = h.list_jobs("mine", request=as_user("otto"))[0]
    assert row[0] == job_id and row[4] == "⚠ needs review"

    # After a restart the database row has no outcome: the job's record folder still has it.
    restarted = JobManager(studio.settings, studio.registry, studio.jobs.store, workers=1)
    try:
        stored = restarted.get(job_id)
        assert stored.outcome is None
        again = jobs.job_qc(restarted, otto, job_id)
        assert again is not None and again.needs_review and again.tracks == qc.tracks
    finally:
        restarted.shutdown()
