"""Renders on a real Ray cluster (tests/executors/conftest.py) with the PostgreSQL registry:
a multi-shot job completes, a worker killed mid-task is retried and the output published once,
a cancelled job stops its task, and a worker refuses a forged, expired or foreign decision."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest
from typer.testing import CliRunner

from consent.decision_token import token_draft
from consent.documents import RenderDecisionToken, sign_draft
from consent.errors import DecisionScopeError, ExpiredDecisionError, ForgedDecisionError
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from studio.cli import app
from studio.executors import LocalExecutor
from studio.executors.ray_executor import SHOT_CHUNK, RayExecutor
from studio.executors.worker import PRIVATE_PREFIX, ChunkTask, chunk_dir, input_hashes
from studio.jobs import JobManager, JobStatus
from studio.render import RenderRequest
from studio.render.pipeline_step import PipelineWork
from studio.render.staging import staging_root
from studio.settings import Settings
from tests.executors.helpers import demo_decision, refused

from .conftest import DEMO_SHOT, OTHER_VOICE, ROOT

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

# One cluster for the module: under `make test` (xdist, --dist loadgroup) its tests share a
# worker instead of each starting a cluster of its own.
pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("ray-cluster")]


def _request(language: str, name: str) -> RenderRequest:
    return RenderRequest(operation="lipsync", source=DEMO_SHOT, project_id="demo-dub",
                         language=language, source_language="en", territory="FR",
                         operator="Test Operator", dub=OTHER_VOICE, output_name=name)


@pytest.fixture(scope="module")
def manager(pg_settings: Settings, pg_registry: Registry, cluster: Cluster
            ) -> Iterator[JobManager]:
    executor = RayExecutor(pg_settings, pg_registry)
    jobs = JobManager(pg_settings, pg_registry, pg_registry.store, workers=3,
                      executor=executor)
    yield jobs
    jobs.shutdown()


def _until(what: str, check: Callable[[], Any], *, job: JobManager | None = None,
           job_id: str | None = None) -> Any:
    """Wait while the work progresses: fail when the job ends first, never on a short clock
    (a generous bound only stops a hang)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if job is not None and job_id is not None and job.get(job_id).status.finished:
            value = check()
            if value:
                return value
            raise AssertionError(f"{job_id} ended ({job.get(job_id)}) before {what}")
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


def _published(registry: Registry, sha256: str) -> int:
    with registry.store.session() as s:
        return len(Ledger.entries_referencing(s, "output", sha256, EventType.OUTPUT_PUBLISHED))


def _outputs(settings: Settings) -> list[str]:
    folder = settings.outputs_dir
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def _publications(registry: Registry) -> int:
    with registry.store.session() as s:
        size = Ledger.size(s)
        return sum(Ledger.entry(s, i).event_type is EventType.OUTPUT_PUBLISHED
                   for i in range(size))


def _ledger_ok(registry: Registry) -> None:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert report.ok, report


