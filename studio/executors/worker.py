"""The render worker's entry: step 4 of one chunk (a shot), under a registry-signed decision.

A worker holds no database URL, no registry key and no passphrase (the head strips them from
the settings it sends); the only registry material it has is the registry's *public* key,
pinned in its environment (:data:`TRUSTED_KEY_ENV`, base64 of the raw Ed25519 key). It:

1. copies the input files (the head's staged copies, on shared storage) into a private
   folder of its own, hashing them in the same read, and checks the decision token against
   the pinned key, the job and chunk ids and those hashes (``consent.decision_token``): a
   forged, edited, expired or foreign token, or inputs changed in staging since the head
   hashed them, refuse the task (``DecisionTokenError``) before any pixel is read; the
   render reads only its private copies (the checked bytes);
2. builds what it may edit *from the token only*: the tracks, the edit guard's segments and
   verified runs, the watermark payload; and reads the shot's face meshes from staging
   once into memory, rendering them only if they give the token's digest of what the head
   tracked (``studio.render.meshes``: meshes moved or swapped in staging are refused);
3. renders (the whole shot, or the frame range its token names: ``studio.render.chunks``)
   into its own attempt folder under the job's staging folder (storage every node
   sees), reporting progress to ``progress.json`` and stopping when the head drops a
   ``cancel`` file there (or Ray interrupts it);
4. moves the finished attempt to ``done`` with one ``rename``: whichever attempt of a retried
   task finishes first wins, a later one discards its own work and returns the winner's.

Nothing here signs, ledgers or publishes: the head re-checks, stamps and publishes once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import pickle
import secrets
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consent.decision_token import verify_token
from consent.documents import RenderDecisionToken
from consent.errors import DecisionScopeError, DecisionTokenError, DocumentError
from consent.keys import PublicKey
from pipelines.edits import EditPermits, EditSegment
from pipelines.faces.analysis import ShotAnalysis
from pipelines.reenact import StillSource
from studio.errors import RenderWorkerError
from studio.identity import sha256_file
from studio.render.chunks import ChunkRender, render_range
from studio.render.meshes import pinned
from studio.render.pipeline_step import (
    PipelineResult,
    PipelineScope,
    PipelineWork,
    run_pipeline,
)
from studio.render.request import RenderRequest
from studio.render.staging import PRIVATE_PREFIX, stage_inputs
from studio.render.staging import sweep_private as sweep_private_inputs
from studio.settings import Settings

#: The worker's trust anchor: the registry's public key (base64, raw 32 bytes).
TRUSTED_KEY_ENV = "STUDIO_REGISTRY_PUBLIC_KEY"
#: How often the worker looks for the head's cancel file and writes its progress (seconds).
_POLL_S = 0.25
_SEAL_MIN_BYTES = 16


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of a render, as the head sends it."""

    job_id: str
    chunk_id: str
    token: bytes
    work: PipelineWork
    settings: Settings
    #: The frames (first, last) this task renders of a long shot; None: the whole shot.
    frames: tuple[int, int] | None = None
    #: A secret the head draws for this task (it travels with the task, never through
    #: staging): the attempt that finishes MACs its result with it, and a result in staging
    #: without that MAC (planted or edited there) is refused, never unpickled.
    seal: bytes = b""


@dataclass(frozen=True)
class ChunkResult:
    #: A whole shot's render, or one frame range's lossless frames (``frames`` was set).
    result: PipelineResult | ChunkRender
    audio_note: str
    attempt: str
    node: str
    pid: int
    #: False: another attempt of this task had finished first; its result is returned.
    won: bool
    #: A whole shot's files as the worker wrote them (``output``, ``sidecar``: SHA-256),
    #: sealed with the result: the head signs them only if staging still holds these bytes
    #: (:func:`check_files`). A chunk's frames carry their own digest instead.
    files: dict[str, str] = field(default_factory=dict)


def chunk_dir(staging_folder: Path, chunk_id: str) -> Path:
    return staging_folder / "chunks" / chunk_id


def input_hashes(request: RenderRequest) -> dict[str, str]:
    """SHA-256 of every input file of ``request``, by the decision's input names (what a
    token is drafted with; a worker hashes its inputs as it copies them, :func:`private_inputs`)."""
    return {n: sha256_file(p) for n, p in request.input_files().items()}


