"""The tamper-evident ledger: an RFC 6962 Merkle log in the registry's own database.

Each event is a leaf holding canonical JSON of ids and hashes (never personal data), with
its own index and time inside the hashed bytes, so an edited, deleted or reordered row is
caught and named by :meth:`Ledger.verify`. The hashes of every perfect subtree are stored
beside the leaves, so inclusion and consistency proofs cost O(log n) reads at any size.
Checkpoints are C2SP signed notes made with the registry's key.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import driver_sql, merkle
from consent.canonical import canonical_bytes
from consent.checkpoint_log import CheckpointLog
from consent.errors import LedgerError, NotFoundError
from consent.fields import format_timestamp
from consent.keys import PrivateKey, PublicKey
from consent.note import (
    Checkpoint,
    NoteSigner,
    NoteVerifier,
    open_checkpoint,
    sign_checkpoint,
)
from consent.store import CheckpointRow, LedgerEntryRow, LedgerRefRow, Store

#: A checkpoint is signed at least every this many events ...
CHECKPOINT_EVERY = 256
#: ... and at the first append this long after the previous one.
CHECKPOINT_INTERVAL = timedelta(minutes=5)

# Arbitrary constant naming the ledger's PostgreSQL advisory lock.
_PG_LOCK_KEY = 0x5354_5544_494F


class EventType(StrEnum):
    PERFORMER_REGISTERED = "performer_registered"
    PERFORMER_UPDATED = "performer_updated"
    KEY_ADDED = "key_added"
    PRODUCTION_KEY_ADDED = "production_key_added"
    KEY_REVOKED = "key_revoked"
    GRANT_IMPORTED = "grant_imported"
    REVOCATION = "revocation"
    DECISION = "decision"
    OUTPUT_PUBLISHED = "output_published"
    TEMPLATES_ENROLLED = "templates_enrolled"
    TEMPLATES_DELETED = "templates_deleted"
    #: A performer's signed approval / rejection of one output (consent.approval).
    APPROVAL_RECORDED = "approval_recorded"
    APPROVAL_REJECTED = "approval_rejected"
    #: A reviewer's decision on one shot render of a reel, and a reel version's release
    #: (studio.reels.reviews): appended by the studio, with explicit refs.
    REEL_SHOT_REVIEWED = "reel_shot_reviewed"
    REEL_RELEASED = "reel_released"


def derived_refs(event_type: str, body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The refs of a leaf, from its body: what ``ledger_refs`` must hold for it (sorted)."""
    explicit = body.get("refs")
    if isinstance(explicit, list):
        return sorted({(str(k), str(v)) for k, v in explicit})
    refs: set[tuple[str, str]] = set()
    pid = body.get("performer_id")
    if event_type in ("performer_registered", "performer_updated", "templates_enrolled",
                      "templates_deleted"):
        refs.add(("performer", str(pid)))
    elif event_type == "key_added":
        refs |= {("performer", str(pid)), ("key", str(body.get("key_id")))}
    elif event_type == "production_key_added":
        refs.add(("key", str(body.get("key_id"))))
    elif event_type in ("revocation", "key_revoked"):
        refs |= {(str(body.get("target_kind")), str(body.get("target_id"))),
                 ("revocation", str(body.get("revocation_id"))), ("performer", str(pid))}
    elif event_type == "grant_imported":
        refs |= {("grant", str(body.get("grant_id"))), ("performer", str(pid))}
    elif event_type == "decision":
        refs.add(("decision", str(body.get("decision_id"))))
        refs |= {("grant", str(g.get("grant_id"))) for g in body.get("grants", [])}
    elif event_type == "output_published":
        refs |= {("output", str(body.get("output_sha256"))),
                 ("decision", str(body.get("decision_id")))}
        refs |= {("grant", str(g.get("grant_id"))) for g in body.get("grants", [])}
    return sorted(refs)


