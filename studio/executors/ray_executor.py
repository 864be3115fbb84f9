"""Step 4 of each render as a Ray task; consent, the ledger and publication stay on the head.

For each job the head (the studio process, the only one with a database connection):

1. runs steps 1-3 as for a local render (ingest, identify, the gate's ledgered decision);
2. has the registry sign a decision token for the shot (``consent.decision_token``: job and
   chunk id, input hashes, decision leaf and hash, segments, verified runs, watermark
   payload, the digest of the face meshes tracked in step 2, expiry) and submits
   :func:`studio.executors.worker.render_chunk` with resource requests (``num_cpus``,
   ``num_gpus`` for a neural backend, ``memory``) and
   ``max_retries``: Ray runs the task again, on any node, when its worker process or node
   dies; an application error (a refused token, bad media) is not retried;
3. follows the task (progress from the shared staging folder), cancels it when the job is
   cancelled (a ``cancel`` file the worker polls, then Ray's cancel, then a forced one);
4. takes the one finished attempt (``chunks/<chunk>/done``, renamed into place by the
   worker: a retried task never yields two outputs) and runs steps 5-7 as always: the
   re-check against the registry, the C2PA manifest, and one ``publish_output`` under the
   ledger's lock. Only the head publishes, once per job, whatever the task's retries.

A head that stops (crash, restart) takes its Ray job with it: Ray ends the tasks of a driver
that is gone, the studio's next start marks the jobs interrupted and cleans their staging
(``JobManager._recover``); a late worker finds no staging folder and refuses.

The workers' settings carry no database URL and no key passphrase; they learn the
registry's public key from the job's runtime environment (``STUDIO_REGISTRY_PUBLIC_KEY``,
set here at ``ray.init``), or from their own environment when the head did not set it.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from consent.decision_token import DEFAULT_VALIDITY, token_draft
from consent.gate import Decision
from consent.registry import Registry
from studio.errors import RenderCancelled, RenderWorkerError
from studio.executors.worker import (
    TRUSTED_KEY_ENV,
    ChunkResult,
    ChunkTask,
    check_files,
    chunk_dir,
    render_chunk,
)
from studio.render import chunks
from studio.render.chunks import FrameRange
from studio.render.events import Stage
from studio.render.meshes import mesh_digests, unpinned
from studio.render.pipeline_step import PipelineResult, PipelineScope, PipelineWork
from studio.settings import Settings

if TYPE_CHECKING:
    from studio.render.job import RenderJob

log = logging.getLogger(__name__)

#: The chunk id of a shot rendered whole by one task (a long shot is split into frame ranges
#: instead, ``studio.render.chunks``: ``settings.ray_chunk_frames``).
SHOT_CHUNK = "shot"
#: How long a cancelled task may take to notice before it is killed (seconds).
CANCEL_GRACE_S = 10.0
_POLL_S = 0.25


class RayExecutor:
    """See the module docstring. One per studio process; thread-safe."""

    name = "ray"

    def __init__(self, settings: Settings, registry: Registry, *,
                 init: dict[str, Any] | None = None,
                 validity: timedelta = DEFAULT_VALIDITY) -> None:
        import ray

        self._ray = ray
        self.settings = settings
        self.validity = validity
        self._owns = False
        if not ray.is_initialized():
            env = {TRUSTED_KEY_ENV: registry.public_key.to_base64()}
            options: dict[str, Any] = {"address": settings.ray_address,
                                       "runtime_env": {"env_vars": env},
                                       "include_dashboard": False, "log_to_driver": False,
                                       "configure_logging": False}
            options.update(init or {})
            try:
                ray.init(**options)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                where = settings.ray_address or "a local Ray instance"
                raise RenderWorkerError(f"cannot start or reach {where}: {exc}") from None
            self._owns = True
        self._task = ray.remote(render_chunk)
        self._lock = threading.Lock()
        #: job id → the Ray task rendering it (``studio workers``, cancel).
        self.running: dict[str, Any] = {}

    def prepare(self, job: RenderJob) -> None:
        job.remote = self._run_remote

    def close(self) -> None:
        if self._owns and self._ray.is_initialized():
            self._ray.shutdown()
        self._owns = False

    # -- one job's step 4 ----------------------------------------------------------------------

    def _run_remote(self, job: RenderJob, work: PipelineWork, scope: PipelineScope,
                    decision: Decision, inputs: dict[str, str]) -> tuple[PipelineResult, str]:
        ray = self._ray
        # A long shot (lip-sync, or the embedded backend's reenactment) is split into frame
        # ranges, one task each (studio.render.chunks); everything else is one task.
        ranges = chunks.plan(work, job.settings)
        specs: list[tuple[str, FrameRange | None]] = \
            [(SHOT_CHUNK, None)] if ranges is None else [(chunks.chunk_id(r), r) for r in ranges]
        started = time.monotonic()
        refs = {cid: self._submit(job, work, scope, decision, inputs, cid, frames)
                for cid, frames in specs}
        folders = [chunk_dir(work.out_dir, cid) for cid in refs]
        with self._lock:
            self.running[job.job_id] = list(refs.values())
        outs: dict[str, ChunkResult] = {}
        try:
            pending = list(refs.values())
            by_ref = {ref: cid for cid, ref in refs.items()}
            while pending:
                ready, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
                for ref in ready:
                    try:
                        outs[by_ref[ref]] = self._result(ref, job.job_id)
                    except BaseException:
                        self._cancel(pending, folders)  # one chunk failed: the render has
                        raise
                if not pending:
                    break
                _report(job, folders, work.frame_total)
                if job.cancel.is_set():
                    self._cancel(pending, folders)
                    raise RenderCancelled(f"render {job.job_id} cancelled; nothing was "
                                          "published")
        finally:
            with self._lock:
                self.running.pop(job.job_id, None)
        for cid, out in outs.items():
            attempts = sorted(p.name for p in chunk_dir(work.out_dir, cid).glob("attempt-*"))
            job._note(Stage.RUN, "rendered by a worker", chunk=cid, node=out.node, pid=out.pid,
                      attempt=out.attempt, abandoned_attempts=attempts,
                      first_to_finish=out.won, pipeline_s=round(out.result.seconds, 3))
        if ranges is None:
            out = outs[SHOT_CHUNK]
            assert not isinstance(out.result, chunks.ChunkRender)
            check_files(out)  # staging is shared: sign only the bytes the worker wrote
            return out.result, out.audio_note
        parts = [outs[cid].result for cid, _ in specs]
        assert all(isinstance(p, chunks.ChunkRender) for p in parts)
        # The head encodes the frames once, in order: the file a single task would write.
        result, note = chunks.assemble(work, scope, job.settings,
                                       [p for p in parts if isinstance(p, chunks.ChunkRender)],
                                       seconds=time.monotonic() - started,
                                       cancelled=job.cancel.is_set)
        job._note(Stage.RUN, "assembled the chunks of a long shot", chunks=len(parts),
                  frames=result.frame_count)
        return result, note

    def _submit(self, job: RenderJob, work: PipelineWork, scope: PipelineScope,
                decision: Decision, inputs: dict[str, str], cid: str,
                frames: FrameRange | None) -> Any:
        """One task: its own decision token (bound to its chunk id and, for a range of a
        long shot, to its frames), with the settings' resource requests."""
        settings = job.settings
        draft = token_draft(decision, job_id=job.job_id, chunk_id=cid, inputs=inputs,
                            traces={f"t{k}": v for k, v in scope.permits.verified.items()},
                            watermark_payload=scope.payload, issued_at=datetime.now(UTC),
                            validity=self.validity, frames=frames,
                            meshes=mesh_digests(work))
        token = job.registry.issue_decision_token(draft)
        job._note(Stage.RUN, "decision token issued to the render workers",
                  chunk=cid, frames=frames, token_sha256=token.sha256,
                  expires_at=draft["expires_at"])
        # Workers get no database and no passphrase: the registry is the head's alone.
        # The meshes stay in staging (not megabytes per task): the worker reads them and
        # checks them against the token's digest of what was tracked.
        task = ChunkTask(job.job_id, cid, token.to_bytes(), unpinned(work),
                         replace(settings, database_url="", registry_passphrase=None), frames,
                         seal=secrets.token_bytes(32))
        neural = job._choice.neural
        return self._task.options(
            num_cpus=settings.ray_task_cpus,
            num_gpus=settings.ray_task_gpus if neural else 0,
            memory=settings.ray_task_memory_mb * 1024 * 1024,
            max_retries=settings.ray_max_retries, retry_exceptions=False,
            name=f"render:{job.job_id}:{cid}").remote(task)

    def _result(self, ref: Any, job_id: str) -> ChunkResult:
        ray = self._ray
        try:
            out = ray.get(ref)
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause
            if isinstance(cause, Exception):  # the worker's own error, as it raised it
                raise cause from None
            raise RenderWorkerError(f"render task of {job_id} failed: {exc}") from None
        except ray.exceptions.RayError as exc:  # worker or node lost past its retries
            raise RenderWorkerError(f"the render task of {job_id} was lost: "
                                    f"{type(exc).__name__}: {exc}") from None
        if not isinstance(out, ChunkResult):
            raise RenderWorkerError(f"the render task of {job_id} returned {type(out)!r}")
        return out

    def _cancel(self, refs: list[Any], folders: list[Path]) -> None:
        """Stop the tasks: the cancel file (seen within a frame or two), Ray's cancel (an
        interrupt in the worker), and past the grace period a forced cancel (kills them)."""
        ray = self._ray
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "cancel").touch()
        for ref in refs:
            ray.cancel(ref)
        deadline = time.monotonic() + CANCEL_GRACE_S
        pending = list(refs)
        while pending and time.monotonic() < deadline:
            _, pending = ray.wait(pending, num_returns=len(pending), timeout=_POLL_S)
        for ref in pending:
            ray.cancel(ref, force=True)


def _report(job: RenderJob, folders: list[Path], frames: int) -> None:
    """The frames done over every chunk of the job (each worker's ``progress.json``), of
    the ``frames`` of the whole render (chunks not started yet count as not done)."""
    done = 0
    for folder in folders:
        try:
            state = json.loads((folder / "progress.json").read_text(encoding="utf-8"))
            done += int(state["done"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not started yet, or being replaced: the next poll reads it
    job.progress.frames(min(done, frames), frames)