def private_inputs(work: PipelineWork, folder: Path) -> tuple[PipelineWork, dict[str, str]]:
    """``work`` reading its inputs from copies in ``folder`` (the worker's own), and the
    SHA-256 of the bytes copied: the token is checked against these, and the render reads
    nothing else, so a file changed in the shared staging folder after the check is never
    rendered. The analyses' videos (the shot, the driving performance) are those copies."""
    staged = stage_inputs(work.request.input_files(), folder)
    paths = {n: s.path for n, s in staged.items()}
    source = work.source
    if isinstance(source, ShotAnalysis):
        source = replace(source, source=paths["source"])
    elif isinstance(source, StillSource):
        source = replace(source, image=paths["source"])
    driver = work.driver_analysis
    if driver is not None and "driver" in paths:
        driver = replace(driver, source=paths["driver"])
    request = replace(work.request, **paths)  # type: ignore[arg-type]
    return (replace(work, request=request, source=source, driver_analysis=driver),
            {n: s.sha256 for n, s in staged.items()})


def trusted_registry_key() -> PublicKey:
    value = os.environ.get(TRUSTED_KEY_ENV, "").strip()
    if not value:
        raise DecisionTokenError(f"this worker has no registry key pinned ({TRUSTED_KEY_ENV}); "
                                 "it refuses all render work")
    try:
        return PublicKey.from_base64(value)
    except (DocumentError, ValueError) as exc:
        raise DecisionTokenError(f"{TRUSTED_KEY_ENV} is not a registry public key: {exc}"
                                 ) from None


def scope_from_token(token: RenderDecisionToken, work: PipelineWork) -> PipelineScope:
    """What the worker may edit: the signed segments and verified runs, nothing it was sent
    otherwise. A still's faces are numbered from 0, its labels from t1 (as the job does)."""
    if token.operation != work.request.operation:
        raise DecisionScopeError(f"the decision is for a {token.operation}, the work is a "
                                 f"{work.request.operation}")
    shift = 1 if isinstance(work.source, StillSource) else 0
    segments = tuple(EditSegment(int(s.track_id[1:]) - shift, s.first_frame, s.last_frame)
                     for s in token.segments)
    verified = {int(t.track_id[1:]): tuple((a, b) for a, b in t.runs) for t in token.traces}
    allowed: dict[str | None, str] = {s.track_id: s.performer_id for s in token.segments}
    return PipelineScope(allowed, EditPermits(segments, verified), token.watermark_payload)


