"""The source shot's half of the QC, measured once per shot: sealed mouth series for reuse.

The QC of a lip-sync render (``studio.render.qc_step``) measures each edited track's mouth in
the output *and* in the source shot (for "leak" and as the reference of range and closure).
The source's series depends only on the shot's bytes, the track's recorded meshes (where the
face is searched) and the measuring instrument (``pipelines.qc.dlib_mouth``), never on the
render: a shot rendered again (another language, a re-render after review) reuses it, and
the QC then decodes and measures the output only (about half its work).

Trust is the analysis cache's (``studio.render.analysis_cache``), whose tracking these series
hang off:

* **Bound by hash.** An entry is keyed by the SHA-256 of the shot's bytes (the render's ingest
  hash), the digest of the track's meshes as sealed or recorded
  (``ShotAnalysis.landmarks_sha256``), the track, the frame count and
  :func:`~pipelines.qc.dlib_mouth.instrument_key` (``INSTRUMENT``, its constants, dlib's
  version). Another shot, another tracking or a changed instrument never hits.
* **Sealed.** An entry is one JSON file whose body (its key and the series) is MACed with the
  analysis cache's HMAC key. One that is not a regular file, is larger than any the studio
  writes, fails its MAC, names another key or holds anything but the series of the right
  length is deleted and the series is measured afresh: a kept series is never taken on trust
  (it would be a way to forge "leak").

Entries share the analysis cache's switch (``STUDIO_ANALYSIS_CACHE_MB=0`` turns both off); at
most :data:`MAX_ENTRIES` are kept (a 750-frame series is about 15 kB), least recently used
first out.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import secrets
import stat
from pathlib import Path
from typing import BinaryIO, Final

import numpy as np
from numpy.typing import NDArray

from pipelines.qc.dlib_mouth import instrument_key
from studio.render.analysis_cache import canonical_json, seal_key
from studio.settings import Settings

log = logging.getLogger(__name__)

KIND: Final = "qc-source-mouth"
MAX_ENTRIES: Final = 4096
# A float's JSON is at most ~24 characters; anything far larger than that per frame is not
# an entry of ours and is refused unread.
_BYTES_PER_FRAME: Final = 32
_OVERHEAD: Final = 4096

FloatArray = NDArray[np.float64]


class QCSourceCache:
    """Sealed source mouth series under ``<data>/qc-source/`` (module docstring)."""

    def __init__(self, root: Path, key_path: Path, enabled: bool = True) -> None:
        self.root = root
        self.key_path = key_path
        self.enabled = enabled

    @classmethod
    def for_settings(cls, settings: Settings) -> QCSourceCache:
        return cls(settings.data_dir / "qc-source", settings.keys_dir / "analysis-hmac.key",
                   settings.analysis_cache_mb > 0)

    @staticmethod
    def key(source_sha256: str, meshes_sha256: str, track_id: int, frames: int) -> str:
        doc = {"kind": KIND, "source": source_sha256, "meshes": meshes_sha256,
               "track": track_id, "frames": frames, **instrument_key()}
        return hashlib.sha256(canonical_json(doc)).hexdigest()

    def _usable(self, source_sha256: str, meshes_sha256: str) -> bool:
        # Without both hashes nothing binds a series to the pixels and boxes it measured.
        return self.enabled and bool(source_sha256) and bool(meshes_sha256)

    def load(self, source_sha256: str, meshes_sha256: str, track_id: int,
             frames: int) -> FloatArray | None:
        """The kept series of this track of these bytes, or None (none kept, or it failed
        its seal: then it is deleted)."""
        if not self._usable(source_sha256, meshes_sha256):
            return None
        key = self.key(source_sha256, meshes_sha256, track_id, frames)
        path = self.root / f"{key}.json"
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError:  # a link (O_NOFOLLOW) or unreadable
            series, reason = None, "it is not a readable regular file"
        else:
            with os.fdopen(fd, "rb") as fh:
                series, reason = self._check(fh, key, frames)
        if series is not None:
            os.utime(path)  # most recently used
            return series
        log.warning("discarding kept QC source series %s: %s", key[:12], reason)
        try:
            if path.is_dir() and not path.is_symlink():
                return None  # not ours to remove recursively; it never loads
            path.unlink()
        except OSError:
            pass
        return None

    def _check(self, fh: BinaryIO, key: str, frames: int) -> tuple[FloatArray | None, str]:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None, "it is not a regular file"
        limit = _OVERHEAD + _BYTES_PER_FRAME * frames
        if info.st_size > limit:
            return None, "it is larger than any series the studio writes"
        try:
            doc = json.loads(fh.read(limit + 1).decode("utf-8"))
            body, mac = doc["body"], bytes.fromhex(doc["mac"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
            return None, "no readable seal"
        expected = hmac.new(seal_key(self.key_path), canonical_json(body),
                            hashlib.sha256).digest()
        if not hmac.compare_digest(mac, expected):
            return None, "its seal does not verify"
        if not isinstance(body, dict) or body.get("key") != key:
            return None, "it is sealed for another shot, tracking or instrument"
        values = body.get("series")
        if not isinstance(values, list) or len(values) != frames or not all(
                v is None or (isinstance(v, float) and math.isfinite(v)) for v in values):
            return None, f"its series is not {frames} finite figures or gaps"
        return np.array([np.nan if v is None else v for v in values], np.float64), ""

    def store(self, source_sha256: str, meshes_sha256: str, track_id: int,
              series: FloatArray) -> None:
        """Keep ``series`` (NaN: frames without the face); a no-op when disabled."""
        if not self._usable(source_sha256, meshes_sha256):
            return
        frames = len(series)
        key = self.key(source_sha256, meshes_sha256, track_id, frames)
        body = {"key": key, "series": [None if not math.isfinite(v) else float(v)
                                       for v in series.tolist()]}
        mac = hmac.new(seal_key(self.key_path), canonical_json(body), hashlib.sha256)
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.root / f".tmp-{secrets.token_hex(8)}"
        try:
            # The whole body is MACed: a file changed between this write and the rename
            # fails its seal at load, so the write needs no private folder.
            with open(tmp, "x", encoding="utf-8") as fh:
                json.dump({"body": body, "mac": mac.hexdigest()}, fh)
            os.replace(tmp, self.root / f"{key}.json")
        finally:
            tmp.unlink(missing_ok=True)
        self._evict()

    def _evict(self) -> None:
        entries = [p for p in self.root.glob("*.json") if p.is_file()]
        if len(entries) <= MAX_ENTRIES:
            return
        entries.sort(key=lambda p: p.stat().st_mtime)
        for path in entries[:len(entries) - MAX_ENTRIES]:
            path.unlink(missing_ok=True)
