"""``studio workers``: the Ray cluster the studio renders on (``STUDIO_EXECUTOR=ray``)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from studio.cli.common import EXIT_REJECTED, JsonOpt, _emit, _fail, _settings, out
from studio.errors import RenderWorkerError


def workers(
    address: Annotated[str | None, typer.Option(
        "--address", help="The cluster's address (default: $RAY_ADDRESS, else the cluster "
        "this machine belongs to).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the render cluster: nodes, CPUs and GPUs (total, free), running render tasks."""
    from dataclasses import replace

    from studio.executors.cluster import ClusterView, cluster_view

    settings = _settings()
    if address:
        settings = replace(settings, ray_address=address)
    try:
        view = cluster_view(settings)
    except RenderWorkerError as exc:
        _fail(EXIT_REJECTED, exc.message, as_json, exc.code)

    def human(v: ClusterView = view) -> None:
        t = v.totals
        out.print(f"cluster {v.address}: {len(v.nodes)} node(s), CPUs {t['free_cpus']:g} free "
                  f"of {t['cpus']:g}, GPUs {t['free_gpus']:g} free of {t['gpus']:g}",
                  highlight=False)
        nodes = Table("node", "address", "alive", "CPUs", "GPUs", "memory (GiB)")
        for n in v.nodes:
            nodes.add_row(n.node_id, n.address, "yes" if n.alive else "no", f"{n.cpus:g}",
                          f"{n.gpus:g}", f"{n.memory_gb:g}")
        out.print(nodes)
        if not v.tasks:
            out.print("no render task running", highlight=False)
        else:
            tasks = Table("job", "chunk", "node", "pid", "frames", "started")
            for task in v.tasks:
                frames = "" if task.done is None else f"{task.done}/{task.total}"
                tasks.add_row(task.job_id, task.chunk_id, task.node, str(task.pid), frames,
                              task.started)
            out.print(tasks)
        if v.ray_running is not None:
            out.print(f"Ray reports {v.ray_running} running task(s) of every kind",
                      highlight=False)

    _emit(as_json, {"ok": True, **view.to_json()}, human)
