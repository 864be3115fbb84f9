"""The local model registry: which files a neural backend needs, whether they are the right
ones, and whether their licence allows the production at hand.

Nothing downloads. An operator copies a backend's public checkpoint files into a folder; the
registry checks them against the backend's manifest (:mod:`pipelines.models.manifests`).

API (for backend authors — MuseTalk here, LivePortrait in ``pipelines.reenact``)::

    from pipelines.models import registry

    root = registry.models_root(settings.data_dir)      # $STUDIO_MODELS_DIR or <data>/models
    folder = registry.backend_dir("liveportrait", root)  # <root>/liveportrait
    pins = registry.PinStore.for_root(root)              # <root>/pins.json (trust on first use)
    paths = registry.require_files("liveportrait", folder, pins=pins)
    # -> {"base_models/warping_module.pth": Path(...), ...}; raises ModelFileError naming the
    #    file, its expected SHA-256 (published or pinned) and its full expected path.
    registry.check_commercial_use("liveportrait", commercial=True)  # CommercialUseError if not

* :func:`backends`, :func:`manifest`, :func:`licence` — the manifests (files, hashes, sizes,
  licences; :class:`ModelLicence` has ``licence`` and ``commercial``).
* :func:`verify_folder` — a report (one :class:`FileCheck` per file) without raising; with
  ``pin=True`` it records the SHA-256 of every file that has no published hash into the
  :class:`PinStore` (what ``studio models verify DIR --pin`` does).
* :func:`require_files` — what a loader calls: every file present, of the right size and hash,
  or one :class:`ModelFileError` (a ``FileNotFoundError``/``OSError``, so the CLI's error
  mapping reports it without a traceback).
* :func:`check_commercial_use` — the licence check the render gate runs before a commercial
  render (fail closed: an unknown backend is refused too).

Hash policy: a *published* hash (in the manifest) always wins. Where none is published, a hash
*pinned locally* on first import is checked instead, and reported as such ("pinned locally,
not a published hash"). A file with neither is accepted by :func:`require_files` only as
present (and of the right size where the size is known); :func:`verify_folder` reports it as
``unverified``. Hashes are cached per (path, size, mtime) within a process, so a multi-GB
checkpoint is hashed once.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, Literal

from pipelines.errors import ModelMissingError, PipelineError
from pipelines.hashing import sha256_file as hash_file
from pipelines.models.manifests import MANIFESTS
from pipelines.models.spec import BackendManifest, ModelFile, ModelLicence

__all__ = [
    "BackendManifest",
    "CommercialUseError",
    "FileCheck",
    "ModelFile",
    "ModelFileError",
    "ModelLicence",
    "PinStore",
    "UnknownBackendError",
    "backend_dir",
    "backends",
    "cached_sha256",
    "check_commercial_use",
    "licence",
    "manifest",
    "models_root",
    "require_files",
    "verify_folder",
]

MODELS_DIR_ENV: Final = "STUDIO_MODELS_DIR"
PINS_FILE: Final = "pins.json"
PIN_SCHEMA: Final = "consent-dubbing-studio/model-pins/1"

Problem = Literal["missing", "size", "mismatch"]
Status = Literal["ok", "pinned", "unverified", "pinned-now", "missing", "size", "mismatch"]


class UnknownBackendError(PipelineError, LookupError):
    """No manifest for this backend name."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        super().__init__(f"unknown model backend {backend!r} (known: "
                         f"{', '.join(sorted(MANIFESTS))})")


class ModelFileError(ModelMissingError):
    """A backend's file is missing, or is not the expected file (size or SHA-256).

    The message names the file, the hash it must have (and whether that hash is published or
    was pinned locally) and the full path where it goes.
    """

    def __init__(self, backend: str, file: str, location: Path, problem: Problem,
                 expected_sha256: str | None, hash_origin: str, *,
                 actual: str | None = None) -> None:
        self.backend = backend
        self.file = file
        self.location = location
        self.problem: Problem = problem
        self.expected_sha256 = expected_sha256
        self.hash_origin = hash_origin
        self.actual = actual
        expected = (f"sha256 {expected_sha256} ({hash_origin})" if expected_sha256
                    else "sha256 unknown (no published hash, none pinned)")
        what = {
            "missing": "is missing",
            "size": f"has the wrong size ({actual})",
            "mismatch": f"does not match (its sha256 is {actual})",
        }[problem]
        super().__init__(f"{backend}: model file {file} {what}; expected {expected}; it goes "
                         f"at {location}")


