"""``ledger verify``: recompute everything from the leaves and name every difference.

What is recomputed, and why each matters to someone who can write the database:

* every leaf: its own index and type (edited, deleted, reordered or inserted rows);
* every stored subtree hash at every level (an edited interior node would only show when
  a later inclusion proof failed);
* every signed checkpoint (database and checkpoint log files) against the recomputed root
  at its size (a leaf rewritten together with its hashes; a truncated tail);
* every index row against the leaves: ``ledger_refs``, and the ids, columns and exact
  bytes of every stored document (grants, revocations, performer records, key bindings,
  production keys, performers' approvals of outputs, decisions) against the hash its leaf
  records; identity templates
  against the enrolment and deletion events.

Leaves are read in index-ordered batches; the tree is rebuilt in memory (about 140 MB per
million entries) so that the stored nodes can be compared level by level.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from array import array
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import merkle
from consent.checkpoint_log import CheckpointLog
from consent.ledger import LedgerReport, Problem, derived_refs
from consent.ledger_facts import DocumentFact
from consent.note import NoteError, NoteVerifier, open_checkpoint
from consent.store import (
    ApprovalRow,
    CheckpointRow,
    DecisionRow,
    GrantRow,
    IdentityTemplateRow,
    LedgerEntryRow,
    LedgerNodeRow,
    LedgerRefRow,
    PerformerKeyRow,
    PerformerRow,
    ProductionKeyRow,
    RevocationRow,
)

#: Findings listed per kind before the rest are only counted (a wiped table is one story).
MAX_PER_KIND = 50


class _Findings:
    def __init__(self, report: LedgerReport) -> None:
        self.report = report
        self.counts: dict[str, int] = {}

    def add(self, index: int | None, kind: str, detail: str) -> None:
        n = self.counts[kind] = self.counts.get(kind, 0) + 1
        if n <= MAX_PER_KIND:
            self.report.problems.append(Problem(index, kind, detail))

    def close(self) -> None:
        for kind, n in self.counts.items():
            if n > MAX_PER_KIND:
                self.report.problems.append(Problem(None, kind, f"... and {n - MAX_PER_KIND} "
                                                    f"more findings of kind {kind}"))


class _Leaves:
    """What the leaves record about stored rows, gathered while streaming them."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, int], DocumentFact] = {}
        self.keys: dict[str, DocumentFact] = {}
        self.production: dict[str, DocumentFact] = {}
        self.grants: dict[str, DocumentFact] = {}
        self.revocations: dict[str, DocumentFact] = {}
        self.approvals: dict[str, DocumentFact] = {}
        self.decisions = array("q")
        self.templates_enrolled: dict[str, int] = {}
        self.template_owner: dict[str, str] = {}
        self.templates_deleted: dict[str, int] = {}

    def add(self, idx: int, event: str, body: Mapping[str, Any]) -> None:
        raw = body.get("document_sha256")
        pid = str(body.get("performer_id", ""))
        time = datetime.fromisoformat(body["time"])
        if event in ("performer_registered", "performer_updated"):
            self.records[(pid, int(body["revision"]))] = DocumentFact(
                idx, time, event, pid, body["record_sha256"], raw)
        elif event == "key_added":
            self.keys[body["key_id"]] = DocumentFact(idx, time, event, pid,
                                                     body["binding_sha256"], raw,
                                                     body.get("supersedes"))
        elif event == "production_key_added":
            self.production[body["key_id"]] = DocumentFact(idx, time, event, "",
                                                           body["binding_sha256"], raw)
        elif event == "grant_imported":
            self.grants[body["grant_id"]] = DocumentFact(idx, time, event, pid,
                                                         body["grant_sha256"], raw,
                                                         body["signer_key_id"])
        elif event in ("revocation", "key_revoked"):
            self.revocations[body["revocation_id"]] = DocumentFact(
                idx, time, event, pid, body["revocation_sha256"], raw,
                f"{body['target_kind']}:{body['target_id']}")
        elif event in ("approval_recorded", "approval_rejected"):
            self.approvals[body["approval_id"]] = DocumentFact(
                idx, time, event, pid, body["approval_sha256"], raw,
                f"{body['grant_id']}:{body['output_sha256']}:{body['decision']}:"
                f"{body['signer_key_id']}")
        elif event == "decision":
            self.decisions.append(idx)
        elif event == "templates_enrolled":
            self.templates_enrolled.update(dict.fromkeys(body["template_sha256"], idx))
            self.template_owner.update(dict.fromkeys(body["template_sha256"], pid))
        elif event == "templates_deleted":
            self.templates_deleted.update(dict.fromkeys(body["template_sha256"], idx))


