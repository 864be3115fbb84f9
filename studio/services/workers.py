"""What the studio shows of its render cluster beside the jobs (``STUDIO_EXECUTOR=ray``).

The Jobs tab asks here, never the executors: the cluster's nodes with their CPUs and GPUs
(what ``studio workers`` shows, read through the studio's own Ray driver and kept a few
seconds, so that refreshing pages does not query Ray each time), per running job the render
tasks its workers are running (job, chunk, node, process, frames done: read from the attempts
the workers record in the shared staging folder), and a link to the Ray dashboard when one is
running and answers.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlparse

from studio.executors.cluster import NodeView, TaskView, read_nodes, running_render_tasks
from studio.settings import Settings

#: Ray's own variable for a dashboard behind a proxy; the URL the Jobs tab links to then.
DASHBOARD_ENV = "RAY_OVERRIDE_DASHBOARD_URL"
#: How long a dashboard probe is trusted (the Jobs tab refreshes every few seconds).
_PROBE_TTL_S = 30.0
_probe_lock = threading.Lock()
_probed: dict[str, tuple[float, bool]] = {}
#: How long the cluster's nodes and resources are kept (a node joins or leaves rarely; free
#: CPUs lag by this much at most).
_NODES_TTL_S = 5.0
_nodes_lock = threading.Lock()
_nodes_seen: tuple[float, Nodes] | None = None


@dataclass(frozen=True)
class Nodes:
    """The cluster's nodes and its resources (``studio workers`` shows the same)."""

    nodes: tuple[NodeView, ...] = ()
    cpus: float = 0.0
    gpus: float = 0.0
    free_cpus: float = 0.0
    free_gpus: float = 0.0
    #: Why the nodes are not known (no Ray driver in this process, the cluster does not
    #: answer); None when they are.
    problem: str | None = None

    @property
    def alive(self) -> int:
        return sum(n.alive for n in self.nodes)


@dataclass(frozen=True)
class ClusterJobs:
    """The cluster side of the Jobs tab."""

    executor: str
    #: job id → its render tasks running now (one per chunk of a long shot).
    tasks: dict[str, tuple[TaskView, ...]]
    #: The Ray dashboard, when one is running; None otherwise.
    dashboard_url: str | None
    #: The cluster's nodes; none with the local executor.
    nodes: Nodes = field(default_factory=Nodes)


def cluster_jobs(settings: Settings, job_ids: Iterable[str]) -> ClusterJobs:
    """The cluster's nodes, the render tasks of ``job_ids`` and the dashboard link; empty
    with the local executor (renders run in the studio's own process)."""
    if settings.executor != "ray":
        return ClusterJobs(settings.executor, {}, None)
    wanted = set(job_ids)
    tasks: dict[str, list[TaskView]] = {}
    for task in running_render_tasks(settings):
        if task.job_id in wanted:
            tasks.setdefault(task.job_id, []).append(task)
    return ClusterJobs("ray", {j: tuple(t) for j, t in tasks.items()}, dashboard_url(),
                       cluster_nodes())


def cluster_nodes() -> Nodes:
    """The nodes of the cluster this process's Ray driver is connected to (the studio's
    ``RayExecutor`` connects at start), kept ``_NODES_TTL_S``; a ``problem`` instead of an
    error when there is no driver or the cluster does not answer."""
    global _nodes_seen
    now = time.monotonic()
    with _nodes_lock:
        if _nodes_seen is not None and now - _nodes_seen[0] < _NODES_TTL_S:
            return _nodes_seen[1]
        nodes = _read_nodes()
        # A problem is asked about again at the next refresh (the cluster may be back).
        _nodes_seen = None if nodes.problem else (now, nodes)
        return nodes


def _read_nodes() -> Nodes:
    try:
        import ray
    except ImportError:
        return Nodes(problem="Ray is not installed (the studio's [ray] extra)")
    if not ray.is_initialized():
        return Nodes(problem="this studio process is not connected to a Ray cluster")
    try:
        nodes, totals = read_nodes()
    except Exception as exc:  # the cluster went away under the driver
        return Nodes(problem=f"the Ray cluster does not answer ({type(exc).__name__}: {exc})")
    return Nodes(nodes, totals["cpus"], totals["gpus"], totals["free_cpus"],
                 totals["free_gpus"])


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