class CommercialUseError(PipelineError, PermissionError):
    """A commercial production asked for a model whose licence does not allow it."""

    def __init__(self, backend: str, model_licence: ModelLicence, reason: str = "") -> None:
        self.backend = backend
        self.licence = model_licence
        super().__init__(reason or (
            f"{backend}: its licence ({model_licence.licence}) does not allow commercial use; "
            "choose another backend or mark the production non-commercial"))


def backends() -> list[str]:
    """Names of every backend with a manifest."""
    return sorted(MANIFESTS)


def manifest(backend: str) -> BackendManifest:
    try:
        return MANIFESTS[backend]
    except KeyError:
        raise UnknownBackendError(backend) from None


def licence(backend: str) -> ModelLicence:
    """The combined licence of a backend's files (commercial only if all allow it)."""
    return manifest(backend).licence


def check_commercial_use(backend: str, commercial: bool) -> None:
    """Raise :class:`CommercialUseError` when ``commercial`` and the backend's licence forbids
    it. Fails closed: an unknown backend is refused for a commercial production."""
    if not commercial:
        manifest(backend)  # still an error for an unknown name
        return
    if backend not in MANIFESTS:
        raise CommercialUseError(backend, ModelLicence("unknown", False),
                                 f"{backend}: no licence is recorded for this model backend; "
                                 "a commercial render cannot run it")
    lic = licence(backend)
    if not lic.commercial:
        raise CommercialUseError(backend, lic)


def models_root(data_dir: Path | None = None,
                environ: Mapping[str, str] | None = None) -> Path:
    """Where model folders live: ``$STUDIO_MODELS_DIR``, else ``<data_dir>/models`` (else
    ``./studio-data/models``, the settings' default data folder)."""
    env = os.environ if environ is None else environ
    configured = env.get(MODELS_DIR_ENV)
    if configured:
        return Path(configured).expanduser().resolve()
    base = data_dir if data_dir is not None else Path(env.get("STUDIO_DATA", "studio-data"))
    return (base / "models").resolve()


def backend_dir(backend: str, root: Path) -> Path:
    """The folder a backend's files are expected in: ``<root>/<backend>``."""
    manifest(backend)
    return root / backend


_hash_cache: dict[tuple[str, int, int, int, int], str] = {}
_hash_lock = threading.Lock()


