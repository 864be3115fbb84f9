"""What the studio shows of its render cluster beside the jobs (``STUDIO_EXECUTOR=ray``).

The Jobs tab asks here, never the executors: per running job, the render tasks its workers
are running (job, chunk, node, process, frames done: read from the attempts the workers record
in the shared staging folder, so no Ray call is made per page refresh), and a link to the Ray
dashboard when one is running and answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlparse

from studio.executors.cluster import TaskView, running_render_tasks
from studio.settings import Settings

#: Ray's own variable for a dashboard behind a proxy; the URL the Jobs tab links to then.
DASHBOARD_ENV = "RAY_OVERRIDE_DASHBOARD_URL"
#: How long a dashboard probe is trusted (the Jobs tab refreshes every few seconds).
_PROBE_TTL_S = 30.0
_probe_lock = threading.Lock()
_probed: dict[str, tuple[float, bool]] = {}


@dataclass(frozen=True)
class ClusterJobs:
    """The cluster side of the Jobs tab."""

    executor: str
    #: job id → its render tasks running now (one per chunk of a long shot).
    tasks: dict[str, tuple[TaskView, ...]]
    #: The Ray dashboard, when one is running; None otherwise.
    dashboard_url: str | None


def cluster_jobs(settings: Settings, job_ids: Iterable[str]) -> ClusterJobs:
    """The render tasks of ``job_ids`` and the dashboard link; empty with the local executor
    (renders run in the studio's own process)."""
    if settings.executor != "ray":
        return ClusterJobs(settings.executor, {}, None)
    wanted = set(job_ids)
    tasks: dict[str, list[TaskView]] = {}
    for task in running_render_tasks(settings):
        if task.job_id in wanted:
            tasks.setdefault(task.job_id, []).append(task)
    return ClusterJobs("ray", {j: tuple(t) for j, t in tasks.items()}, dashboard_url())


def dashboard_url() -> str | None:
    """The Ray dashboard's address when it answers: the one this process's Ray driver was
    told of, or ``RAY_OVERRIDE_DASHBOARD_URL``; None when there is none or it is down."""
    url = os.environ.get(DASHBOARD_ENV, "").strip() or _driver_dashboard()
    if not url:
        return None
    if "://" not in url:
        url = "http://" + url
    return url if _answers(url) else None


def _driver_dashboard() -> str:
    try:
        import ray
    except ImportError:
        return ""
    if not ray.is_initialized():
        return ""
    # Ray keeps the dashboard's address on its node object (ray.init's address_info); a
    # driver started without a dashboard has none.
    from ray._private import worker as ray_worker

    node = getattr(ray_worker, "_global_node", None)
    return str(getattr(node, "webui_url", "") or "")


def _answers(url: str) -> bool:
    """A TCP connection to the dashboard's port within half a second (cached)."""
    now = time.monotonic()
    with _probe_lock:
        hit = _probed.get(url)
        if hit is not None and now - hit[0] < _PROBE_TTL_S:
            return hit[1]
    parts = urlparse(url)
    ok = False
    if parts.hostname:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        with contextlib.suppress(OSError), \
                socket.create_connection((parts.hostname, port), timeout=0.5):
            ok = True
    with _probe_lock:
        _probed[url] = (now, ok)
    return ok
