"""What the ledger's leaves say, read from the leaves themselves and checked against signed
checkpoints: the only source the gate trusts for *which* documents exist.

Why: every table beside the ledger (grants, revocations, ``ledger_refs``…) is a mutable row
that someone with write access to the database can delete, insert or edit, and a deleted
revocation row used to give back an allow. So the registry keeps, per process, a view built
by reading every leaf once (then only the new ones, at every decision), recomputing the
Merkle root as it goes and comparing it with every signed checkpoint it knows (database and
checkpoint log files). The gate then takes a document into account only if a leaf records
its exact bytes' hash, and treats a leaf without its document, or a document without its
leaf, as tampering.

Leaves written before revision 0003 carry no ``document_sha256``: their documents are
matched by the payload hash the body recorded (SHA-256 of the canonical
signed payload) instead of the hash of the exact bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from consent import driver_sql, ledger_snapshot, merkle
from consent.approval import APPROVAL_EVENTS, ApprovalLeaves
from consent.canonical import canonical_bytes
from consent.checkpoint_log import CheckpointLog
from consent.ledger import node_reader
from consent.note import NoteError, NoteVerifier, open_checkpoint

# Fixed driver statements (consent.driver_sql): they run at every decision. Checkpoints and
# leaves are read in one statement (one round trip on PostgreSQL), hence from one snapshot:
# the leaves read cover every checkpoint read. Checkpoint rows come first (kind 0: size,
# note), then the leaves (kind 1: index, event type, data).
_NEW_CHECKPOINTS = "SELECT size, note FROM ledger_checkpoints WHERE size > ? ORDER BY size"
_NEW_LEAVES = "SELECT idx, event_type, data FROM ledger_entries WHERE idx >= ? ORDER BY idx"
_NEW_ROWS = ("SELECT 0, size, note, NULL FROM ledger_checkpoints WHERE size > ? "
             "UNION ALL SELECT 1, idx, event_type, data FROM ledger_entries WHERE idx >= ? "
             "ORDER BY 1, 2")

DOCUMENT_EVENTS = frozenset({
    "performer_registered", "performer_updated", "key_added", "production_key_added",
    "key_revoked", "revocation", "grant_imported",
})


def payload_sha256(raw: bytes) -> str | None:
    """SHA-256 of the canonical signed payload of a stored document (what old leaves hold)."""
    try:
        value = json.loads(raw)
        return hashlib.sha256(canonical_bytes(value["signed"])).hexdigest()
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(frozen=True)
class DocumentFact:
    """What one leaf records about a stored signed document."""

    index: int
    time: datetime
    event: str
    performer_id: str
    payload_sha256: str
    #: SHA-256 of the exact stored bytes (None in leaves older than revision 0003).
    raw_sha256: str | None
    #: grant: signer key; key: the key it supersedes; revocation: "kind:target".
    detail: str | None = None

    def matches(self, raw: bytes) -> bool:
        if self.raw_sha256 is not None:
            return hashlib.sha256(raw).hexdigest() == self.raw_sha256
        return payload_sha256(raw) == self.payload_sha256


@dataclass
class PerformerLeaves:
    records: dict[int, DocumentFact] = field(default_factory=dict)
    keys: dict[str, DocumentFact] = field(default_factory=dict)
    grants: dict[str, DocumentFact] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredDocuments:
    """One performer's stored rows as read for a decision: (id, raw bytes) per kind."""

    records: Sequence[tuple[int, bytes]] = ()
    keys: Sequence[tuple[str, bytes]] = ()
    grants: Sequence[tuple[str, bytes]] = ()
    revocations: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True)
class Provenance:
    """The documents that a leaf vouches for, and what is wrong (tampering) if anything."""

    records: list[bytes]
    keys: list[bytes]
    grants: list[bytes]
    revocations: list[bytes]
    revoked_targets: frozenset[str]
    record_revisions: int
    problems: list[str]


#: A saved view (consent.ledger_snapshot) is rewritten once this many leaves, or a quarter
#: of the tree if more, were read since the last one: rare, since each write costs O(size).
SNAPSHOT_EVERY = 4096