def cached_sha256(path: Path) -> str:
    """SHA-256 of a file (lower-case hex), cached per (path, size, mtime, ctime, inode) in
    this process."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)
    with _hash_lock:
        cached = _hash_cache.get(key)
    if cached is not None:
        return cached
    value = hash_file(path)
    with _hash_lock:
        _hash_cache[key] = value
    return value


@dataclass(frozen=True)
class Pin:
    sha256: str
    size: int
    pinned_at: str


class PinStore:
    """Locally pinned hashes (trust on first use), one JSON file:
    ``{"schema": ..., "backends": {backend: {file: {sha256, size, pinned_at}}}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def for_root(cls, root: Path) -> PinStore:
        return cls(root / PINS_FILE)

    def load(self) -> dict[str, dict[str, Pin]]:
        if not self.path.is_file():
            return {}
        document = json.loads(self.path.read_text(encoding="utf-8"))
        if document.get("schema") != PIN_SCHEMA:
            raise ValueError(f"{self.path}: not a model pin file ({PIN_SCHEMA})")
        return {backend: {name: Pin(str(p["sha256"]), int(p["size"]), str(p["pinned_at"]))
                          for name, p in files.items()}
                for backend, files in document.get("backends", {}).items()}

    def get(self, backend: str, file: str) -> Pin | None:
        return self.load().get(backend, {}).get(file)

    def pin(self, backend: str, file: str, sha256: str, size: int) -> Pin:
        pins = self.load()
        entry = Pin(sha256, size, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
        pins.setdefault(backend, {})[file] = entry
        document = {
            "schema": PIN_SCHEMA,
            "note": "hashes pinned locally on first import (trust on first use); "
                    "not published hashes",
            "backends": {b: {n: {"sha256": p.sha256, "size": p.size, "pinned_at": p.pinned_at}
                             for n, p in sorted(files.items())}
                         for b, files in sorted(pins.items())},
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".part")
        tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)
        return entry


@dataclass(frozen=True)
class FileCheck:
    """The state of one file of a backend's folder."""

    file: ModelFile
    location: Path
    status: Status
    """``ok`` (matches its published hash), ``pinned`` (matches its local pin),
    ``pinned-now`` (pinned by this call), ``unverified`` (present, no hash to compare),
    ``missing``, ``size`` or ``mismatch``."""
    sha256: str | None
    expected_sha256: str | None
    hash_origin: str
    """``published``, ``pinned locally, not a published hash`` or ``none``."""

    @property
    def failed(self) -> bool:
        return self.status in ("missing", "size", "mismatch")

    def error(self, backend: str) -> ModelFileError:
        assert self.failed
        actual = (f"{self.location.stat().st_size} bytes, expected {self.file.size}"
                  if self.status == "size" else self.sha256)
        problem: Problem = "missing" if self.status == "missing" else (
            "size" if self.status == "size" else "mismatch")
        return ModelFileError(backend, self.file.path, self.location, problem,
                              self.expected_sha256, self.hash_origin, actual=actual)


PINNED: Final = "pinned locally, not a published hash"


def _expected(backend: str, f: ModelFile, pins: dict[str, dict[str, Pin]]
              ) -> tuple[str | None, str, int | None]:
    if f.sha256 is not None:
        return f.sha256.lower(), "published", f.size
    pin = pins.get(backend, {}).get(f.path)
    if pin is not None:
        return pin.sha256, PINNED, pin.size
    return None, "none", f.size


def _check(backend: str, f: ModelFile, folder: Path, pins: dict[str, dict[str, Pin]],
           hash_files: bool, *, digest_unverified: bool = False) -> FileCheck:
    location = folder / f.path
    expected, origin, size = _expected(backend, f, pins)
    if not location.is_file():
        return FileCheck(f, location, "missing", None, expected, origin)
    if size is not None and location.stat().st_size != size:
        return FileCheck(f, location, "size", None, expected, origin)
    if expected is None:
        digest = cached_sha256(location) if digest_unverified else None
        return FileCheck(f, location, "unverified", digest, None, origin)
    if not hash_files:
        return FileCheck(f, location, "unverified", None, expected, origin)
    digest = cached_sha256(location)
    if digest != expected:
        return FileCheck(f, location, "mismatch", digest, expected, origin)
    return FileCheck(f, location, "ok" if origin == "published" else "pinned", digest,
                     expected, origin)


def verify_folder(backend: str, folder: Path, *, pins: PinStore | None = None,
                  pin: bool = False) -> list[FileCheck]:
    """Check every file of ``backend`` in ``folder`` (hashing them all); never raises for a
    bad file. ``pin``: record the hash of each present, unpinned file that has no published
    hash into ``pins`` (status ``pinned-now``); existing pins are never overwritten."""
    m = manifest(backend)
    if pin and pins is None:
        raise ValueError("pinning needs a PinStore")
    loaded = pins.load() if pins is not None else {}
    checks: list[FileCheck] = []
    for f in m.files:
        check = _check(backend, f, folder, loaded, hash_files=True, digest_unverified=True)
        if pin and pins is not None and check.status == "unverified" and check.sha256:
            pins.pin(backend, f.path, check.sha256, check.location.stat().st_size)
            check = FileCheck(f, check.location, "pinned-now", check.sha256, check.sha256,
                              PINNED)
        checks.append(check)
    return checks


def require_files(backend: str, folder: Path, *, pins: PinStore | None = None,
                  hash_files: bool = True) -> dict[str, Path]:
    """Every file of ``backend`` in ``folder``, checked; raise :class:`ModelFileError` for the
    first that is missing, of the wrong size, or whose hash differs from its published (or
    pinned) hash. ``hash_files=False`` checks presence and size only (fast; for tests and
    for a folder verified moments ago)."""
    m = manifest(backend)
    loaded = pins.load() if pins is not None else {}
    paths: dict[str, Path] = {}
    for f in m.files:
        check = _check(backend, f, folder, loaded, hash_files)
        if check.failed:
            raise check.error(backend)
        paths[f.path] = check.location
    return paths
