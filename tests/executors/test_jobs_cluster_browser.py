"""The Jobs tab's cluster panel in a real browser, on the real Ray cluster of this folder's
conftest (a head of 0 CPUs and two worker nodes of one CPU, on 127.0.0.1) and the PostgreSQL
registry (issue 18: "``studio workers`` shows the cluster (nodes, GPUs, running tasks); the
Jobs tab links to it").

An operator signs in and opens the Jobs tab: its note links to the cluster panel, which shows
the cluster's nodes as Ray lists them (ids, CPUs, GPUs, the totals); while the operator's
render runs on a worker node, Refresh shows that job's render task (the worker's process,
not the studio's), and once the job has ended the task is gone. The local executor's panel
is checked in ``tests/ui/test_browser.py`` (the story's Jobs tab).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from studio.accounts import Role
from studio.executors.cluster import TaskView, running_render_tasks
from studio.jobs import JobStatus
from studio.render import RenderRequest
from studio.settings import Settings
from studio.ui.handlers import Studio
from tests.browser import browser as browser  # the fixtures
from tests.browser import chromium as chromium
from tests.browser import click, serving, settle, sign_in, tab, wait_until
from tests.ui.conftest import FAST_HASHER

from .conftest import DEMO_SHOT, OTHER_VOICE

ray = pytest.importorskip("ray", reason="the [ray] extra is not installed")
from ray.cluster_utils import Cluster  # noqa: E402

# The cluster this folder's tests share: under `make test` (xdist, --dist loadgroup) on one
# worker with them, not a cluster of its own.
pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres,
              pytest.mark.xdist_group("ray-cluster")]

OPERATOR, PASSWORD = "rhea", "operator-password-ray"
#: The tables of the cluster panel as the browser shows them: each row's cells, header first.
TABLES_JS = """() => Array.from(document.querySelectorAll('#jobs-cluster table')).map(t =>
  Array.from(t.querySelectorAll('tr')).map(r =>
    Array.from(r.querySelectorAll('th, td')).map(c => c.innerText.trim())))"""


@pytest.fixture
def served_on_ray(pg_settings: Settings, cluster: Cluster) -> Iterator[tuple[str, Studio]]:
    """The studio on the cluster (``STUDIO_EXECUTOR=ray``: its executor joins the test's Ray
    driver), served, with an operator's account."""
    studio = Studio.open(pg_settings, hasher=FAST_HASHER)
    try:
        studio.accounts.add(OPERATOR, Role.OPERATOR, password=PASSWORD,
                            display_name="Rhea Operator")
        with serving(studio) as url:
            yield url, studio
    finally:
        studio.close()


def _table(page: Page, first: str) -> list[dict[str, str]]:
    """The rows of the cluster panel's table whose first column is ``first`` (``node``: the
    nodes; ``job``: the render tasks), each by its column names."""
    for table in page.evaluate(TABLES_JS):
        if table and table[0] and table[0][0] == first:
            return [dict(zip(table[0], row, strict=True)) for row in table[1:]]
    return []


def _rendering(studio: Studio, settings: Settings, job_id: str) -> TaskView:
    """The job's render task once its worker has written a frame (from the attempt the worker
    records in staging); waits as long as the job runs (a generous bound stops a hang only)."""
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        for task in running_render_tasks(settings):
            if task.job_id == job_id and (task.done or 0) >= 1:
                return task
        record = studio.jobs.get(job_id)
        assert not record.status.finished, \
            f"the job ended ({record.status.value}: {record.error}) before its task rendered"
        time.sleep(0.05)
    raise AssertionError(f"gave up waiting for {job_id}'s render task")


def _ray_nodes() -> set[tuple[str, float, float, bool]]:
    """The cluster's nodes as Ray lists them: (id, CPUs, GPUs, alive)."""
    nodes: list[dict[str, Any]] = ray.nodes()
    return {(str(n["NodeID"])[:12], float(n["Resources"].get("CPU", 0.0)),
             float(n["Resources"].get("GPU", 0.0)), bool(n["Alive"])) for n in nodes}


