"""The operator's scan becomes the render's identify step: shot analyses kept for reuse.

Tracking every face of a shot (mesh per frame, identity embeddings along each track) is about
a third of a render. The operator usually ran it already: the studio's "Scan shot" finds the
faces to choose from. Both now run the same analysis (:func:`render_analysis_params`), and
the result is kept here, so the render that follows reuses it instead of tracking again.

What makes reuse safe:

* **Bound by hash.** An entry is keyed by the SHA-256 of the shot's bytes (the render's own
  ingest hash), the analysis parameters, the embedder and the format. Another file, a changed
  file or other parameters never hit.
* **Sealed.** Each entry's files are listed with their SHA-256 and the list is MACed (HMAC-SHA256
  with ``keys/analysis-hmac.key``, made on first use, mode 0600; the same trust as the template
  key beside it). An entry whose seal or any file fails is deleted and the render tracks
  afresh; a cached analysis is never taken on trust.
* **Only the tracking is reused.** Identity is decided again at every render from the cached
  embeddings against the registry's *current* templates, and the gate decides as always: a
  revocation or a purged template takes effect whatever the cache holds.
* **Immutable entries.** Entries are written to a temporary folder and renamed into place; a
  render copies an entry's files into its own staging folder *before* checking the seal, so
  an eviction during the render cannot pull files from under it, and the seal covers the very
  bytes the render reads later (a hard link would share the cache's inode: an entry edited in
  place after the check would move the meshes the render warps). A link in an entry is copied
  as a link, which the seal check refuses.
* **Meshes bound to their tracking.** An entry is kept only if its mesh files are the bytes
  the tracking recorded (``ShotAnalysis.landmarks_sha256``: they are copied from the job's
  staging); a reused entry's meshes digest comes from the sealed hashes, and the render
  checks the meshes it reads into memory against it (``ShotAnalysis.pinned``).

The cache is bounded (``STUDIO_ANALYSIS_CACHE_MB``, default 2048; 0 turns it off); the least
recently used entries go first.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import Final

from pipelines.faces.analysis import ShotAnalysis, analyse_shot
from pipelines.faces.analysis_file import (
    FORMAT,
    LANDMARKS,
    AnalysisFileError,
    analysis_files,
    load_analysis,
    save_analysis,
)
from pipelines.faces.embedding import FaceEmbedder
from pipelines.faces.landmark_file import meshes_digest
from pipelines.faces.scan import FrameCallback
from pipelines.media.probe import MediaInfo
from studio.identity import sha256_file
from studio.settings import Settings

log = logging.getLogger(__name__)

SEAL: Final = "seal.json"
# A seal lists a handful of names and hashes; anything far larger is not one of ours.
_SEAL_MAX_BYTES: Final = 1 << 20
_KEY_BYTES: Final = 32


@dataclass(frozen=True)
class AnalysisParams:
    """Everything besides the shot's bytes that shapes an analysis."""

    max_faces: int
    sample_every: int
    max_samples: int | None
    end_samples: bool
    embedder: str

    def key(self, source_sha256: str) -> str:
        doc = json.dumps({"format": FORMAT, "source": source_sha256, **asdict(self)},
                         sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(doc.encode()).hexdigest()


def identity_gap_frames(settings: Settings, frame_rate: Fraction | float | None,
                        gap_s: float | None = None) -> int:
    """The identity trace's largest gap in frames (``STUDIO_IDENTITY_GAP_S`` at this rate)."""
    seconds = settings.identity_gap_s if gap_s is None else gap_s
    return max(1, round(seconds * float(frame_rate or 25)))


def render_analysis_params(settings: Settings, frame_rate: Fraction | float | None,
                           embedder: str, gap_s: float | None = None) -> AnalysisParams:
    """The analysis a render needs: up to 8 faces and the continuous identity trace (one
    sample every gap - 1 frames, every sample kept, each run's last frame embedded)."""
    max_gap = identity_gap_frames(settings, frame_rate, gap_s)
    return AnalysisParams(max_faces=8, sample_every=max(1, max_gap - 1), max_samples=None,
                          end_samples=True, embedder=embedder)


class AnalysisCache:
    """Sealed shot analyses under ``<data>/analysis/`` (module docstring)."""

    def __init__(self, root: Path, key_path: Path, limit_bytes: int) -> None:
        self.root = root
        self.key_path = key_path
        self.limit_bytes = limit_bytes

    @classmethod
    def for_settings(cls, settings: Settings) -> AnalysisCache:
        return cls(settings.data_dir / "analysis", settings.keys_dir / "analysis-hmac.key",
                   settings.analysis_cache_mb * 1024 * 1024)

    @property
    def enabled(self) -> bool:
        return self.limit_bytes > 0

    # -- reading --------------------------------------------------------------------------

    def load(self, params: AnalysisParams, source_sha256: str, source: Path, info: MediaInfo,
             into: Path) -> ShotAnalysis | None:
        """The cached analysis of these bytes with these parameters, its files placed in
        ``into`` (a folder of the caller's); None when there is none or it fails its seal."""
        if not self.enabled:
            return None
        entry = self.root / params.key(source_sha256)
        if not entry.is_dir():
            return None
        try:
            _place(entry, into)
        except FileNotFoundError:
            shutil.rmtree(into, ignore_errors=True)
            return None  # evicted while we linked it: track afresh
        sealed: dict[str, str] = {}
        reason = self._check_seal(into, params.key(source_sha256), sealed)
        if reason is None:
            try:
                analysis = load_analysis(into, source, info)
                if analysis.scan.frame_count == (info.video.frame_count if info.video else -1):
                    os.utime(entry)  # most recently used
                    # The meshes' digest from the sealed hashes, not from the files now:
                    # the render checks the meshes it reads later against the seal itself.
                    return replace(analysis, landmarks_sha256=_meshes_digest(sealed))
                reason = "its frame count differs from the shot's"
            except AnalysisFileError as exc:
                reason = str(exc)
        log.warning("discarding cached analysis %s: %s", entry.name, reason)
        shutil.rmtree(entry, ignore_errors=True)
        shutil.rmtree(into, ignore_errors=True)
        return None

    def _check_seal(self, folder: Path, key: str, sealed_files: dict[str, str]
                    ) -> str | None:
        try:
            with (folder / SEAL).open("rb") as fh:
                raw = fh.read(_SEAL_MAX_BYTES + 1)
            if len(raw) > _SEAL_MAX_BYTES:
                return "its seal is larger than any seal the studio writes"
            seal = json.loads(raw.decode("utf-8"))
            body, mac = seal["body"], bytes.fromhex(seal["mac"])
        except (OSError, ValueError, KeyError, TypeError):
            return "no readable seal"
        expected = hmac.new(self._key(), canonical_json(body), hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return "its seal does not verify"
        if body.get("key") != key:
            return "it is sealed for another shot or other parameters"
        sealed = body.get("files")
        if not isinstance(sealed, dict):
            return "its seal lists no files"
        # The whole folder, not only what the analysis reader opens: nothing unsealed rides
        # along into the render's staging folder, whoever might read it later.
        stray = _unsealed(folder, set(sealed))
        if stray is not None:
            return stray
        files = {p.relative_to(folder).as_posix(): p for p in analysis_files(folder)}
        if sorted(files) != sorted(sealed):
            return "its files differ from the sealed list"
        for name, path in files.items():
            if sha256_file(path) != body["files"][name]:
                return f"{name} differs from its sealed hash"
        sealed_files.update(body["files"])
        return None

    # -- writing --------------------------------------------------------------------------

    def store(self, params: AnalysisParams, source_sha256: str, analysis: ShotAnalysis) -> None:
        """Keep ``analysis`` (a no-op when disabled or already kept)."""
        if not self.enabled:
            return
        key = params.key(source_sha256)
        entry = self.root / key
        if entry.is_dir():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        try:
            # Written and hashed in a private folder (0700, outside the data folder), then
            # copied beside the entries: a file changed under <data>/analysis while the entry
            # is being put in place differs from its seal, and is never taken as sealed.
            with tempfile.TemporaryDirectory(prefix="studio-analysis-") as private:
                written = Path(private) / "entry"
                save_analysis(analysis, written)
                files = {p.relative_to(written).as_posix(): sha256_file(p)
                         for p in analysis_files(written)}
                if analysis.landmarks_sha256 and \
                        _meshes_digest(files) != analysis.landmarks_sha256:
                    # The meshes were copied from the job's staging folder: changed there
                    # since the tracking wrote them, they are never sealed as the studio's.
                    log.warning("not keeping the analysis of %s: its meshes changed since "
                                "they were tracked", source_sha256[:12])
                    return
                shutil.copytree(written, tmp)
            body = {"key": key, "files": files, "created": time.time()}
            mac = hmac.new(self._key(), canonical_json(body), hashlib.sha256).hexdigest()
            (tmp / SEAL).write_text(json.dumps({"body": body, "mac": mac}), encoding="utf-8")
            try:
                tmp.rename(entry)
            except OSError:
                if not entry.is_dir():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        self._evict(keep=entry)

    def _evict(self, keep: Path) -> None:
        entries = [p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")]
        sizes = {p: sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) for p in entries}
        total = sum(sizes.values())
        for path in sorted(entries, key=lambda p: p.stat().st_mtime):
            if total <= self.limit_bytes:
                break
            if path == keep:
                continue
            shutil.rmtree(path, ignore_errors=True)
            total -= sizes[path]

    def _key(self) -> bytes:
        return seal_key(self.key_path)


def seal_key(key_path: Path) -> bytes:
    """The HMAC key of the studio's kept analyses at ``key_path``, made on first use (0600)."""
    try:
        return key_path.read_bytes()
    except FileNotFoundError:
        pass
    key_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return key_path.read_bytes()  # another process made it first
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(_KEY_BYTES))
    return key_path.read_bytes()


def _unsealed(folder: Path, sealed: set[str]) -> str | None:
    """Why ``folder`` holds more than its seal and ``sealed`` (a link, a device, a stray file
    or folder), or None when it holds exactly those."""
    folders = {parent.as_posix() for name in sealed for parent in PurePosixPath(name).parents}
    for path in folder.rglob("*"):
        name = path.relative_to(folder).as_posix()
        if path.is_symlink():
            return f"{name} is a link"
        if path.is_dir():
            if name not in folders:
                return f"{name}/ is not a sealed folder"
        elif not path.is_file():
            return f"{name} is not a regular file"
        elif name != SEAL and name not in sealed:
            return f"{name} is not in the seal"
    return None


def _meshes_digest(files: dict[str, str]) -> str:
    """``meshes_digest`` of the landmark files among an entry's (path → SHA-256)."""
    prefix = f"{LANDMARKS}/"
    return meshes_digest({name.removeprefix(prefix): sha for name, sha in files.items()
                          if name.startswith(prefix) and "/" not in name.removeprefix(prefix)})


def canonical_json(body: object) -> bytes:
    """The bytes a seal's MAC covers: sorted keys, no spaces."""
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _place(entry: Path, into: Path) -> None:
    """Copy every file of ``entry`` under ``into`` (links as links: the seal check refuses
    them; module docstring)."""
    into.mkdir(parents=True, exist_ok=True)
    for path in entry.rglob("*"):
        target = into / path.relative_to(entry)
        if path.is_dir() and not path.is_symlink():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target, follow_symlinks=False)


