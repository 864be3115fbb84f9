"""The Jobs tab's cluster panel (STUDIO_EXECUTOR=ray), through studio.services.workers: the
cluster's nodes with their CPUs and GPUs, each running job's render tasks, read from the
attempts its workers record in the shared staging folder, and a link to the Ray dashboard only
when one answers; with the local executor a sentence saying there is no cluster. In a real
browser on a real cluster: tests/executors/test_jobs_cluster_browser.py."""

from __future__ import annotations

import importlib.util
import json
import socket
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from studio.executors.cluster import NodeView
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
    assert view.nodes.nodes == ()
    assert cluster_markdown(view).startswith(
        "**Render cluster:** none — renders run in the studio's own process "
        "(`STUDIO_EXECUTOR=local`).")


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


def test_the_nodes_and_their_resources_are_shown() -> None:
    nodes = workers.Nodes((NodeView("aaaa11112222", "10.0.0.1", True, 0.0, 0.0, 1.5),
                           NodeView("bbbb11112222", "10.0.0.2", True, 8.0, 2.0, 60.0),
                           NodeView("cccc11112222", "10.0.0.3", False, 8.0, 2.0, 60.0)),
                          cpus=8.0, gpus=2.0, free_cpus=7.0, free_gpus=1.0)
    text = cluster_markdown(workers.ClusterJobs("ray", {}, None, nodes))
    assert "3 node(s), 2 alive · CPUs 7 free of 8 · GPUs 1 free of 2" in text
    assert "| `bbbb11112222` | 10.0.0.2 | yes | 8 | 2 | 60 |" in text
    assert "| `cccc11112222` | 10.0.0.3 | no | 8 | 2 | 60 |" in text


def test_a_studio_without_a_ray_driver_says_so(ray_settings: Settings) -> None:
    """No Ray driver in this process (the studio's RayExecutor connects at start): the panel
    names the problem instead of failing."""
    problem = ("this studio process is not connected to a Ray cluster"
               if importlib.util.find_spec("ray") else
               "Ray is not installed (the studio's [ray] extra)")
    view = workers.cluster_jobs(ray_settings, [])
    assert view.nodes.problem == problem
    assert f"Nodes unknown: {problem}." in cluster_markdown(view)
