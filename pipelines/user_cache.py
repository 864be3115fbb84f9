"""Derived files kept between processes, trusted only by their pinned SHA-256.

Some inputs are slow to produce but derived deterministically from files the studio already
trusts (dlib's frontal detector unpacked from its library, RivaGAN's graphs rewritten with 2-D
convolutions): a process keeps its result under the user's cache folder, and a later process
uses the kept copy only when its bytes hash to the value pinned in the code. A copy that does
not match — stale, truncated, written by another version, or planted — is ignored and
replaced, so a writable cache folder can cost time, never change a result.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path

APP_FOLDER = "consent-dubbing-studio"


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/consent-dubbing-studio`` (``~/.cache/…`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP_FOLDER


def read_pinned(path: Path, sha256: str, *, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` when they hash to ``sha256``; ``None`` when missing, larger
    than ``max_bytes``, unreadable or different."""
    try:
        with path.open("rb") as fh:
            data = fh.read(max_bytes + 1)
    except OSError:
        return None
    if len(data) > max_bytes or hashlib.sha256(data).hexdigest() != sha256:
        return None
    return data


def keep(path: Path, data: bytes, sha256: str) -> bool:
    """Write ``data`` to ``path`` (atomically: a reader sees the old file or the whole new
    one) when it hashes to ``sha256``. ``False`` when it does not (this build derives other
    bytes: the caller uses them unkept) or the folder is not writable."""
    if hashlib.sha256(data).hexdigest() != sha256:
        return False
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        return False
    return True
