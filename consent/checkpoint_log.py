"""Signed checkpoints kept outside the database: an append-only log file of signed notes.

Why: whoever can write the registry's database can truncate the ledger or restore an older
copy, and the checkpoints stored in that same database go with it. A copy of every signed
checkpoint in a file beside it (and in a witness's own state folder, see
:mod:`consent.witness`) remembers how far the log had grown, so a smaller or forked tree is
noticed and the gate refuses to decide on it.

One JSON object per line, ``{"note": "<signed note>"}``: a line is self-delimiting (a note
contains blank lines itself), and a torn last line from a crash is recognised and skipped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from consent.note import Checkpoint, NoteError, NoteVerifier, open_checkpoint


@dataclass(frozen=True)
class LoggedCheckpoint:
    checkpoint: Checkpoint
    note: str
    line: int


class CheckpointLog:
    """Append signed notes; read back those added since a byte offset."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, notes: list[str], *, sync: bool = True) -> None:
        """Append notes; ``sync`` waits until they are on disk (fsync)."""
        if not notes:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = "".join(json.dumps({"note": n}, ensure_ascii=True) + "\n" for n in notes)
        # O_APPEND: concurrent writers (several registry processes) never interleave a line.
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data.encode("ascii"))
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)

    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except FileNotFoundError:
            return 0

    def read_from(self, offset: int) -> tuple[list[str], int, list[str]]:
        """Notes of the complete lines after ``offset``; the new offset; unreadable lines."""
        try:
            with self.path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            return [], offset, []
        end = data.rfind(b"\n") + 1  # a torn last line is read again next time
        notes: list[str] = []
        bad: list[str] = []
        for n, line in enumerate(data[:end].splitlines()):
            try:
                value = json.loads(line)
                note = value["note"]
                if not isinstance(note, str):
                    raise TypeError("note is not text")
            except (ValueError, KeyError, TypeError) as exc:
                bad.append(f"{self.path.name} line at byte {offset}+{n}: {exc}")
                continue
            notes.append(note)
        return notes, offset + end, bad

    def checkpoints(self, verifier: NoteVerifier, origin: str) -> Iterator[LoggedCheckpoint]:
        """Every checkpoint in the log that verifies (others are skipped; see read_from)."""
        notes, _, _ = self.read_from(0)
        for n, note in enumerate(notes):
            try:
                cp = open_checkpoint(note, verifier, origin=origin)
            except NoteError:
                continue
            yield LoggedCheckpoint(cp, note, n)