def audit(session: Session, origin: str, verifier: NoteVerifier,
          logs: Sequence[CheckpointLog] = (), *, batch: int = 5000) -> LedgerReport:
    report = LedgerReport()
    found = _Findings(report)
    checkpoints = _checkpoints(session, origin, verifier, logs, found)
    tree, leaves = _scan_leaves(session, found, batch)
    report.size = tree.size
    _check_nodes(session, tree, found)
    for size, (root, where) in sorted(checkpoints.items()):
        if size > tree.size:
            found.add(tree.size, "truncated", f"{where} was signed at tree size {size} but the "
                      f"ledger has only {tree.size} entries")
            continue
        report.checkpoints_checked += 1
        if tree.root(size) != root:
            found.add(None, "checkpoint_root", f"the entries before index {size} no longer "
                      f"produce the root signed in {where}: an entry before it was altered")
    _check_documents(session, leaves, found)
    found.close()
    return report


def _checkpoints(session: Session, origin: str, verifier: NoteVerifier,
                 logs: Sequence[CheckpointLog], found: _Findings,
                 ) -> dict[int, tuple[bytes, str]]:
    out: dict[int, tuple[bytes, str]] = {}
    notes: list[tuple[str, str, int | None]] = [
        (row.note, f"checkpoint {row.size}", row.size)
        for row in session.scalars(select(CheckpointRow).order_by(CheckpointRow.size))]
    for log in logs:
        texts, _, bad = log.read_from(0)
        for line in bad:
            found.add(None, "checkpoint_log", f"unreadable checkpoint log line: {line}")
        notes += [(t, f"checkpoint log {log.path.name} line {n + 1}", None)
                  for n, t in enumerate(texts)]
    for note, where, size in notes:
        try:
            cp = open_checkpoint(note, verifier)
        except NoteError as exc:
            found.add(None, "checkpoint_signature", f"{where}: {exc}")
            continue
        if cp.origin != origin or (size is not None and cp.size != size):
            found.add(None, "checkpoint_mismatch", f"{where} holds a note for {cp.origin} "
                      f"size {cp.size}")
            continue
        prior = out.get(cp.size)
        if prior is not None and prior[0] != cp.root:
            found.add(None, "checkpoint_fork", f"{where} and {prior[1]} sign different roots "
                      f"for size {cp.size}")
            continue
        out.setdefault(cp.size, (cp.root, where))
    in_db = {size for _, _, size in notes if size is not None}
    for size, (_, where) in sorted(out.items()):
        if size not in in_db:
            found.add(None, "checkpoint_missing", f"{where} (size {size}) is missing from the "
                      "database's checkpoints (deleted row)")
    return out