def render_chunk(task: ChunkTask) -> ChunkResult:
    """The Ray task body (module docstring)."""
    key = trusted_registry_key()
    sweep_private_inputs()
    with tempfile.TemporaryDirectory(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-") as private:
        # Inputs changed in staging since the head hashed them differ from the token's:
        # refused here (DecisionScopeError), as a token for other inputs is.
        work, inputs = private_inputs(task.work, Path(private))
        token = verify_token(task.token, key, job_id=task.job_id, chunk_id=task.chunk_id,
                             inputs=inputs, frames=task.frames)
        return _render_checked(replace(task, work=work), token, Path(private))


def _render_checked(task: ChunkTask, token: RenderDecisionToken, private: Path
                    ) -> ChunkResult:
    """Steps 2-4 of the module docstring, on inputs already checked and copied."""
    scope = scope_from_token(token, task.work)
    if len(task.seal) < _SEAL_MIN_BYTES:
        raise DecisionScopeError(f"the task of {task.job_id}/{task.chunk_id} carries no result "
                                 "seal from the head")
    folder = chunk_dir(task.work.out_dir, task.chunk_id)
    if not task.work.out_dir.is_dir():
        # The head cleaned the job up (cancelled, crashed): there is nothing to render for.
        raise DecisionScopeError(f"job {task.job_id} has no staging folder any more")
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done"
    if done.is_dir():  # an earlier attempt finished; a retry only returns its result
        return _finished(done, task.seal, won=False)
    # Copied into the private folder as they are hashed, and checked against the signed
    # digest: the render maps those copies only, so a mesh file changed in staging, before
    # or after this, is never rendered (and memory stays flat in the shot's length).
    checked = pinned(task.work, {m.name: m.sha256 for m in token.meshes or ()},
                     into=private / "meshes")
    attempt = folder / f"attempt-{secrets.token_hex(4)}"
    attempt.mkdir()
    node, pid = socket.gethostname(), os.getpid()
    _write_json(attempt / "attempt.json", {"node": node, "pid": pid, "job_id": task.job_id,
                                           "chunk_id": task.chunk_id,
                                           "started": datetime.now(UTC).isoformat()})
    cancel_file, every = folder / "cancel", _Every(_POLL_S)
    seen_cancel = False

    def cancelled() -> bool:
        nonlocal seen_cancel
        if not seen_cancel and every.due("cancel"):
            seen_cancel = cancel_file.exists()
        return seen_cancel

    def progress(done_frames: int, total: int) -> None:
        if done_frames >= total or every.due("progress"):
            _write_json(folder / "progress.json", {"done": done_frames, "total": total,
                                                   "attempt": attempt.name})

    work = replace(checked, out_dir=attempt)
    try:
        result: PipelineResult | ChunkRender
        if task.frames is None:
            result, note = run_pipeline(work, scope, task.settings, progress=progress,
                                        cancelled=cancelled)
        else:  # a range of a long shot: lossless frames the head assembles and encodes
            result = render_range(work, scope, task.settings, task.frames, attempt,
                                  progress=progress, cancelled=cancelled)
            note = result.note
        raw = pickle.dumps((result, note, node, pid, _file_hashes(result)))
        (attempt / "result.pickle").write_bytes(raw)
        (attempt / "result.mac").write_text(_mac(task.seal, raw), encoding="ascii")
        try:
            os.rename(attempt, done)  # atomic: one attempt's output is the chunk's
        except OSError:
            if not done.is_dir():
                raise
            return _finished(done, task.seal, won=False)  # a twin attempt won the race
    finally:
        if attempt.exists():
            shutil.rmtree(attempt, ignore_errors=True)
    return _finished(done, task.seal, won=True)


class _Every:
    """True at most once per ``seconds`` for each name (polls of shared storage)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._last: dict[str, float] = {}

    def due(self, name: str) -> bool:
        now = time.monotonic()
        if now - self._last.get(name, -self.seconds) < self.seconds:
            return False
        self._last[name] = now
        return True


def _mac(seal: bytes, raw: bytes) -> str:
    return hmac.new(seal, raw, hashlib.sha256).hexdigest()


def _finished(done: Path, seal: bytes, *, won: bool) -> ChunkResult:
    try:
        raw = (done / "result.pickle").read_bytes()
        mac = (done / "result.mac").read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        mac, raw = "", b""
    if not mac or not hmac.compare_digest(mac, _mac(seal, raw)):
        # Staging is shared storage: a result there that this task's seal did not MAC was
        # planted or edited by someone else, and is neither trusted nor unpickled.
        raise DecisionScopeError(f"the finished result in {done} was not sealed by this "
                                 "task: refused (changed in staging?)")
    # MACed by an attempt of this very task: the pickle is its own.
    result, note, node, pid, files = pickle.loads(raw)  # noqa: S301
    moved = _rebase(result, done)
    return ChunkResult(moved, note, done.name, node, pid, won, files)


def _file_hashes(result: PipelineResult | ChunkRender) -> dict[str, str]:
    if isinstance(result, ChunkRender):
        return {}
    out = {"output": sha256_file(result.output)}
    if result.sidecar.exists():
        out["sidecar"] = sha256_file(result.sidecar)
    return out


def check_files(out: ChunkResult) -> None:
    """The head's check of a whole shot's files before it signs and publishes them: the
    bytes the worker wrote (``ChunkResult.files``), not a file swapped in shared staging
    since (``RenderWorkerError`` otherwise)."""
    result = out.result
    assert not isinstance(result, ChunkRender)
    paths = {"output": result.output, "sidecar": result.sidecar}
    for name, path in paths.items():
        sealed = out.files.get(name)
        if sealed is None and name == "sidecar" and not path.exists():
            continue
        if sealed is None or not path.is_file() or sha256_file(path) != sealed:
            raise RenderWorkerError(f"the render's {name} ({path.name}) is not the file its "
                                    "worker wrote (changed in staging?); nothing was "
                                    "published")


def _rebase(result: PipelineResult | ChunkRender, folder: Path
            ) -> PipelineResult | ChunkRender:
    """The result's files as they lie after the attempt folder became ``done``."""
    if isinstance(result, ChunkRender):
        return result.rebased(folder)
    return replace(result, output=folder / result.output.name,
                   sidecar=folder / result.sidecar.name)


def _write_json(path: Path, value: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(3)}")
    with contextlib.suppress(OSError):  # progress is best effort; the render is not
        tmp.write_text(json.dumps(value), encoding="utf-8")
        os.replace(tmp, path)
