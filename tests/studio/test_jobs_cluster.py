"""The Jobs tab's cluster panel (STUDIO_EXECUTOR=ray), through studio.services.workers: each
running job's render tasks, read from the attempts its workers record in the shared staging
folder, and a link to the Ray dashboard only when one answers."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from studio.render.staging import staging_root
from studio.services import workers
from studio.settings import Settings
from studio.ui.handlers import cluster_markdown


@pytest.fixture
def ray_settings(tmp_path: Path) -> Settings:
    return replace(Settings.from_env(tmp_path / "studio-data"), executor="ray")


@pytest.fixture
def listening() -> Iterator[int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    try:
        yield server.getsockname()[1]
    finally:
        server.close()


def _attempt(settings: Settings, job_id: str, chunk: str, pid: int, done: int) -> None:
    folder = staging_root(settings) / "jobs" / job_id / "chunks" / chunk
    (folder / "attempt-ab12").mkdir(parents=True)
    (folder / "attempt-ab12" / "attempt.json").write_text(json.dumps(
        {"node": "node-a", "pid": pid, "job_id": job_id, "chunk_id": chunk,
         "started": "2026-01-01T00:00:00+00:00"}))
    (folder / "progress.json").write_text(json.dumps(
        {"done": done, "total": 25, "attempt": "attempt-ab12"}))


def test_the_local_executor_shows_no_cluster(tmp_path: Path) -> None:
    settings = Settings.from_env(tmp_path / "studio-data")
    view = workers.cluster_jobs(settings, ["job-1"])
    assert view.executor == "local" and view.tasks == {} and view.dashboard_url is None
    assert cluster_markdown(view) == ""


def test_running_jobs_show_their_chunk_tasks_and_the_dashboard_link(
        ray_settings: Settings, listening: int, monkeypatch: pytest.MonkeyPatch) -> None:
    _attempt(ray_settings, "job-1", "f0000000-0000024", 4242, 10)
    _attempt(ray_settings, "job-1", "f0000025-0000049", 4243, 3)
    _attempt(ray_settings, "job-other", "shot", 4244, 1)  # not among the user's running jobs
    monkeypatch.setenv(workers.DASHBOARD_ENV, f"127.0.0.1:{listening}")
    view = workers.cluster_jobs(ray_settings, ["job-1"])
    assert [(t.chunk_id, t.pid, t.done) for t in view.tasks["job-1"]] \
        == [("f0000000-0000024", 4242, 10), ("f0000025-0000049", 4243, 3)]
    assert "job-other" not in view.tasks
    assert view.dashboard_url == f"http://127.0.0.1:{listening}"
    text = cluster_markdown(view)
    assert f"[open the Ray dashboard](http://127.0.0.1:{listening})" in text
    assert "| `job-1` | f0000025-0000049 | node-a | 4243 | 3/25 |" in text


def test_no_link_when_no_dashboard_answers(ray_settings: Settings,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # a port nothing listens on
    monkeypatch.setenv(workers.DASHBOARD_ENV, f"http://127.0.0.1:{port}")
    view = workers.cluster_jobs(ray_settings, [])
    assert view.dashboard_url is None
    assert "no Ray dashboard is running" in cluster_markdown(view)