def _scan_leaves(session: Session, found: _Findings,
                 batch: int) -> tuple[merkle.MemoryTree, _Leaves]:
    tree = merkle.MemoryTree()
    leaves = _Leaves()
    conn = session.connection()
    expected = 0
    last = -1
    while True:
        rows = conn.execute(
            select(LedgerEntryRow.idx, LedgerEntryRow.event_type, LedgerEntryRow.data)
            .where(LedgerEntryRow.idx > last).order_by(LedgerEntryRow.idx).limit(batch)
        ).all()
        if not rows:
            return tree, leaves
        lo, hi = rows[0][0], rows[-1][0]
        refs: dict[int, set[tuple[str, str]]] = {}
        for entry_idx, kind, ref_id in conn.execute(
                select(LedgerRefRow.entry_idx, LedgerRefRow.ref_kind, LedgerRefRow.ref_id)
                .where(LedgerRefRow.entry_idx.between(lo, hi))):
            refs.setdefault(entry_idx, set()).add((kind, ref_id))
        if last < 0:  # refs of entries before the first one (or of deleted ones)
            for (entry_idx,) in conn.execute(select(LedgerRefRow.entry_idx)
                                             .where(LedgerRefRow.entry_idx < lo).limit(1)):
                found.add(entry_idx, "refs", f"ledger_refs rows name entry {entry_idx}, "
                          "which does not exist")
        hashes = []
        for idx, event_type, data in rows:
            if idx != expected:
                if idx > expected:
                    found.add(expected, "deleted", f"entries {expected}..{idx - 1} are "
                              "missing (deleted rows)")
                expected = idx
            hashes.append(merkle.leaf_hash(data))
            body = _check_entry(idx, event_type, data, found)
            stored_refs = refs.pop(idx, set())
            if body is not None:
                want = set(derived_refs(event_type, body))
                for kind, ref in sorted(want - stored_refs):
                    found.add(idx, "refs", f"entry {idx}: index row ({kind}, {ref}) is missing "
                              "from ledger_refs")
                for kind, ref in sorted(stored_refs - want):
                    found.add(idx, "refs", f"entry {idx}: ledger_refs holds ({kind}, {ref}), "
                              "which the entry does not name")
                try:
                    leaves.add(idx, event_type, body)
                except (KeyError, TypeError, ValueError) as exc:
                    found.add(idx, "edited", f"entry {idx} lacks a field its type needs "
                              f"({exc!r})")
            expected += 1
        for entry_idx in sorted(refs):
            found.add(entry_idx, "refs", f"ledger_refs rows name entry {entry_idx}, which "
                      "does not exist")
        tree.extend_leaf_hashes(hashes)
        last = hi


def _check_entry(idx: int, event_type: str, data: bytes,
                 found: _Findings) -> dict[str, Any] | None:
    try:
        body = json.loads(data)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        found.add(idx, "edited", f"entry {idx} is not a JSON object")
        return None
    if body.get("index") != idx:
        found.add(idx, "reordered", f"entry at position {idx} records index "
                  f"{body.get('index')!r}: rows were reordered or renumbered")
    if body.get("type") != event_type:
        found.add(idx, "edited", f"entry {idx}: type column {event_type!r} differs from its "
                  f"data ({body.get('type')!r})")
    return body


def _check_nodes(session: Session, tree: merkle.MemoryTree, found: _Findings) -> None:
    """Every stored subtree hash against the tree rebuilt from the leaves."""
    level_seen: dict[int, int] = {}
    rows = session.connection().execution_options(yield_per=20000).execute(
        select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash)
        .order_by(LedgerNodeRow.level, LedgerNodeRow.idx))
    for level, idx, value in rows:
        want = tree.hashes_at(level)
        level_seen[level] = level_seen.get(level, 0) + 1
        if idx >= len(want) or idx < 0:
            found.add(None, "nodes", f"stored node (level {level}, index {idx}) covers entries "
                      "that do not exist (inserted row, or the entries were deleted)")
        elif value != want[idx] and level == 0:
            found.add(idx, "edited", f"entry {idx} was edited: its data no longer matches its "
                      "stored leaf hash (or the leaf hash was overwritten)")
        elif value != want[idx]:
            found.add(None, "nodes", f"stored subtree hash (level {level}, index {idx}) "
                      "differs from the one recomputed from the entries (edited node: proofs "
                      "would fail)")
    for level in range(tree.levels):
        count = len(tree.hashes_at(level))
        have = level_seen.get(level, 0)
        if have < count:
            found.add(None, "nodes", f"{count - have} stored subtree hash(es) of level {level} "
                      "are missing (deleted rows)")


