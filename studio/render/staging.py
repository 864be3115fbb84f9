"""Where a render keeps its media until it publishes, and what is left of it afterwards: nothing.

Layout, under ``<data>/staging/`` (never shown to a user, never in a job's folder)::

  jobs/<job id>/lock          held (``flock``) by the live render: a free lock means it died
  jobs/<job id>/state.json    output name, watermark payload, signed output's hash, as known
  jobs/<job id>/inputs/<name>/<file>  the request's inputs, copied as they were hashed (step 1)
  jobs/<job id>/work/ …       landmarks, render.mp4, the sidecar, signed.mp4
  names/<output name>         the output name, reserved by one job (holds its id)

A render reserves its output name before any work (``O_EXCL``: a second render with the same
name is refused at once), and checks ``outputs/`` only after reserving, so a name taken while
it waited is seen. :func:`cleanup` runs when a render ends however it ends, and :func:`sweep`
runs it for every job whose lock is free (a crash: ``kill -9`` releases the lock) when a
render or the studio starts. Cleaning a job that did not publish removes what it linked into
``outputs/`` (only a crash between the link and the ledger's commit leaves such a file, see
``studio.render.job``), releases its watermark payload in the manifest store, frees its name
and deletes its media. Whether it published is read from the ledger, never from the job.

:func:`stage_inputs` is step 1 of a render: each input is read once, hashed and written into
the job's ``inputs`` folder in the same pass, and the render reads only that copy afterwards.
The operator's paths may be a shared ingest or watch folder: a file changed there after it
was hashed is never what the render identifies, edits or names in its manifest. A render
worker does the same into a private folder of its own (``studio.executors.worker``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from consent.ledger import EventType, Ledger
from consent.registry import Registry
from pipelines.hashing import CHUNK
from studio.errors import InputNotFoundError, OutputExistsError
from studio.provenance.store import ManifestStore
from studio.settings import Settings

#: Files an old render (before staging existed) left in its job folder.
_JOB_MEDIA = ("work", "render.mp4", "signed.mp4", "render.visemes.json", "render.reenact.json")
#: What a render publishes beside its output (``<output><suffix>``), by operation.
SIDECAR_SUFFIXES = (".visemes.json", ".reenact.json")
#: A folder being created (before its lock is taken) is left alone for this long.
_NEW_GRACE_S = 3600.0


@dataclass(frozen=True)
class StagedInput:
    """One input as a render reads it: its private copy and the SHA-256 of those bytes."""

    path: Path
    sha256: str


def stage_inputs(inputs: Mapping[str, Path], folder: Path) -> dict[str, StagedInput]:
    """Copy each input (name → path) to ``folder/<name>/<its file name>``, hashing the very
    bytes written in one streamed read (memory flat: one :data:`CHUNK` at a time). The file
    name is kept, so names derived from it (a QC report's, the sidecar's) stay as they were.
    A path that is missing, unreadable or not a regular file (a FIFO would block the render
    forever) is an ``InputNotFoundError``; the copies are read-only, in a folder no user is
    given."""
    staged = {}
    for name, path in inputs.items():
        target = folder / name / Path(path).name
        target.parent.mkdir(parents=True, exist_ok=False)
        staged[name] = StagedInput(target, _copy_hashed(name, Path(path), target))
    return staged


def _copy_hashed(name: str, path: Path, target: Path) -> str:
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer (refused below).
        src = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputNotFoundError(f"{name}: {path} is not a readable file ({exc.strerror})"
                                 ) from None
    try:
        if not stat.S_ISREG(os.fstat(src).st_mode):
            raise InputNotFoundError(f"{name}: {path} is not a regular file")
        digest = hashlib.sha256()
        buffer = bytearray(CHUNK)
        view = memoryview(buffer)
        dst = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o400)
        try:
            while True:
                try:
                    n = os.readv(src, [buffer])
                except OSError as exc:  # EISDIR, EIO: unreadable now
                    raise InputNotFoundError(f"{name}: {path} could not be read "
                                             f"({exc.strerror})") from None
                if n == 0:
                    break
                digest.update(view[:n])
                written = 0
                while written < n:
                    written += os.write(dst, view[written:n])
        finally:
            os.close(dst)
    finally:
        os.close(src)
    return digest.hexdigest()


#: A process's private copies (a worker's inputs, a render's checked face meshes):
#: ``<prefix><pid>-<random>`` in the node's temporary folder, removed when the process is
#: done with them, or by :func:`sweep_private` once the process is gone.
PRIVATE_PREFIX = "studio-inputs-"


def private_folder() -> Path:
    """A new private folder (mode 0700) of this process (:data:`PRIVATE_PREFIX`); the caller
    removes it."""
    return Path(tempfile.mkdtemp(prefix=f"{PRIVATE_PREFIX}{os.getpid()}-"))


def sweep_private(root: Path | None = None) -> list[Path]:
    """Remove the private folders of processes that no longer run, and return them. A
    process killed mid-task (SIGKILL, OOM) never runs its clean-up, and its copies of the
    shot, the dub and the meshes would stay on the node for good; the next task or render
    on the node sweeps them. A folder whose process still runs (or whose pid was reused)
    is kept."""
    base = Path(root if root is not None else tempfile.gettempdir())
    removed = []
    for folder in base.glob(f"{PRIVATE_PREFIX}*-*"):
        pid_text = folder.name[len(PRIVATE_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or not folder.is_dir() or folder.is_symlink():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
        except PermissionError:  # another user's live process
            continue
    return removed


def staging_root(settings: Settings) -> Path:
    return settings.data_dir / "staging"


@dataclass
class Staging:
    """One live render's staging folder, its lock, and its reserved output name."""

    settings: Settings
    job_id: str
    folder: Path
    _lock: int
    state: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings, job_id: str) -> Staging:
        """Create the folder with its lock already held (made under a dot name, then renamed,
        so a sweeper never sees the folder without a held lock)."""
        jobs = staging_root(settings) / "jobs"
        jobs.mkdir(parents=True, exist_ok=True)
        (staging_root(settings) / "names").mkdir(exist_ok=True)
        new = jobs / f".new-{job_id}"
        new.mkdir()
        fd = os.open(new / "lock", os.O_CREAT | os.O_WRONLY, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        folder = jobs / job_id
        os.rename(new, folder)
        staging = cls(settings, job_id, folder, fd, {"job_id": job_id})
        staging.record()
        return staging

    def record(self, **values: Any) -> None:
        """Add to ``state.json`` (atomically) what a cleanup needs to know."""
        self.state.update(values)
        tmp = self.folder / "state.json.part"
        tmp.write_text(json.dumps(self.state), encoding="utf-8")
        os.replace(tmp, self.folder / "state.json")

    def reserve(self, name: str, registry: Registry) -> None:
        """Reserve ``name`` in the outputs folder for this job, or refuse (OutputExistsError)."""
        names = staging_root(self.settings) / "names"
        # Written whole, then linked into place: the link is atomic and never replaces, so a
        # reservation is never seen half-written and two jobs cannot both hold a name.
        ticket = self.folder / "reservation"
        ticket.write_text(self.job_id, encoding="utf-8")
        for attempt in range(2):
            try:
                os.link(ticket, names / name)
            except FileExistsError:
                owner = _read(names / name)
                if attempt == 0 and owner and cleanup(self.settings, registry, owner):
                    if _read(names / name) == owner:
                        (names / name).unlink(missing_ok=True)
                    continue  # the owner had died: its name is free again
                raise OutputExistsError(f"an output named {name} is being rendered by "
                                   f"{owner or 'another job'}; choose another name") from None
            self.record(name=name)
            break
        # The output and the sidecar that goes with it: a sidecar left behind (its video
        # withdrawn by hand) would otherwise refuse the publication only after all the work.
        for taken in (name, *(name + kind for kind in SIDECAR_SUFFIXES)):
            if (self.settings.outputs_dir / taken).exists():
                (names / name).unlink(missing_ok=True)
                self.record(name=None)
                raise OutputExistsError(f"an output named {taken} already exists; choose another "
                                   "name")

    def close(self, registry: Registry) -> None:
        """Release the lock and clean the job up (it published or it did not)."""
        fd, self._lock = self._lock, -1
        if fd >= 0:
            os.close(fd)
        cleanup(self.settings, registry, self.job_id)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _published(registry: Registry, sha256: str | None) -> bool:
    if not sha256:
        return False
    with registry.store.session() as s:
        return bool(Ledger.entries_referencing(s, "output", sha256, EventType.OUTPUT_PUBLISHED))


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def cleanup(settings: Settings, registry: Registry, job_id: str) -> bool:
    """Clean up job ``job_id`` unless it is still running; True when it was cleaned (or had
    nothing left). See the module docstring for what cleaning means."""
    root = staging_root(settings)
    folder = root / "jobs" / job_id
    if "/" in job_id or job_id.startswith("."):
        return False
    if folder.is_dir():
        try:
            fd = os.open(folder / "lock", os.O_CREAT | os.O_WRONLY, 0o600)
        except OSError:
            return False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # alive
            try:
                state = json.loads(_read(folder / "state.json") or "{}")
            except ValueError:
                state = {}
            _clean(settings, registry, job_id, folder, state)
        finally:
            os.close(fd)
    _clean_job_media(settings, job_id)
    return True


def _clean(settings: Settings, registry: Registry, job_id: str, folder: Path,
           state: dict[str, Any]) -> None:
    sha256 = state.get("sha256")
    published = _published(registry, sha256)
    name = state.get("name")
    names = staging_root(settings) / "names"
    if name and _read(names / name) == job_id:
        if not published:
            # Only a crash between the link and the ledger's commit leaves these: remove what
            # this job linked (the same inode as its staged file), nothing else.
            for public, staged in state.get("links", []):
                public_path = settings.outputs_dir / public
                if _same_file(public_path, folder / staged):
                    public_path.unlink()
        (names / name).unlink(missing_ok=True)
    payload = state.get("payload")
    if payload is not None and not published:
        ManifestStore(settings.manifests_dir).release_payload(
            int(payload), sha256=sha256,
            reason=f"render {job_id} published nothing ({state.get('ended', 'interrupted')})")
    shutil.rmtree(folder, ignore_errors=True)


def _clean_job_media(settings: Settings, job_id: str) -> None:
    job = settings.jobs_dir / job_id
    for name in _JOB_MEDIA:
        path = job / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def sweep(settings: Settings, registry: Registry, *, job_folders: bool = False) -> list[str]:
    """Clean up every render that is no longer running (start-up after a crash); returns
    the ids of the jobs cleaned. ``job_folders``: also strip media from every job folder
    (renders from before staging existed; the studio does it once at start-up)."""
    root = staging_root(settings)
    cleaned: list[str] = []
    sweep_private()
    jobs = root / "jobs"
    if jobs.is_dir():
        for folder in sorted(jobs.iterdir()):
            if folder.name.startswith(".new-"):
                # Died between mkdir and rename (the lock was never visible): old ones only.
                with contextlib.suppress(OSError):
                    if time.time() - folder.stat().st_mtime > _NEW_GRACE_S:
                        shutil.rmtree(folder, ignore_errors=True)
                continue
            if cleanup(settings, registry, folder.name):
                cleaned.append(folder.name)
    names = root / "names"
    if names.is_dir():
        for reservation in names.iterdir():
            owner = _read(reservation)
            if owner is None or not (jobs / owner).is_dir():
                reservation.unlink(missing_ok=True)  # its job is gone: the name is free
    if job_folders and settings.jobs_dir.is_dir():
        for job in settings.jobs_dir.iterdir():
            if job.is_dir() and not (jobs / job.name).is_dir():
                _clean_job_media(settings, job.name)
    return cleaned