def _log(settings: Settings, job_id: str) -> list[dict[str, Any]]:
    lines = (settings.jobs_dir / job_id / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def _worker_note(settings: Settings, job_id: str) -> dict[str, Any]:
    notes = [e for e in _log(settings, job_id) if e["message"] == "rendered by a worker"]
    assert len(notes) == 1, notes
    return notes[0]


def _running_attempt(settings: Settings, job_id: str, min_frames: int) -> dict[str, Any]:
    """The attempt rendering ``job_id`` once it has written ``min_frames`` frames."""
    folder = chunk_dir(staging_root(settings) / "jobs" / job_id, SHOT_CHUNK)
    try:
        progress = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
        attempt = json.loads((folder / progress["attempt"] / "attempt.json")
                             .read_text(encoding="utf-8"))
    except (OSError, ValueError, KeyError):
        return {}
    return attempt if progress["done"] >= min_frames else {}


# -- a multi-shot job ----------------------------------------------------------------------------


def test_a_multi_shot_job_renders_on_the_workers_and_publishes_each_shot_once(
        manager: JobManager, pg_settings: Settings, pg_registry: Registry) -> None:
    shots = [_request(lang, f"scene1.{lang}.mp4") for lang in ("fr", "de")]
    jobs = [manager.submit(r, "otto") for r in shots]
    done = [manager.wait(j.job_id) for j in jobs]
    assert [d.status for d in done] == [JobStatus.DONE] * 2, [d.error for d in done]
    for record in done:
        assert record.outcome is not None
        sha = record.outcome["output_sha256"]
        assert _published(pg_registry, sha) == 1
        note = _worker_note(pg_settings, record.job_id)
        assert note["pid"] != os.getpid()  # rendered by a Ray worker, not the head
        assert note["first_to_finish"] is True
        assert Path(record.outcome["output"]).is_file()
    names = {p.name for p in pg_settings.outputs_dir.iterdir()}
    assert {"scene1.fr.mp4", "scene1.de.mp4"} <= names
    _ledger_ok(pg_registry)


# -- a worker killed mid-task --------------------------------------------------------------------


def test_a_worker_killed_mid_task_is_retried_and_the_output_published_once(
        manager: JobManager, pg_settings: Settings, pg_registry: Registry) -> None:
    job = manager.submit(_request("fr", "killed.fr.mp4"), "otto")
    attempt = _until("the worker to render 10 frames",
                     lambda: _running_attempt(pg_settings, job.job_id, 10),
                     job=manager, job_id=job.job_id)
    # `studio workers` sees the cluster and this task on it, then the kill.
    result = CliRunner().invoke(app, ["--data", str(pg_settings.data_dir), "workers", "--json"])
    assert result.exit_code == 0, result.output
    view = json.loads(result.output)
    assert len(view["nodes"]) == 3 and view["totals"]["cpus"] == 2
    assert [(t["job_id"], t["pid"]) for t in view["render_tasks"]] \
        == [(job.job_id, attempt["pid"])]
    # The worker's private copies of the inputs (studio.executors.worker.render_chunk).
    private = sorted(Path(tempfile.gettempdir()).glob(f"{PRIVATE_PREFIX}{attempt['pid']}-*"))
    assert len(private) == 1 and any(private[0].rglob("*.mpg"))
    os.kill(int(attempt["pid"]), signal.SIGKILL)
    record = manager.wait(job.job_id)
    assert record.status is JobStatus.DONE, record.error
    note = _worker_note(pg_settings, job.job_id)
    assert note["pid"] != attempt["pid"]  # another worker process ran it again
    assert len(note["abandoned_attempts"]) == 1  # the killed attempt, never published
    assert record.outcome is not None
    assert _published(pg_registry, record.outcome["output_sha256"]) == 1
    with pg_registry.store.session() as s:
        outputs = Ledger.entries_referencing(s, "output", record.outcome["output_sha256"],
                                             EventType.OUTPUT_PUBLISHED)
    assert len(outputs) == 1
    assert sorted(p.name for p in pg_settings.outputs_dir.iterdir()
                  if p.name.startswith("killed.")) == ["killed.fr.mp4",
                                                       "killed.fr.mp4.visemes.json"]
    # Staging is gone, the killed attempt's files with it; so are its private input copies
    # (swept by the task that ran it again, on the same node).
    assert not (staging_root(pg_settings) / "jobs" / job.job_id).exists()
    assert not private[0].exists()
    _ledger_ok(pg_registry)


# -- cancel --------------------------------------------------------------------------------------


def test_a_cancelled_job_stops_its_task(manager: JobManager, pg_settings: Settings,
                                        pg_registry: Registry) -> None:
    executor = cast(RayExecutor, manager.executor)
    job = manager.submit(_request("de", "cancelled.de.mp4"), "otto")
    _until("the worker to start rendering", lambda: _running_attempt(pg_settings, job.job_id, 1),
           job=manager, job_id=job.job_id)
    refs = executor.running[job.job_id]
    before = _publications(pg_registry)
    manager.cancel(job.job_id)
    record = manager.wait(job.job_id)
    assert record.status is JobStatus.CANCELLED, record
    ready, _ = ray.wait(refs, num_returns=len(refs), timeout=60)
    assert ready  # the task has ended, not merely been abandoned
    assert job.job_id not in executor.running
    assert not any(name.startswith("cancelled.") for name in _outputs(pg_settings))
    assert _publications(pg_registry) == before  # nothing was ledgered as published
    _ledger_ok(pg_registry)


# -- a head restart ------------------------------------------------------------------------------

_HEAD = """
import sys, time
from pathlib import Path
from studio.bootstrap import open_registry
from studio.jobs import JobManager
from studio.render import RenderRequest
from studio.settings import Settings

settings = Settings.from_env()
registry = open_registry(settings)
jobs = JobManager(settings, registry, registry.store, workers=1)
record = jobs.submit(RenderRequest(
    operation="lipsync", source=Path(sys.argv[1]), dub=Path(sys.argv[2]), project_id="demo-dub",
    language="es", source_language="en", territory="FR", operator="Test Operator",
    output_name="restart.es.mp4"), "otto")
print(record.job_id, flush=True)
time.sleep(3600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_head_killed_mid_render_leaves_an_interrupted_job_and_no_publication(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster) -> None:
    """The studio process (the head, with its own Ray driver) is SIGKILLed while a worker
    renders its job: Ray ends the task with its driver, the next start marks the job
    interrupted and cleans its staging, and nothing is published."""
    env = {**os.environ, "STUDIO_DATA": str(pg_settings.data_dir),
           "STUDIO_DATABASE_URL": pg_settings.database_url, "STUDIO_EXECUTOR": "ray",
           "RAY_ADDRESS": cluster.address}
    before = _publications(pg_registry)
    head = subprocess.Popen([sys.executable, "-c", _HEAD, str(DEMO_SHOT), str(OTHER_VOICE)],
                            env=env, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        assert head.stdout is not None
        job_id = head.stdout.readline().strip()
        assert job_id.startswith("job-"), job_id

        def rendering() -> dict[str, Any]:
            assert head.poll() is None, "the head process ended by itself"
            return _running_attempt(pg_settings, job_id, 5)

        attempt = _until("the worker to render 5 frames", rendering)
    finally:
        head.kill()
        head.wait()
    _until("Ray to end the dead head's task", lambda: not _alive(int(attempt["pid"])))
    restarted = JobManager(pg_settings, pg_registry, pg_registry.store, workers=1,
                           executor=LocalExecutor())
    try:
        record = restarted.get(job_id)
        assert record.status is JobStatus.FAILED and "interrupted" in (record.error or "")
    finally:
        restarted.shutdown()
    assert not (staging_root(pg_settings) / "jobs" / job_id).exists()
    assert not any(name.startswith("restart.") for name in _outputs(pg_settings))
    assert _publications(pg_registry) == before
    _ledger_ok(pg_registry)


# -- a worker refuses what the registry did not sign for it ---------------------------------------


def test_a_worker_refuses_forged_expired_and_foreign_decisions(
        pg_settings: Settings, pg_registry: Registry, cluster: Cluster, tmp_path: Path) -> None:
    decision = demo_decision(pg_registry)
    req = _request("fr", "refused.fr.mp4")
    inputs = input_hashes(req)
    # Nothing is analysed: a worker must refuse before it reads the work.
    work = PipelineWork(req, cast(Any, None), cast(Any, None), tmp_path)
    now = datetime.now(UTC)

    def task(raw: bytes, job_id: str = "job-x") -> ChunkTask:
        return ChunkTask(job_id, SHOT_CHUNK, raw, work, pg_settings)

    def draft(**changes: Any) -> dict[str, Any]:
        values: dict[str, Any] = dict(job_id="job-x", chunk_id=SHOT_CHUNK, inputs=inputs,
                                      traces={"t1": [(0, 74)]}, watermark_payload=7,
                                      issued_at=now)
        values.update(changes)
        return token_draft(decision, **values)

    forged = sign_draft(RenderDecisionToken, draft(), [PrivateKey.generate()]).to_bytes()
    assert isinstance(refused(task(forged)), ForgedDecisionError)
    expired = pg_registry.issue_decision_token(
        draft(issued_at=now - timedelta(hours=2), validity=timedelta(hours=1))).to_bytes()
    assert isinstance(refused(task(expired)), ExpiredDecisionError)
    sound = pg_registry.issue_decision_token(draft()).to_bytes()
    assert isinstance(refused(task(sound, job_id="job-y")), DecisionScopeError)
    assert not tmp_path.joinpath("chunks").exists()  # refused before anything was written
