"""Files handed to one requester: never a path under the data folder.

Gradio serves a file to a browser through its file route (``/gradio_api/file=PATH``), to any
signed-in user who knows the path. So the studio serves nothing of the data folder that way
(``launch`` lists it in ``blocked_paths`` and allows no other path): a handler that has checked
the requester's role and, for a render, that the job is theirs, gives Gradio a *copy* in a
folder named by 128 random bits inside Gradio's own cache. Gradio serves that copy as it is
(files already in its cache are not copied again); nobody else can name it, and copies older
than :data:`KEEP_S` are swept.
"""

from __future__ import annotations

import logging
import secrets
import shutil
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: How long a handed-out copy stays (a page keeps showing the result meanwhile).
KEEP_S = 6 * 3600.0
PREFIX = "studio-handoff-"


class Handoff:
    """Copies of data-folder files in unguessable folders under ``root`` (Gradio's cache)."""

    def __init__(self, root: Path, *, keep_s: float = KEEP_S) -> None:
        self.root = root
        self.keep_s = keep_s
        self._given: dict[tuple[str, str], Path] = {}
        self._lock = threading.Lock()

    def give(self, source: Path, requester: str, *, name: str | None = None) -> Path:
        """A copy of ``source`` for ``requester`` (the same copy again while it exists)."""
        key = (requester, str(source))
        with self._lock:
            given = self._given.get(key)
        if given is not None and given.is_file():
            return given
        target = self._folder() / (name or source.name)
        shutil.copyfile(source, target)
        with self._lock:
            self._given[key] = target
        return target

    def give_bytes(self, data: bytes, name: str) -> Path:
        """A new file ``name`` holding ``data`` (a generated download, e.g. a proof)."""
        target = self._folder() / name
        target.write_bytes(data)
        return target

    def _folder(self) -> Path:
        self.sweep()
        folder = self.root / f"{PREFIX}{secrets.token_hex(16)}"
        folder.mkdir(parents=True, mode=0o700)
        return folder

    def sweep(self, now: float | None = None) -> int:
        """Remove copies older than ``keep_s``; the number of folders removed."""
        now = time.time() if now is None else now
        removed = 0
        if not self.root.is_dir():
            return 0
        for folder in self.root.glob(f"{PREFIX}*"):
            try:
                if now - folder.stat().st_mtime > self.keep_s:
                    shutil.rmtree(folder, ignore_errors=True)
                    removed += 1
            except OSError:  # another process swept it first
                continue
        if removed:
            with self._lock:
                self._given = {k: v for k, v in self._given.items() if v.exists()}
        return removed
