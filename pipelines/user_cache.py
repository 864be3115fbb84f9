"""Derived files kept between processes, trusted only by their pinned SHA-256.

Some inputs are slow to produce but derived deterministically from files the studio already
trusts (dlib's frontal detector unpacked from its library, RivaGAN's graphs rewritten with 2-D
convolutions): a process keeps its result under the user's cache folder, and a later process
uses the kept copy only when its bytes hash to the value pinned in the code. A copy that does
not match — stale, truncated, written by another version, or planted — is ignored and
replaced, so a writable cache folder can cost time, never change a result. Nor can it stall
or stop one: what is not a regular file there (a FIFO, a device, a folder) is not read, a
temporary file is created anew (never opened through a planted name or link), and a process
with no home folder keeps nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import tempfile
from pathlib import Path

APP_FOLDER = "consent-dubbing-studio"


def cache_dir() -> Path | None:
    """``$XDG_CACHE_HOME/consent-dubbing-studio`` (``~/.cache/…`` when unset or relative, as
    the XDG base directory spec says); ``None`` when there is no home folder to put it in."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no $HOME and no password entry (an arbitrary container uid)
            return None
    return Path(base) / APP_FOLDER


def read_pinned(path: Path, sha256: str, *, max_bytes: int) -> bytes | None:
    """The bytes of ``path`` when they hash to ``sha256``; ``None`` when missing, not a
    regular file, larger than ``max_bytes``, unreadable or different."""
    try:
        # O_NONBLOCK: opening a FIFO planted there must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                return None
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
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A new file of a random name (O_EXCL): never one planted, or a link, at a name
        # another writer could guess, and never another process's half-written one.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        return False
    return True