def test_the_jobs_tab_shows_the_cluster_and_a_running_jobs_task(
        served_on_ray: tuple[str, Studio], browser: Browser, pg_settings: Settings) -> None:
    url, studio = served_on_ray
    started = time.monotonic()
    _, page = sign_in(browser, url, OPERATOR, PASSWORD)

    # The Jobs tab: its note links to the cluster panel, which the tab fills as it opens.
    tab(page, "Jobs")
    settle(page, "the Jobs tab's first load")
    link = page.locator("#tab-jobs a[href='#jobs-cluster']")
    expect(link).to_have_text("the render cluster")
    panel = page.locator("#jobs-cluster")
    page.set_viewport_size({"width": 1400, "height": 300})  # the panel below the fold
    expect(panel).not_to_be_in_viewport()
    link.click()
    expect(panel).to_be_in_viewport()  # scrolled to, on the same page
    assert page.url.endswith("#jobs-cluster") and len(page.context.pages) == 1
    page.set_viewport_size({"width": 1400, "height": 1100})
    expect(panel).to_contain_text("Render cluster (Ray)")

    # The real cluster's nodes: their ids, CPUs and GPUs as Ray lists them, and the totals.
    nodes = _ray_nodes()
    # (tests/executors/conftest: a head of 0 CPUs, two workers of 1)
    assert sorted(c for _, c, _, alive in nodes if alive) == [0, 1, 1]
    wait_until(page, lambda: len(_table(page, "node")) == len(nodes), "the nodes in the panel")
    shown = {(n["node"], float(n["CPUs"]), float(n["GPUs"]), n["alive"] == "yes")
             for n in _table(page, "node")}
    assert shown == nodes
    expect(panel).to_contain_text("3 node(s), 3 alive")
    expect(panel).to_contain_text("of 2 · GPUs 0 free of 0")
    expect(panel).to_contain_text("No render task of these jobs is running on the cluster.")

    # The operator's render, running on a worker node: Refresh shows its task. The worker is
    # held still (SIGSTOP) while the page is refreshed and read, so that what the panel shows
    # can be compared with what the worker recorded, and a render faster than the page
    # cannot end before it is looked at; it goes on afterwards.
    job = studio.jobs.submit(RenderRequest(
        operation="lipsync", source=DEMO_SHOT, dub=OTHER_VOICE, project_id="demo-dub",
        language="de", source_language="en", territory="FR", operator="Rhea Operator",
        output_name="cluster-panel.de.mp4"), OPERATOR)
    rendering = _rendering(studio, pg_settings, job.job_id)
    os.kill(rendering.pid, signal.SIGSTOP)
    try:
        recorded = [t for t in running_render_tasks(pg_settings) if t.job_id == job.job_id]
        click(page, "#jobs-refresh")
        expect(page.locator("#jobs-table")).to_contain_text(job.job_id)
        tasks = _table(page, "job")
        assert studio.jobs.get(job.job_id).status is JobStatus.RUNNING
    finally:
        os.kill(rendering.pid, signal.SIGCONT)
    assert rendering.pid != os.getpid()  # a Ray worker's process, not the studio's
    assert tasks == [{"job": t.job_id, "chunk": t.chunk_id, "node": t.node, "pid": str(t.pid),
                      "frames": f"{t.done}/{t.total}"} for t in recorded], (tasks, recorded)
    assert rendering.pid in {int(t["pid"]) for t in tasks}

    # The job ends: its task is gone from the panel.
    record = studio.jobs.wait(job.job_id)
    assert record.status is JobStatus.DONE, record.error
    click(page, "#jobs-refresh")
    expect(panel).to_contain_text("No render task of these jobs is running on the cluster.")
    expect(panel).not_to_contain_text(job.job_id)
    assert _table(page, "job") == []
    assert len(_table(page, "node")) == 3
    print(f"the cluster panel's story took {time.monotonic() - started:.1f} s")
