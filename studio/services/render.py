"""A lip-sync or reenactment render, from request to publication, and its cancellation.

:class:`RenderRun` wraps :class:`studio.render.job.RenderJob` (the seven steps) for every
front end: the CLI runs it in the foreground, the job pool (:mod:`studio.jobs`) in a worker.
It turns what the render refuses into the studio's error family: a shot with no consented
face becomes a refusal of record (:mod:`studio.services.refusals`, ledgered), and the plain
``ValueError`` of a pipeline's input check (audio too short to measure, a dub running past the
M&E) a :class:`~studio.errors.InputRejectedError`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from studio.errors import (
    InputRejectedError,
    NoConsentedFaceError,
    RenderWorkerError,
    StudioError,
    UsageError,
)
from studio.render.request import RenderRequest
from studio.services.context import AppContext
from studio.services.refusals import refuse_unconsented_shot

if TYPE_CHECKING:
    from studio.executors import Executor
    from studio.render.events import Listener
    from studio.render.job import RenderJob, RenderOutcome

__all__ = ["RenderRequest", "RenderRun", "start_render"]


@dataclass
class RenderRun:
    """One render, ready to run (in any thread); :meth:`cancel` from any other."""

    ctx: AppContext
    request: RenderRequest
    job: RenderJob
    #: The executor this run opened for itself (``start_render(executor=…)``), released
    #: when it ends; None: step 4 runs here, or the caller's executor prepared the job.
    executor: Executor | None = None

    @property
    def job_id(self) -> str:
        return self.job.job_id

    def cancel(self) -> None:
        """Stop at the next frame or step; nothing is published."""
        self.job.cancel.set()

    @property
    def cancelled(self) -> bool:
        return self.job.cancel.is_set()

    def run(self) -> RenderOutcome:
        """Run the render; raises :class:`~studio.errors.RenderDenied` (the gate said no),
        :class:`~studio.errors.RenderCancelled`, :class:`~studio.errors.ConsentRefused` (no
        consented face, ledgered) or another error of the three families."""
        from pydantic import ValidationError

        from consent.errors import ConsentError
        from pipelines.errors import PipelineError

        try:
            return self.job.run()
        except NoConsentedFaceError as exc:
            raise self._refusal(exc) from None
        except (StudioError, ConsentError, PipelineError, ValidationError):
            raise
        except ValueError as exc:
            raise InputRejectedError(str(exc)) from exc
        finally:
            if self.executor is not None:
                self.executor.close()

    def _refusal(self, exc: NoConsentedFaceError) -> StudioError:
        req = self.request
        # The hash of the bytes the job identified (step 1), not the operator's file read
        # again: it may have changed since.
        return refuse_unconsented_shot(
            self.ctx, exc, operation=req.operation, project_id=req.project_id,
            language=req.language, territory=req.territory, channel=req.channel,
            operator=req.operator, source_sha256=self.job.inputs["source"],
            commercial=req.commercial, episode=req.episode, scene=req.scene)


def start_render(ctx: AppContext, request: RenderRequest, *, listener: Listener | None = None,
                 job_id: str | None = None, executor: str | None = None) -> RenderRun:
    """A render of ``request`` with a job id and folder-to-be; nothing runs until
    :meth:`RenderRun.run`. The render stack loads here, not at import.

    ``executor``: where step 4 runs, ``local`` or ``ray`` (``studio.executors``; the run
    opens it and releases it when it ends). None: in this process, unless the caller
    prepares the job with an executor of its own (the job pool does)."""
    from studio.render.job import RenderJob, new_job_id

    job = RenderJob(request, ctx.settings, ctx.registry, listener=listener,
                    job_id=job_id or new_job_id())
    opened = None
    if executor is not None:
        opened = open_executor(ctx, executor)
        opened.prepare(job)
    return RenderRun(ctx, request, job, opened)


def open_executor(ctx: AppContext, name: str) -> Executor:
    """The executor ``name`` (``local`` or ``ray``) for this data folder's settings (the
    cluster at ``RAY_ADDRESS``, or a local Ray instance); a UsageError for another name."""
    from dataclasses import replace

    from studio.executors import executor_for

    if name not in ("local", "ray"):
        raise UsageError(f"executor {name!r}: choose 'local' or 'ray'")
    try:
        return executor_for(replace(ctx.settings, executor=name), ctx.registry)
    except ImportError:
        raise RenderWorkerError("Ray is not installed: install the studio's [ray] extra "
                                "(pip install -e '.[ray]')") from None