class LedgerFacts:
    """An incrementally refreshed, checkpoint-checked view of the ledger's leaves.

    ``snapshot``/``snapshot_key``: where to keep a saved copy of the view and the HMAC key
    that authenticates it (see :mod:`consent.ledger_snapshot`); without them every new
    process reads every leaf.
    """

    def __init__(self, origin: str, verifier: NoteVerifier,
                 logs: Sequence[CheckpointLog] = (), *,
                 snapshot: Path | None = None, snapshot_key: bytes | None = None) -> None:
        self.origin = origin
        self._snapshot = snapshot if snapshot_key is not None else None
        self._snapshot_key = snapshot_key or b""
        self._snapshot_tried = False
        #: Tree size of the snapshot on disk (read or written by this view).
        self.snapshot_size = 0
        #: Whether this view started from a saved snapshot rather than leaf 0.
        self.from_snapshot = False
        # Leaves parsed for state outside the tables the snapshot writes (outputs and
        # approvals): saved as leaves and parsed again when a snapshot is loaded.
        self._replay: list[tuple[int, str, bytes]] = []
        self._verifier = verifier
        self._logs = list(logs)
        self._log_offsets = [0] * len(self._logs)
        self.size = 0
        self._frontier = merkle.Frontier()
        self._last_leaf = b""
        self.newest_time: datetime | None = None
        #: Sticky findings that make every decision deny: this process saw tampering.
        self.problems: list[str] = []
        self._db_checkpoints_seen = -1
        self._pending: dict[int, tuple[bytes, str]] = {}  # size -> (root, where it came from)
        self._verified: dict[int, bytes] = {}  # checkpoint sizes matched against the leaves
        #: Largest tree size covered by a checkpoint that matches the leaves.
        self.covered = 0
        #: Largest tree size any known signed checkpoint claims.
        self.newest_checkpoint = 0
        self.performers: dict[str, PerformerLeaves] = _PerformerTable()
        self.production_keys: dict[str, DocumentFact] = {}
        self.revocations: dict[str, DocumentFact] = {}
        #: Grant or key id -> the first revocation leaf naming it.
        self.revoked: dict[str, DocumentFact] = {}
        #: Key id -> index of the key_added leaf of its successor (rotation).
        self.retired_at: dict[str, int] = {}
        #: Published outputs and performers' approvals of them (consent.approval).
        self.approvals = ApprovalLeaves()

    # ---------------------------------------------------------------- loading

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def refresh(self, session: Session,
                then: Callable[[driver_sql.DriverCursor], None] | None = None) -> bool:
        """Read what was appended since the last call; check every checkpoint known.

        ``then(cursor)`` sends the caller's next statement right after the read of the new
        leaves, on its own cursor, in the same PostgreSQL pipeline (transaction start, new
        leaves and the caller's read in one round trip). Only once this view is warm:
        returns whether it was sent (if not, the caller runs it itself)."""
        cur = driver_sql.cursor(session)
        if not self._snapshot_tried:
            self._snapshot_tried = True
            if self.size == 0 and self._snapshot is not None:
                self._load_snapshot(session, self._snapshot)
        rows: Iterable[tuple[int, str, Any]]
        if self.size == 0:
            # Every leaf: streamed from the cursor (a million of them would not fit a list
            # comfortably), checkpoints first, in their own statement.
            self._read_checkpoints(cur.rows(_NEW_CHECKPOINTS, (self._db_checkpoints_seen,)))
            rows = cur.execute(_NEW_LEAVES, (0,))
            sent = False
        else:
            # The few leaves appended since the last decision, with the new checkpoints.
            with driver_sql.pipeline(session):
                result = cur.execute(_NEW_ROWS, (self._db_checkpoints_seen, self.size - 1))
                if then is not None:
                    then(driver_sql.cursor(session))
                both = list(result.fetchall())
            sent = then is not None
            split = next((n for n, row in enumerate(both) if row[0] == 1), len(both))
            self._read_checkpoints([(size, note) for _kind, size, note, _ in both[:split]])
            rows = [(idx, event_type, raw) for _kind, idx, event_type, raw in both[split:]]
        first = self.size > 0
        for idx, event_type, raw in rows:
            data = driver_sql.as_bytes(raw)
            if first:
                first = False
                if idx != self.size - 1 or merkle.leaf_hash(data) != self._last_leaf:
                    self._problem(f"ledger entry {self.size - 1} changed or vanished since it "
                                  "was read (database rolled back or rewritten?)")
                    return sent
                continue
            self._add(idx, event_type, data)
        if first:
            self._problem(f"the ledger shrank below {self.size} entries since it was read "
                          "(truncated or rolled back)")
            return sent
        self._settle_checkpoints(session)
        if self._snapshot is not None and self._snapshot_due():
            self._save_snapshot(self._snapshot)
        return sent

    def _read_checkpoints(self, db_rows: Sequence[tuple[int, str]]) -> None:
        for size, note in db_rows:
            self._db_checkpoints_seen = max(self._db_checkpoints_seen, int(size))
            self._learn(note, f"database checkpoint {size}", int(size))
        for n, log in enumerate(self._logs):
            if log.size() == self._log_offsets[n]:
                continue
            if log.size() < self._log_offsets[n]:
                self._problem(f"checkpoint log {log.path} shrank (rewritten?)")
            notes, self._log_offsets[n], bad = log.read_from(self._log_offsets[n])
            for line in bad:
                self._problem(f"unreadable checkpoint log line: {line}")
            for note in notes:
                self._learn(note, f"checkpoint log {log.path.name}", None)

    def _learn(self, note: str, where: str, claimed_size: int | None) -> None:
        try:
            cp = open_checkpoint(note, self._verifier, origin=self.origin)
        except NoteError as exc:
            self._problem(f"{where} does not verify with the registry key: {exc}")
            return
        if claimed_size is not None and cp.size != claimed_size:
            self._problem(f"{where} holds a note for size {cp.size}")
            return
        self.newest_checkpoint = max(self.newest_checkpoint, cp.size)
        known = self._verified.get(cp.size)
        if known is not None:
            if known != cp.root:
                self._problem(f"{where} (size {cp.size}) has another root than the checkpoint "
                              "of that size already matched: the log forked")
            return
        if cp.size in self._pending and self._pending[cp.size][0] != cp.root:
            self._problem(f"two signed checkpoints of size {cp.size} disagree ({where})")
            return
        self._pending[cp.size] = (cp.root, where)

    def _settle_checkpoints(self, session: Session) -> None:
        """Checkpoints not met while reading leaves: older ones by consistency proof from the
        stored nodes to the root computed here; newer ones mean the tree lost entries."""
        for size, (root, where) in sorted(self._pending.items()):
            if size > self.size:
                self._problem(f"{where} was signed at tree size {size} but the database holds "
                              f"only {self.size} entries (truncated or rolled back)")
                continue
            del self._pending[size]
            try:
                proof = merkle.consistency_proof(size, self.size, node_reader(session))
                merkle.verify_consistency(size, self.size, root, self._frontier.root(), proof)
            except merkle.MerkleError as exc:
                self._problem(f"{where} (size {size}) is not consistent with the ledger's "
                              f"entries: {exc}")
                continue
            self._verified[size] = root
            self.covered = max(self.covered, size)

    def _add(self, idx: int, event_type: str, data: bytes) -> None:
        if idx != self.size:
            self._problem(f"ledger entries {self.size}..{idx - 1} are missing (deleted rows)"
                          if idx > self.size else f"ledger entry {idx} repeats")
        leaf = merkle.leaf_hash(data)
        self._frontier.push(leaf)
        self._last_leaf = leaf
        self.size = idx + 1
        if (event_type not in DOCUMENT_EVENTS and event_type not in APPROVAL_EVENTS
                and self._quick_look(idx, event_type, data)):
            pass  # decisions and outputs: nothing the gate needs beyond their time
        else:
            self._parse(idx, event_type, data)
            if event_type not in DOCUMENT_EVENTS:
                self._replay.append((idx, event_type, data))
        pending = self._pending.get(self.size)
        if pending is not None:
            del self._pending[self.size]
            if self._frontier.root() != pending[0]:
                self._problem(f"the ledger's entries up to {self.size} do not produce the root "
                              f"signed in {pending[1]}: an entry was altered")
            else:
                self._verified[self.size] = pending[0]
                self.covered = max(self.covered, self.size)

    def _quick_look(self, idx: int, event_type: str, data: bytes) -> bool:
        """Index, type and time of a leaf without parsing it (most leaves are decisions).

        The canonical encoding sorts keys and has no spaces, so the fields appear exactly
        like this; anything else gets the full parse (which names what is wrong). The leaf
        bytes themselves are covered by the checkpoint roots computed above."""
        if (b'"index":%d,' % idx not in data
                or b'"type":"%s"' % event_type.encode() not in data):
            return False
        start = data.rfind(b'"time":"')  # the top-level one: only "type" sorts after it
        end = data.find(b'"', start + 8)
        if start < 0 or end < 0:
            return False
        try:
            time = datetime.fromisoformat(data[start + 8:end].decode())
        except (ValueError, UnicodeDecodeError):
            return False
        if self.newest_time is None or time > self.newest_time:
            self.newest_time = time
        return True

    def _parse(self, idx: int, event_type: str, data: bytes) -> None:
        try:
            body = json.loads(data)
            ok = (isinstance(body, dict) and body.get("index") == idx
                  and body.get("type") == event_type)
        except ValueError:
            ok, body = False, None
        if not ok or not isinstance(body, dict):
            self._problem(f"ledger entry {idx} does not match its own index and type "
                          "(edited or reordered)")
        else:
            try:
                time = datetime.fromisoformat(body["time"])
                if self.newest_time is None or time > self.newest_time:
                    self.newest_time = time
                if event_type in DOCUMENT_EVENTS:
                    self._document(idx, event_type, body, time)
                elif event_type in APPROVAL_EVENTS:
                    self.approvals.add(idx, event_type, body, time)
            except (KeyError, TypeError, ValueError) as exc:
                self._problem(f"ledger entry {idx} is malformed ({exc!r})")

    def _document(self, idx: int, event: str, body: Mapping[str, Any], time: datetime) -> None:
        raw = body.get("document_sha256")
        pid = str(body.get("performer_id", ""))
        if event in ("performer_registered", "performer_updated"):
            fact = DocumentFact(idx, time, event, pid, body["record_sha256"], raw)
            self._performer(pid).records[int(body["revision"])] = fact
        elif event == "key_added":
            fact = DocumentFact(idx, time, event, pid, body["binding_sha256"], raw,
                                body.get("supersedes"))
            self._performer(pid).keys[body["key_id"]] = fact
            if fact.detail:
                self.retired_at.setdefault(fact.detail, idx)
        elif event == "production_key_added":
            fact = DocumentFact(idx, time, event, "", body["binding_sha256"], raw)
            self.production_keys[body["key_id"]] = fact
        elif event == "grant_imported":
            fact = DocumentFact(idx, time, event, pid, body["grant_sha256"], raw,
                                body["signer_key_id"])
            self._performer(pid).grants[body["grant_id"]] = fact
        else:  # revocation, key_revoked
            fact = DocumentFact(idx, time, event, pid, body["revocation_sha256"], raw,
                                f"{body['target_kind']}:{body['target_id']}")
            self.revocations[body["revocation_id"]] = fact
            self.revoked.setdefault(body["target_id"], fact)

    def _performer(self, pid: str) -> PerformerLeaves:
        found = self.performers.get(pid)
        if found is None:
            found = self.performers[pid] = PerformerLeaves()
        return found

    # ---------------------------------------------------------------- snapshot

    def _snapshot_due(self) -> bool:
        """Only a view without findings whose whole tree a matched checkpoint covers."""
        return (not self.problems and not self._pending and self.covered == self.size
                and self.size - self.snapshot_size >= max(SNAPSHOT_EVERY, self.size // 4))

    def _save_snapshot(self, path: Path) -> None:
        # Every table _document fills is written here; the other parsed leaves are replayed.
        performers = self.performers
        assert isinstance(performers, _PerformerTable)
        state = {
            "origin": self.origin, "size": self.size,
            "root": self._frontier.root().hex(), "last_leaf": self._last_leaf.hex(),
            "frontier": [[level, h.hex()] for level, h in self._frontier.state()],
            "newest_time": None if self.newest_time is None else self.newest_time.isoformat(),
            "covered": self.covered, "newest_checkpoint": self.newest_checkpoint,
            "db_checkpoints_seen": self._db_checkpoints_seen,
            "logs": [[str(log.path), offset]
                     for log, offset in zip(self._logs, self._log_offsets, strict=True)],
            "production_keys": list(ledger_snapshot.rows(self.production_keys)),
            "revocations": list(ledger_snapshot.rows(self.revocations)),
            "revoked": list(ledger_snapshot.rows(self.revoked)),
            "retired_at": self.retired_at,
            "replay": [[i, e, d.decode()] for i, e, d in self._replay],
        }
        try:
            ledger_snapshot.write(path, self._snapshot_key, state, performers.as_text())
        except (OSError, ValueError):
            return  # an unwritable data folder only costs the next process a full read
        self.snapshot_size = self.size

    def _load_snapshot(self, session: Session, path: Path) -> None:
        """Start from a saved view if it is ours and the database still holds its tree."""
        saved = ledger_snapshot.read(path, self._snapshot_key, self.origin)
        if saved is None:
            return
        state, texts = saved
        try:
            size = int(state["size"])
            root = bytes.fromhex(state["root"])
            frontier = merkle.Frontier.restored(
                size, [(int(lv), bytes.fromhex(h)) for lv, h in state["frontier"]])
            if frontier.root() != root or size == 0:
                return
            # The database must still hold that tree (else: read every leaf, which names
            # what changed).
            if merkle.root(size, node_reader(session)) != root:
                return
            revocations = {rid: DocumentFact(*ledger_snapshot.fact_args(row))
                           for rid, row in state["revocations"]}
            production = {kid: DocumentFact(*ledger_snapshot.fact_args(row))
                          for kid, row in state["production_keys"]}
            revoked = {str(target): DocumentFact(*ledger_snapshot.fact_args(row))
                       for target, row in state["revoked"]}
            retired = {str(k): int(v) for k, v in state["retired_at"].items()}
            newest = state["newest_time"]
            offsets = {str(p): int(o) for p, o in state["logs"]}
            replay = [(int(i), str(e), str(d).encode()) for i, e, d in state["replay"]]
            performers = _PerformerTable(texts)
        except (KeyError, TypeError, ValueError, merkle.MerkleError):
            return
        self.size = size
        self._frontier = frontier
        self._last_leaf = bytes.fromhex(state["last_leaf"])
        self.covered = self.snapshot_size = size
        self.newest_checkpoint = int(state["newest_checkpoint"])
        self._db_checkpoints_seen = int(state["db_checkpoints_seen"])
        self._log_offsets = [offsets.get(str(log.path), 0) for log in self._logs]
        self.newest_time = None if newest is None else datetime.fromisoformat(newest)
        self.performers = performers
        self.production_keys = production
        self.revocations = revocations
        self.revoked = revoked
        self.retired_at = retired
        for idx, event_type, data in replay:
            self._parse(idx, event_type, data)
        self._replay = replay
        self.from_snapshot = True

    # ---------------------------------------------------------------- provenance

    def key_status(self, key_id: str) -> str:
        if key_id in self.revoked:
            return "revoked"
        return "retired" if key_id in self.retired_at else "active"

    def provenance(self, pid: str, stored: StoredDocuments) -> Provenance:
        """Keep the stored documents a leaf vouches for; name every row without its leaf and
        every leaf without its row (each is tampering, and denies)."""
        leaves = self.performers.get(pid, PerformerLeaves())
        problems = list(self.problems)
        if self.covered < self.newest_checkpoint:
            problems.append(f"the ledger is not consistent with the newest signed checkpoint "
                            f"(size {self.newest_checkpoint}); refusing to decide")
        records = _vouched("performer record", pid, stored.records, leaves.records, problems)
        keys = _vouched("key binding", pid, stored.keys, leaves.keys, problems)
        grants = _vouched("grant", pid, stored.grants, leaves.grants, problems)
        for gid, fact in leaves.grants.items():
            if fact.index >= self.covered:
                problems.append(f"grant {gid}'s import (ledger entry {fact.index}) is not "
                                "covered by any signed checkpoint (appended by hand?)")
            key = fact.detail or ""
            retired = self.retired_at.get(key)
            if retired is not None and retired < fact.index:
                problems.append(f"grant {gid} was recorded as imported (entry {fact.index}) "
                                f"after its signing key {key[:12]} was retired (entry "
                                f"{retired}); a retired key signs nothing new")
        revocations: list[bytes] = []
        for rid, raw in stored.revocations:
            rfact = self.revocations.get(rid)
            if rfact is None or not rfact.matches(raw):
                problems.append(f"revocation {rid} on file is not the one the ledger records "
                                "(inserted or edited row)")
            else:
                revocations.append(raw)
        targets = [*leaves.grants, *leaves.keys]
        revoked = frozenset(t for t in targets if t in self.revoked)
        return Provenance(records, keys, grants, revocations, revoked,
                          max(leaves.records, default=0), problems)


def _vouched(kind: str, pid: str, rows: Iterable[tuple[Any, bytes]],
             leaves: Mapping[Any, DocumentFact], problems: list[str]) -> list[bytes]:
    kept: list[bytes] = []
    seen: set[Any] = set()
    for ref, raw in rows:
        seen.add(ref)
        fact = leaves.get(ref)
        if fact is None:
            problems.append(f"{kind} {ref} of {pid} has no ledger entry (row inserted "
                            "directly: tampering)")
        elif not fact.matches(raw):
            problems.append(f"{kind} {ref} of {pid} differs from the document its ledger "
                            f"entry {fact.index} records (edited row: tampering)")
        else:
            kept.append(raw)
    for ref, fact in leaves.items():
        if ref not in seen:
            problems.append(f"the ledger records {kind} {ref} of {pid} (entry {fact.index}) "
                            "but the registry no longer holds it (deleted row: tampering)")
    return kept


class _PerformerTable(dict[str, PerformerLeaves]):
    """Performer id -> PerformerLeaves; those loaded from a snapshot stay JSON text until
    first asked for (a decision names one or two performers out of thousands)."""

    def __init__(self, text: dict[str, bytes] | None = None) -> None:
        super().__init__()
        self._text: dict[str, bytes] = text or {}

    def __missing__(self, pid: str) -> PerformerLeaves:
        raw = self._text.pop(pid)  # KeyError: unknown performer
        value = json.loads(raw)
        leaves = PerformerLeaves(
            {int(k): DocumentFact(*ledger_snapshot.fact_args(r)) for k, r in value["r"]},
            {str(k): DocumentFact(*ledger_snapshot.fact_args(r)) for k, r in value["k"]},
            {str(k): DocumentFact(*ledger_snapshot.fact_args(r)) for k, r in value["g"]})
        self[pid] = leaves
        return leaves

    def get(self, pid: str, default: Any = None) -> Any:
        try:
            return self[pid]
        except KeyError:
            return default

    def __contains__(self, pid: object) -> bool:
        return dict.__contains__(self, pid) or pid in self._text

    def _all(self) -> None:
        for pid in list(self._text):
            self[pid]  # loads it

    def __iter__(self) -> Any:
        self._all()
        return dict.__iter__(self)

    def __len__(self) -> int:
        return dict.__len__(self) + len(self._text)

    def keys(self) -> Any:
        self._all()
        return dict.keys(self)

    def values(self) -> Any:
        self._all()
        return dict.values(self)

    def items(self) -> Any:
        self._all()
        return dict.items(self)

    def as_text(self) -> dict[str, str]:
        """Every performer as the JSON text :meth:`__missing__` reads."""
        out = {pid: text.decode() for pid, text in self._text.items()}
        for pid, leaves in dict.items(self):
            out[pid] = json.dumps({
                "r": list(ledger_snapshot.rows(leaves.records)),
                "k": list(ledger_snapshot.rows(leaves.keys)),
                "g": list(ledger_snapshot.rows(leaves.grants))}, separators=(",", ":"))
        return out