@dataclass(frozen=True)
class LedgerEntry:
    index: int
    event_type: EventType
    data: bytes
    created_at: datetime

    @property
    def body(self) -> dict[str, Any]:
        value = json.loads(self.data)
        assert isinstance(value, dict)
        return value

    @property
    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.data)


@dataclass(frozen=True)
class InclusionProof:
    index: int
    size: int
    leaf_hash: bytes
    hashes: tuple[bytes, ...]
    root: bytes

    def verify(self) -> None:
        merkle.verify_inclusion(self.leaf_hash, self.index, self.size, list(self.hashes), self.root)

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tree_size": self.size,
            "leaf_hash": self.leaf_hash.hex(),
            "hashes": [h.hex() for h in self.hashes],
            "root": self.root.hex(),
        }


@dataclass(frozen=True)
class ConsistencyProof:
    old_size: int
    new_size: int
    old_root: bytes
    new_root: bytes
    hashes: tuple[bytes, ...]

    def verify(self) -> None:
        merkle.verify_consistency(
            self.old_size, self.new_size, self.old_root, self.new_root, list(self.hashes)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "old_size": self.old_size,
            "new_size": self.new_size,
            "old_root": self.old_root.hex(),
            "new_root": self.new_root.hex(),
            "hashes": [h.hex() for h in self.hashes],
        }


@dataclass(frozen=True)
class Problem:
    """One finding of :meth:`Ledger.verify`: where, what kind, and a sentence for people."""

    index: int | None
    kind: str
    detail: str


@dataclass
class LedgerReport:
    size: int = 0
    checkpoints_checked: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "size": self.size,
            "checkpoints_checked": self.checkpoints_checked,
            "problems": [p.__dict__ for p in self.problems],
        }