def analyse_for_render(settings: Settings, video: Path, source_sha256: str, info: MediaInfo,
                       embedder: FaceEmbedder, work: Path, *, gap_s: float | None = None,
                       on_frame: FrameCallback | None = None,
                       progress: Callable[[int, int], None] | None = None,
                       cancelled: Callable[[], bool] | None = None) -> tuple[ShotAnalysis, bool]:
    """The analysis a render of ``video`` needs, its files in ``work``, and whether it was
    reused: the sealed one of these bytes if kept, else tracked now and kept (the studio's
    "Scan shot" and the render both come here, so the render reuses the operator's scan).
    ``on_frame`` sees the frames only when the shot is tracked now."""
    rate = info.video.frame_rate if info.video is not None else None
    params = render_analysis_params(settings, rate, embedder.name, gap_s)
    cache = AnalysisCache.for_settings(settings)
    cached = cache.load(params, source_sha256, video, info, work)
    if cached is not None:
        return cached, True
    analysis = analyse_shot(video, work, embedder, max_faces=params.max_faces,
                            sample_every=params.sample_every, max_samples=params.max_samples,
                            end_samples=params.end_samples, on_frame=on_frame,
                            progress=progress, cancelled=cancelled)
    cache.store(params, source_sha256, analysis)
    return analysis, False
