"""What ``studio workers`` shows: the Ray cluster's nodes, their CPUs and GPUs (total and free),
and the render tasks running on it.

Running render tasks come from the studio's own record, the attempts its workers write in the
shared staging folder (job, chunk, node, process, frames done), so they show without Ray's
dashboard; when the dashboard's state API answers, Ray's count of running tasks is added.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from studio.errors import RenderWorkerError
from studio.render.staging import staging_root
from studio.settings import Settings


@dataclass(frozen=True)
class NodeView:
    node_id: str
    address: str
    alive: bool
    cpus: float
    gpus: float
    memory_gb: float


@dataclass(frozen=True)
class TaskView:
    job_id: str
    chunk_id: str
    node: str
    pid: int
    started: str
    done: int | None
    total: int | None


@dataclass(frozen=True)
class ClusterView:
    address: str
    nodes: tuple[NodeView, ...]
    tasks: tuple[TaskView, ...]
    #: Ray's own count of running tasks (every kind), None without its state API.
    ray_running: int | None = None
    totals: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"address": self.address, "totals": self.totals,
                "nodes": [asdict(n) for n in self.nodes],
                "render_tasks": [asdict(t) for t in self.tasks],
                "ray_running_tasks": self.ray_running}


def cluster_view(settings: Settings) -> ClusterView:
    """Connect to the cluster at ``settings.ray_address`` (``auto`` when unset: the cluster
    this machine belongs to) and describe it; RenderWorkerError when there is none."""
    try:
        import ray
    except ImportError:
        raise RenderWorkerError("Ray is not installed: install the studio's [ray] extra "
                                "(pip install -e '.[ray]')") from None
    address = settings.ray_address or "auto"
    owns = not ray.is_initialized()
    if owns:
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise RenderWorkerError(f"no Ray cluster at {address}: {exc}") from None
    try:
        nodes, totals = read_nodes()
        view = ClusterView(address, nodes, tuple(running_render_tasks(settings)),
                           _ray_running(), totals)
    finally:
        if owns:
            ray.shutdown()
    return view


def read_nodes() -> tuple[tuple[NodeView, ...], dict[str, float]]:
    """The nodes of the cluster this process's Ray driver is connected to, and its totals
    (``cpus``, ``gpus``, ``free_cpus``, ``free_gpus``): what ``studio workers`` and the Jobs
    tab's panel show. What is free is known cluster-wide, not per node."""
    import ray

    listed = ray.nodes()  # type: ignore[no-untyped-call]
    total = ray.cluster_resources()  # type: ignore[no-untyped-call]
    free = ray.available_resources()  # type: ignore[no-untyped-call]
    nodes = []
    for node in listed:
        res = node.get("Resources", {})
        nodes.append(NodeView(str(node.get("NodeID", ""))[:12],
                              str(node.get("NodeManagerAddress", "")), bool(node.get("Alive")),
                              float(res.get("CPU", 0.0)), float(res.get("GPU", 0.0)),
                              round(float(res.get("memory", 0.0)) / 2**30, 1)))
    totals = {"cpus": float(total.get("CPU", 0.0)), "gpus": float(total.get("GPU", 0.0)),
              "free_cpus": float(free.get("CPU", 0.0)), "free_gpus": float(free.get("GPU", 0.0))}
    return tuple(nodes), totals


def running_render_tasks(settings: Settings) -> list[TaskView]:
    """Attempts in progress under the shared staging folder (``studio.executors.worker``)."""
    jobs = staging_root(settings) / "jobs"
    out: list[TaskView] = []
    for attempt_file in sorted(jobs.glob("*/chunks/*/attempt-*/attempt.json")):
        chunk = attempt_file.parent.parent
        info = _read(attempt_file)
        progress = _read(chunk / "progress.json")
        if progress.get("attempt") not in (None, attempt_file.parent.name):
            progress = {}  # an abandoned attempt (its worker died): no frames of its own
        out.append(TaskView(str(info.get("job_id", chunk.parent.parent.name)),
                            str(info.get("chunk_id", chunk.name)), str(info.get("node", "")),
                            int(info.get("pid", 0)), str(info.get("started", "")),
                            progress.get("done"), progress.get("total")))
    return out


def _read(path: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        value = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(value, dict):
            return value
    return {}


def _ray_running() -> int | None:
    try:
        from ray.util.state import list_tasks

        return len(list_tasks(filters=[("state", "=", "RUNNING")], timeout=5))
    except Exception:  # no dashboard on this cluster (or an older Ray): the count is unknown
        return None