class Ledger:
    """Append, prove and verify; every method runs in a session the caller provides or owns."""

    def __init__(self, store: Store, key: PrivateKey, origin: str, *,
                 log: CheckpointLog | None = None,
                 checkpoint_every: int = CHECKPOINT_EVERY,
                 checkpoint_interval: timedelta = CHECKPOINT_INTERVAL) -> None:
        self.store = store
        self.origin = origin
        self._signer = NoteSigner(origin, key.crypto_key)
        self.verifier = NoteVerifier(origin, key.public_key.crypto_key)
        #: Every signed checkpoint is also appended here once its transaction commits.
        self.log = log
        self.checkpoint_every = checkpoint_every
        self.checkpoint_interval = checkpoint_interval
        self._last_checkpoint: tuple[int, datetime] | None = None

    @staticmethod
    def verifier_for(origin: str, public_key: PublicKey) -> NoteVerifier:
        return NoteVerifier(origin, public_key.crypto_key)

    # ---------------------------------------------------------------- writing

    def lock(self, session: Session) -> None:
        """Take the ledger's write lock for the rest of the caller's transaction: every
        append (decisions, revocations, outputs) waits for it, so reads made after it see
        every committed append and no new one until the transaction ends."""
        self._lock(session)

    def _lock(self, session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            driver_sql.cursor(session).execute(_PG_LOCK, (_PG_LOCK_KEY,))
        # SQLite: the engine opens every transaction with BEGIN IMMEDIATE (one writer).

    def append(
        self,
        session: Session,
        event_type: EventType,
        body: Mapping[str, Any],
        *,
        at: datetime,
        refs: Iterable[tuple[str, str]] = (),
        document: bytes | None = None,
        checkpoint: bool = False,
        with_rows: Callable[[driver_sql.DriverCursor, int], None] | None = None,
    ) -> int:
        """Append one event inside the caller's transaction and return its index.

        The leaf holds the event type, every ref (the ``ledger_refs`` rows are only an index
        of them) and, for a stored document, the SHA-256 of its exact bytes. ``checkpoint``
        signs a checkpoint right after the event (revocations, status changes, imports);
        one is also signed every ``checkpoint_every`` events or ``checkpoint_interval``.
        ``with_rows(cursor, index)`` writes the caller's own rows for the event (the
        decision row) along with the ledger's, on the driver cursor (fixed statements).
        """
        # PostgreSQL: in one pipeline (consent.driver_sql.pipeline), the lock and the size
        # read go out together (the server takes the lock, then reads the size in a snapshot
        # taken after it holds the lock), and the inserts all together. Only driver
        # statements run in it: SQLAlchemy reads a pipelined result as empty.
        with driver_sql.pipeline(session):
            index = self._write(session, event_type, body, at=at, refs=refs,
                                document=document)
            if with_rows is not None:
                with_rows(driver_sql.cursor(session), index)
        session.info["ledger_appended"] = True
        if checkpoint or self._checkpoint_due(session, index + 1, at):
            self._sign_checkpoint(session, index + 1, at, sync=checkpoint)
        return index

    def _write(self, session: Session, event_type: EventType, body: Mapping[str, Any], *,
               at: datetime, refs: Iterable[tuple[str, str]], document: bytes | None) -> int:
        self._lock(session)
        # Fixed statements on the driver's own cursor (see consent.driver_sql): an append is
        # on the hot path of every decision, and SQLAlchemy's per-statement set-up cost
        # several times the hashing and the commit together.
        cur = driver_sql.cursor(session)
        index = _size(cur)
        ref_list = sorted(set(refs))
        content = {"index": index, "type": event_type.value, "time": format_timestamp(at),
                   **body, "refs": [list(r) for r in ref_list]}
        if document is not None:
            content["document_sha256"] = hashlib.sha256(document).hexdigest()
        data = canonical_bytes(content)
        leaf = merkle.leaf_hash(data)
        try:
            nodes = merkle.nodes_completed_by_append(index, leaf, _driver_reader(cur))
        except merkle.MerkleError as exc:
            raise LedgerError(f"the ledger's stored hashes are incomplete, nothing can be "
                              f"appended (tampering? run `studio ledger verify`): {exc}"
                              ) from exc
        cur.execute(_INSERT_ENTRY, (index, event_type.value, data, cur.bind_time(at)))
        # One multi-row INSERT each (one round trip on PostgreSQL, where executemany
        # costs a pipeline synchronisation).
        cur.execute(_rows_insert(_INSERT_NODE, len(nodes)),
                    [v for (lv, i), h in nodes for v in (lv, i, h)])
        if ref_list:
            cur.execute(_rows_insert(_INSERT_REF, len(ref_list)),
                        [v for k, ref in ref_list for v in (index, k, ref)])
        return index

    def _checkpoint_due(self, session: Session, size: int, at: datetime) -> bool:
        # The newest checkpoint this process knows of: read once, then kept up to date by
        # its own commits. Another process's checkpoints are not seen, which can only make
        # this one sign more often, never less.
        last = self._last_checkpoint
        if last is None:
            row = session.connection().execute(_LAST_CHECKPOINT).first()
            if row is None:
                return True
            last = self._last_checkpoint = (int(row[0]), row[1])
        return (size - last[0] >= self.checkpoint_every
                or at - last[1] >= self.checkpoint_interval)

    # ---------------------------------------------------------------- reading

    @staticmethod
    def size(session: Session) -> int:
        return _size(driver_sql.cursor(session))

    @staticmethod
    def entry(session: Session, index: int) -> LedgerEntry:
        row = session.get(LedgerEntryRow, index)
        if row is None:
            raise NotFoundError(f"no ledger entry at index {index}")
        return LedgerEntry(row.idx, EventType(row.event_type), row.data, row.created_at)

    @staticmethod
    def entries_referencing(
        session: Session, ref_kind: str, ref_id: str, event_type: EventType | None = None
    ) -> list[LedgerEntry]:
        query = (
            select(LedgerEntryRow)
            .join(LedgerRefRow, LedgerRefRow.entry_idx == LedgerEntryRow.idx)
            .where(LedgerRefRow.ref_kind == ref_kind, LedgerRefRow.ref_id == ref_id)
            .order_by(LedgerEntryRow.idx)
        )
        if event_type is not None:
            query = query.where(LedgerEntryRow.event_type == event_type.value)
        return [
            LedgerEntry(r.idx, EventType(r.event_type), r.data, r.created_at)
            for r in session.scalars(query)
        ]

    def root(self, session: Session, size: int | None = None) -> bytes:
        size = self.size(session) if size is None else size
        return merkle.root(size, _reader(session))

    def inclusion_proof(
        self, session: Session, index: int, size: int | None = None
    ) -> InclusionProof:
        size = self.size(session) if size is None else size
        if not 0 <= index < size:
            raise LedgerError(f"index {index} is outside a tree of size {size}")
        read = _reader(session)
        leaf = read([(0, index)])[(0, index)]
        hashes = merkle.inclusion_proof(index, size, read)
        return InclusionProof(index, size, leaf, tuple(hashes), merkle.root(size, read))

    def consistency_proof(self, session: Session, old_size: int, new_size: int) -> ConsistencyProof:
        if not 0 <= old_size <= new_size <= self.size(session):
            raise LedgerError(
                f"cannot prove {old_size} → {new_size}: sizes must satisfy 0 ≤ old ≤ new ≤ "
                f"{self.size(session)}"
            )
        read = _reader(session)
        hashes = merkle.consistency_proof(old_size, new_size, read)
        return ConsistencyProof(
            old_size, new_size, merkle.root(old_size, read), merkle.root(new_size, read),
            tuple(hashes),
        )

    # ---------------------------------------------------------------- checkpoints

    def checkpoint(self, session: Session, at: datetime) -> str:
        """Sign and store a checkpoint of the current tree; return the signed note."""
        self._lock(session)
        size = self.size(session)
        existing = session.get(CheckpointRow, size)
        if existing is not None:
            return existing.note
        return self._sign_checkpoint(session, size, at)

    def _sign_checkpoint(self, session: Session, size: int, at: datetime, *,
                         sync: bool = True) -> str:
        """Sign and store; the log line follows the commit. ``sync``: wait for the disk
        (every checkpoint a revocation, key or status change asked for); the periodic ones
        on the decision path are left to the OS to flush."""
        root = self.root(session, size)
        note = sign_checkpoint(Checkpoint(self.origin, size, root), self._signer)
        cur = driver_sql.cursor(session)
        cur.execute(_INSERT_CHECKPOINT, (size, root, note, cur.bind_time(at)))
        # Known at once (many appends may share one transaction); forgotten if the
        # transaction rolls back, so that the next append looks again.
        self._last_checkpoint = (size, at)
        session.info.setdefault("after_rollback", []).append(
            lambda: setattr(self, "_last_checkpoint", None))
        if self.log is not None:
            # Only once the transaction commits: a rolled-back checkpoint in the log would
            # read as a truncated ledger.
            notes = session.info.setdefault("checkpoint_notes", [])
            if not notes:
                log, info = self.log, session.info
                session.info.setdefault("after_commit", []).append(
                    lambda: log.append(notes, sync=info.get("checkpoint_sync", False)))
            notes.append(note)
            if sync:
                session.info["checkpoint_sync"] = True
        return note

    @staticmethod
    def latest_checkpoint(session: Session) -> str | None:
        row = session.scalars(
            select(CheckpointRow).order_by(CheckpointRow.size.desc()).limit(1)
        ).first()
        return None if row is None else row.note

    def open_checkpoint(self, note: str) -> Checkpoint:
        return open_checkpoint(note, self.verifier)

    # ---------------------------------------------------------------- auditing

    def verify(self, session: Session, *, batch: int = 5000,
               logs: Sequence[CheckpointLog] | None = None) -> LedgerReport:
        """Recompute everything from the stored leaves and report every discrepancy: the
        leaves themselves, every stored node, every signed checkpoint (database and
        ``logs``, by default this ledger's checkpoint log), every index row and stored
        document (see :mod:`consent.ledger_audit`)."""
        from consent.ledger_audit import audit  # it builds on this module's types

        if logs is None:
            logs = [self.log] if self.log is not None else []
        return audit(session, self.origin, self.verifier, logs, batch=batch)


_LAST_CHECKPOINT = (select(CheckpointRow.size, CheckpointRow.created_at)
                    .order_by(CheckpointRow.size.desc()).limit(1))

_SIZE = "SELECT max(idx) FROM ledger_entries"
_INSERT_ENTRY = "INSERT INTO ledger_entries (idx, event_type, data, created_at) VALUES (?, ?, ?, ?)"
_INSERT_NODE = "INSERT INTO ledger_nodes (level, idx, hash) VALUES "
_INSERT_REF = "INSERT INTO ledger_refs (entry_idx, ref_kind, ref_id) VALUES "
_PG_LOCK = "SELECT pg_advisory_xact_lock(?)"
_INSERT_CHECKPOINT = ("INSERT INTO ledger_checkpoints (size, root, note, created_at) "
                      "VALUES (?, ?, ?, ?)")

_MAX_OR_TERMS = 128
#: Most values one IN list carries (SQLite's and psycopg's parameter limits are far above).
_MAX_IN = 500


@functools.lru_cache(maxsize=128)
def _rows_insert(head: str, rows: int) -> str:
    """``head`` followed by ``rows`` rows of three placeholders."""
    return head + ", ".join(["(?, ?, ?)"] * rows)


def _size(cur: driver_sql.DriverCursor) -> int:
    top = cur.one(_SIZE)
    return 0 if top is None else int(top) + 1


@functools.lru_cache(maxsize=_MAX_OR_TERMS)
def _nodes_or(count: int) -> str:
    terms = " OR ".join(["(level = ? AND idx = ?)"] * count)
    return f"SELECT level, idx, hash FROM ledger_nodes WHERE {terms}"  # noqa: S608


@functools.lru_cache(maxsize=64)
def _nodes_in(count: int) -> str:
    marks = ", ".join(["?"] * count)
    return f"SELECT idx, hash FROM ledger_nodes WHERE level = ? AND idx IN ({marks})"  # noqa: S608


def node_reader(session: Session) -> merkle.NodeReader:
    """Batch reads of stored subtree hashes in the session's transaction."""
    return _driver_reader(driver_sql.cursor(session))


def _reader(session: Session) -> merkle.NodeReader:
    return node_reader(session)


def _driver_reader(cur: driver_sql.DriverCursor) -> merkle.NodeReader:
    def read(ids: Sequence[merkle.NodeId]) -> Mapping[merkle.NodeId, bytes]:
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        by_level: dict[int, list[int]] = {}
        for level, idx in wanted:
            by_level.setdefault(level, []).append(idx)
        found: dict[merkle.NodeId, bytes] = {}
        if len(wanted) <= _MAX_OR_TERMS and (len(by_level) > 1 or len(wanted) == 1):
            # A root, a proof or an append: one node on each of ~log2(n) levels. One
            # statement of primary-key equalities joined by OR (both backends use the index
            # for each) instead of one round trip per level.
            params = [v for node in wanted for v in node]
            for level, idx, value in cur.rows(_nodes_or(len(wanted)), params):
                found[(int(level), int(idx))] = driver_sql.as_bytes(value)
            return found
        # Many nodes of few levels (audits): IN lookups per level; row-value IN lists are
        # not index-friendly on SQLite.
        for level, idxs in by_level.items():
            for start in range(0, len(idxs), _MAX_IN):
                chunk = idxs[start:start + _MAX_IN]
                for idx, value in cur.rows(_nodes_in(len(chunk)), [level, *chunk]):
                    found[(level, int(idx))] = driver_sql.as_bytes(value)
        return found

    return read