def _signed(raw: bytes) -> dict[str, Any]:
    """The signed payload of a stored document as plain JSON ({} when unreadable)."""
    try:
        value = json.loads(raw)["signed"]
    except (ValueError, KeyError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _sha(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def _compare(found: _Findings, kind: str, what: str, fact: DocumentFact | None, raw: bytes,
             columns: Iterable[tuple[str, object, object]]) -> None:
    if fact is None:
        found.add(None, "documents", f"{what} has no ledger entry (row inserted directly)")
        return
    if not fact.matches(raw):
        found.add(fact.index, "documents", f"{what}: stored bytes differ from the hash its "
                  f"ledger entry {fact.index} records (edited document)")
    for name, have, want in columns:
        if have != want:
            found.add(fact.index, "documents", f"{what}: column {name} is {have!r} but its "
                      f"ledger entry {fact.index} says {want!r} (edited row)")


def _missing(found: _Findings, kind: str, facts: Mapping[Any, DocumentFact],
             seen: set[Any]) -> None:
    for ref, fact in facts.items():
        if ref not in seen:
            found.add(fact.index, "documents", f"{kind} {ref} recorded at entry {fact.index} "
                      "is missing from the registry (deleted row)")


def _check_documents(session: Session, leaves: _Leaves, found: _Findings) -> None:
    seen: set[Any] = set()
    for r in session.scalars(select(PerformerRow)):
        key = (r.performer_id, r.revision)
        fact = leaves.records.get(key)
        seen.add(key)
        _compare(found, "record", f"performer record {r.performer_id} revision {r.revision}",
                 fact, r.document, [("document_sha256", r.document_sha256,
                                     fact.payload_sha256 if fact else None)])
    _missing(found, "performer record",
             {f"{pid} revision {rev}": f for (pid, rev), f in leaves.records.items()},
             {f"{pid} revision {rev}" for pid, rev in seen})

    seen = set()
    for k in session.scalars(select(PerformerKeyRow)):
        seen.add(k.key_id)
        fact = leaves.keys.get(k.key_id)
        _compare(found, "key", f"key binding {k.key_id[:16]}", fact, k.document,
                 [("performer_id", k.performer_id, fact.performer_id if fact else None),
                  ("supersedes", k.supersedes, fact.detail if fact else None),
                  ("holder_role", k.holder_role,
                   _signed(k.document).get("holder", {}).get("role"))])
    _missing(found, "key binding", leaves.keys, seen)

    seen = set()
    for p in session.scalars(select(ProductionKeyRow)):
        seen.add(p.key_id)
        _compare(found, "key", f"production key {p.key_id[:16]}",
                 leaves.production.get(p.key_id), p.document,
                 [("company", p.company, _signed(p.document).get("company"))])
    _missing(found, "production key", leaves.production, seen)

    seen = set()
    for g in session.connection().execution_options(yield_per=5000).execute(select(
            GrantRow.grant_id, GrantRow.performer_id, GrantRow.signer_key_id,
            GrantRow.document, GrantRow.document_sha256, GrantRow.ledger_index,
            GrantRow.valid_from, GrantRow.valid_until)):
        seen.add(g.grant_id)
        fact = leaves.grants.get(g.grant_id)
        _compare(found, "grant", f"grant {g.grant_id}", fact, g.document, [] if fact is None else [
            ("performer_id", g.performer_id, fact.performer_id),
            ("signer_key_id", g.signer_key_id, fact.detail),
            ("document_sha256", g.document_sha256, fact.payload_sha256),
            ("ledger_index", g.ledger_index, fact.index),
            ("valid_from", g.valid_from, _time(_signed(g.document).get("valid_from"))),
            ("valid_until", g.valid_until, _time(_signed(g.document).get("valid_until")))])
    _missing(found, "grant", leaves.grants, seen)

    seen = set()
    for rv in session.scalars(select(RevocationRow)):
        seen.add(rv.revocation_id)
        fact = leaves.revocations.get(rv.revocation_id)
        _compare(found, "revocation", f"revocation {rv.revocation_id}", fact, rv.document,
                 [] if fact is None else [
                     ("target", f"{rv.target_kind}:{rv.target_id}", fact.detail),
                     ("performer_id", rv.performer_id, fact.performer_id),
                     ("document_sha256", rv.document_sha256, fact.payload_sha256),
                     ("ledger_index", rv.ledger_index, fact.index)])
    _missing(found, "revocation", leaves.revocations, seen)

    seen = set()
    for ap in session.scalars(select(ApprovalRow)):
        seen.add(ap.approval_id)
        fact = leaves.approvals.get(ap.approval_id)
        _compare(found, "approval", f"approval {ap.approval_id}", fact, ap.document,
                 [] if fact is None else [
                     ("grant:output:decision:signer",
                      f"{ap.grant_id}:{ap.output_sha256}:{ap.decision}:{ap.signer_key_id}",
                      fact.detail),
                     ("performer_id", ap.performer_id, fact.performer_id),
                     ("document_sha256", ap.document_sha256, fact.payload_sha256),
                     ("ledger_index", ap.ledger_index, fact.index)])
    _missing(found, "approval", leaves.approvals, seen)

    _check_decisions(session, leaves, found)
    _check_templates(session, leaves, found)


def _check_decisions(session: Session, leaves: _Leaves, found: _Findings) -> None:
    matched: set[int] = set()
    rows = session.connection().execution_options(yield_per=5000).execute(
        select(DecisionRow.decision_id, DecisionRow.allowed, DecisionRow.document,
               DecisionRow.ledger_index, LedgerEntryRow.data)
        .outerjoin(LedgerEntryRow, LedgerEntryRow.idx == DecisionRow.ledger_index))
    for decision_id, allowed, document, index, data in rows:
        body: Any = None
        with contextlib.suppress(ValueError):
            body = json.loads(data) if data is not None else None
        if (not isinstance(body, dict) or body.get("type") != "decision"
                or body.get("decision_id") != decision_id):
            found.add(index, "documents", f"decision {decision_id} names ledger entry {index}, "
                      "which is not its decision event (row inserted or renumbered)")
            continue
        matched.add(index)
        if body.get("decision_sha256") != _sha(document):
            found.add(index, "documents", f"decision {decision_id}: stored document differs "
                      f"from the hash ledger entry {index} records (edited)")
        if body.get("allowed") != allowed:
            found.add(index, "documents", f"decision {decision_id}: column allowed is "
                      f"{allowed!r} but ledger entry {index} says {body.get('allowed')!r}")
    for index in leaves.decisions:
        if index not in matched:
            found.add(index, "documents", f"the decision of ledger entry {index} is missing "
                      "from the decisions table (deleted row)")


def _check_templates(session: Session, leaves: _Leaves, found: _Findings) -> None:
    stored: set[str] = set()
    for t in session.execute(select(IdentityTemplateRow.template_id,
                                    IdentityTemplateRow.template_sha256,
                                    IdentityTemplateRow.performer_id)):
        stored.add(t.template_sha256)
        enrolled = leaves.templates_enrolled.get(t.template_sha256)
        deleted = leaves.templates_deleted.get(t.template_sha256, -1)
        if enrolled is None:
            found.add(None, "documents", f"identity template {t.template_id} was never enrolled "
                      "through the ledger (row inserted directly)")
        elif leaves.template_owner.get(t.template_sha256) != t.performer_id:
            found.add(enrolled, "documents", f"identity template {t.template_id} is filed under "
                      f"{t.performer_id} but entry {enrolled} enrolled it for "
                      f"{leaves.template_owner.get(t.template_sha256)}")
        elif deleted > enrolled:
            found.add(deleted, "documents", f"identity template {t.template_id} is still stored "
                      f"after the ledgered deletion of entry {deleted}")
    for digest, enrolled in leaves.templates_enrolled.items():
        if digest not in stored and leaves.templates_deleted.get(digest, -1) < enrolled:
            found.add(enrolled, "documents", f"identity template {digest[:16]} enrolled at entry "
                      f"{enrolled} was deleted without a ledger entry")

