"""Where step 4 of a render runs: in the studio's own process, or on a Ray cluster.

``STUDIO_EXECUTOR=local`` (the default) renders in the job's thread, as always, and needs no
Ray. ``STUDIO_EXECUTOR=ray`` (with ``RAY_ADDRESS``, or a local Ray instance when unset) sends
each shot's pipeline to the cluster as a task with resource requests
(:mod:`studio.executors.ray_executor`); everything that touches consent stays on the head,
in the studio process: the registry (the only database), the gate's decisions, the decision
tokens the registry signs for the workers, the re-check, the C2PA manifest, the ledger and the
one publication (docs: bench/README.md, "Render workers on Ray").

The job layer's one hook: :meth:`Executor.prepare` is given each :class:`RenderJob` before it
runs, and may hand its step 4 elsewhere (``RenderJob.remote``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from consent.registry import Registry
    from studio.render.job import RenderJob
    from studio.settings import Settings


class Executor(Protocol):
    name: str

    def prepare(self, job: RenderJob) -> None:
        """Set ``job`` up to run its pipeline here or elsewhere."""

    def close(self) -> None:
        """Release the cluster connection (the studio stops)."""


class LocalExecutor:
    """Step 4 in the job's own thread (the default)."""

    name = "local"

    def prepare(self, job: RenderJob) -> None:
        job.remote = None

    def close(self) -> None:
        return None


def executor_for(settings: Settings, registry: Registry) -> Executor:
    """The executor ``settings.executor`` names; Ray is imported only for ``ray``."""
    if settings.executor == "ray":
        from studio.executors.ray_executor import RayExecutor

        return RayExecutor(settings, registry)
    return LocalExecutor()
