"""The consent registry: performers, keys, grants, revocations, decisions and outputs.

Every write is one transaction that stores the signed bytes *and* appends the matching
ledger event, so nothing is ever stored partially. Every read that feeds a decision goes
back to the stored bytes and re-verifies them (see :mod:`consent.gate`).
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from consent import driver_sql, gate, ledger_snapshot, registry_sql
from consent.approval import ApprovalStatus
from consent.checkpoint_log import CheckpointLog
from consent.documents import (
    Grant,
    MotionSeal,
    OutputApproval,
    P,
    PerformerKey,
    PerformerRecord,
    ProductionKey,
    RenderDecisionToken,
    Revocation,
    SignedDocument,
    sign_draft,
)
from consent.errors import (
    ApprovalNotPublishedError,
    ApprovalNotRequiredError,
    ClockError,
    DocumentError,
    DuplicateError,
    ExpiredError,
    KeyUnusableError,
    LedgerError,
    NotFoundError,
    SignatureError,
    UnknownKeyError,
)
from consent.fields import ApprovalDecision, SignatoryRole, format_timestamp
from consent.keys import PrivateKey, PublicKey, short_id
from consent.ledger import EventType, Ledger, LedgerEntry
from consent.ledger_facts import LedgerFacts, StoredDocuments
from consent.store import (
    ApprovalRow,
    DecisionRow,
    GrantRow,
    IdentityTemplateRow,
    PerformerKeyRow,
    PerformerRow,
    ProductionKeyRow,
    RevocationRow,
    Store,
)
from consent.templates import Template, TemplateKeyError, TemplateStore


def utc_now() -> datetime:
    return datetime.now(UTC)


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None or now.utcoffset() is None:
        raise ClockError("a naive datetime was given; the registry needs timezone-aware times")
    return now


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class GrantStatus:
    """A grant as the registry sees it now (verified from the stored bytes)."""

    grant_id: str
    performer_id: str
    sha256: str
    signer_key_id: str
    status: str  # active | not_yet_valid | expired | revoked | key_revoked | not_usable | invalid
    detail: str
    valid_from: datetime
    valid_until: datetime
    ledger_index: int
    grant: Grant | None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "grant_id": self.grant_id,
            "performer_id": self.performer_id,
            "sha256": self.sha256,
            "signer_key_id": self.signer_key_id,
            "status": self.status,
            "detail": self.detail,
            "valid_from": format_timestamp(self.valid_from),
            "valid_until": format_timestamp(self.valid_until),
            "ledger_index": self.ledger_index,
        }
        if self.grant is not None:
            scope = self.grant.scope
            out |= {
                "techniques": [t.value for t in scope.techniques],
                "projects": [p.project_id for p in self.grant.grantee.projects],
                "languages": list(scope.languages),
                "territories": list(scope.territories),
                "channels": [c.value for c in scope.channels],
            }
        return out


@dataclass(frozen=True)
class KeyStatus:
    key_id: str
    performer_id: str
    holder_role: str
    holder_name: str
    registered_at: datetime
    status: str  # active | retired | revoked
    superseded_by: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "registered_at": format_timestamp(self.registered_at)}


@dataclass(frozen=True)
class PublishedOutput:
    ledger_index: int
    output_sha256: str
    manifest_id: str
    decision_id: str
    published_at: str


@dataclass(frozen=True)
class RevocationReport:
    grant: GrantStatus
    outputs: tuple[PublishedOutput, ...]

    def to_json(self) -> dict[str, Any]:
        return {"grant": self.grant.to_json(), "outputs": [o.__dict__ for o in self.outputs]}


@dataclass(frozen=True)
class Publication:
    """What :meth:`Registry.publish_output` did: the final check, and the output's ledger
    index (``None`` when the final check denied and nothing was published)."""

    final_check: gate.Decision
    output_index: int | None


class Registry:
    """The one interface the CLI, the render path and the UI use for consent."""

    def __init__(
        self,
        store: Store,
        key: PrivateKey,
        origin: str,
        clock: Callable[[], datetime] = utc_now,
        template_key: bytes | None = None,
        *,
        checkpoint_log: Path | None = None,
        witness_logs: Sequence[Path] = (),
    ) -> None:
        self.store = store
        self._key = key
        self.clock = clock
        log = CheckpointLog(checkpoint_log) if checkpoint_log is not None else None
        self.ledger = Ledger(store, key, origin, log=log)
        # What the leaves say, checked against every signed checkpoint known (database, the
        # checkpoint log, witnesses' logs): the gate's only source for which documents exist.
        # A saved copy of the view sits beside the checkpoint log (consent.ledger_snapshot).
        self._facts = LedgerFacts(
            origin, self.ledger.verifier,
            [*([log] if log else []), *map(CheckpointLog, witness_logs)],
            snapshot=(checkpoint_log.with_name(checkpoint_log.name + ".view")
                      if checkpoint_log is not None else None),
            snapshot_key=ledger_snapshot.mac_key(key.crypto_key.private_bytes_raw()))
        self._facts_lock = threading.RLock()
        self._templates = TemplateStore(template_key) if template_key is not None else None

    @property
    def public_key(self) -> PublicKey:
        return self._key.public_key

    def _sign(self, model: type[P], body: dict[str, Any]) -> SignedDocument[P]:
        """A document the registry itself issues, validated exactly as an import would be."""
        return sign_draft(model, _drop_none(body), [self._key])

    def _now(self, now: datetime | None) -> datetime:
        return _aware(now if now is not None else self.clock())

    # ------------------------------------------------------------------ performers

    def register_performer(
        self,
        performer_id: str,
        legal_name: str,
        *,
        officer: str,
        professional_name: str | None = None,
        minor_until: date | None = None,
        deceased_on: date | None = None,
        now: datetime | None = None,
    ) -> SignedDocument[PerformerRecord]:
        now = self._now(now)
        with self.store.session() as s:
            if s.scalar(select(PerformerRow.performer_id).where(
                    PerformerRow.performer_id == performer_id).limit(1)):
                raise DuplicateError(f"performer {performer_id} is already registered")
            return self._write_record(s, performer_id, 1, legal_name, professional_name,
                                      minor_until, deceased_on, officer, now,
                                      EventType.PERFORMER_REGISTERED)

    def update_performer_status(
        self,
        performer_id: str,
        *,
        officer: str,
        minor_until: date | None,
        deceased_on: date | None,
        now: datetime | None = None,
    ) -> SignedDocument[PerformerRecord]:
        """A new signed revision of the record (records are never edited in place)."""
        now = self._now(now)
        with self.store.session() as s:
            current = self._record(s, performer_id)
            return self._write_record(s, performer_id, current.revision + 1, current.legal_name,
                                      current.professional_name, minor_until, deceased_on,
                                      officer, now, EventType.PERFORMER_UPDATED)

    def _write_record(self, s: Session, performer_id: str, revision: int, legal_name: str,
                      professional_name: str | None, minor_until: date | None,
                      deceased_on: date | None, officer: str, now: datetime,
                      event: EventType) -> SignedDocument[PerformerRecord]:
        doc = self._sign(PerformerRecord, {
            "performer_id": performer_id, "revision": revision, "legal_name": legal_name,
            "professional_name": professional_name,
            "minor_until": minor_until.isoformat() if minor_until else None,
            "deceased_on": deceased_on.isoformat() if deceased_on else None,
            "recorded_at": format_timestamp(now), "recorded_by": officer,
        })
        s.add(PerformerRow(performer_id=performer_id, revision=revision, document=doc.raw,
                           document_sha256=doc.sha256, recorded_at=now))
        s.flush()
        self.ledger.append(s, event, {"performer_id": performer_id, "revision": revision,
                                      "record_sha256": doc.sha256},
                           at=now, refs=[("performer", performer_id)], document=doc.raw,
                           checkpoint=True)
        return doc

    def _record(self, s: Session, performer_id: str) -> PerformerRecord:
        rows = s.scalars(select(PerformerRow).where(PerformerRow.performer_id == performer_id)
                         .order_by(PerformerRow.revision.desc()).limit(1)).all()
        if not rows:
            raise NotFoundError(f"performer {performer_id} is not registered")
        doc = SignedDocument.from_bytes(rows[0].document, PerformerRecord)
        doc.verify(self.public_key)
        return doc.payload

    def performer(self, performer_id: str) -> PerformerRecord:
        with self.store.session() as s:
            return self._record(s, performer_id)

    def performers(self) -> list[PerformerRecord]:
        with self.store.session() as s:
            ids = s.scalars(select(PerformerRow.performer_id).distinct()
                            .order_by(PerformerRow.performer_id)).all()
            return [self._record(s, pid) for pid in ids]

    # ------------------------------------------------------------------ keys

    def add_key(
        self,
        performer_id: str,
        public_key: PublicKey,
        *,
        officer: str,
        holder_role: SignatoryRole = SignatoryRole.SELF,
        holder_name: str | None = None,
        authority_evidence: str | None = None,
        supersedes: str | None = None,
        now: datetime | None = None,
    ) -> SignedDocument[PerformerKey]:
        now = self._now(now)
        with self.store.session() as s:
            record = self._record(s, performer_id)
            existing = s.get(PerformerKeyRow, public_key.key_id)
            if existing is not None:
                raise DuplicateError(f"key {short_id(public_key.key_id)} is already registered "
                                     f"to performer {existing.performer_id}")
            if holder_role is not SignatoryRole.SELF and authority_evidence is None:
                raise DocumentError(f"a {holder_role.value} key needs authority evidence")
            if supersedes is not None:
                old = self._key_statuses(s, performer_id).get(supersedes)
                if old is None:
                    raise NotFoundError(f"performer {performer_id} has no key "
                                        f"{short_id(supersedes)} to rotate")
                if old.status != "active":
                    raise KeyUnusableError(f"key {short_id(supersedes)} is {old.status}; only "
                                           "an active key can be rotated")
            doc = self._sign(PerformerKey, {
                "performer_id": performer_id, "key_id": public_key.key_id,
                "public_key": public_key.to_base64(),
                "holder": {"role": holder_role.value,
                           "name": holder_name or record.legal_name,
                           "authority_evidence": authority_evidence},
                "registered_at": format_timestamp(now), "registered_by": officer,
                "supersedes": supersedes,
            })
            s.add(PerformerKeyRow(key_id=public_key.key_id, performer_id=performer_id,
                                  document=doc.raw, holder_role=holder_role.value,
                                  registered_at=now, supersedes=supersedes))
            s.flush()
            self.ledger.append(s, EventType.KEY_ADDED, {
                "performer_id": performer_id, "key_id": public_key.key_id,
                "binding_sha256": doc.sha256, "supersedes": supersedes},
                at=now, refs=[("performer", performer_id), ("key", public_key.key_id)],
                document=doc.raw, checkpoint=True)
            return doc

    def add_production_key(self, company: str, public_key: PublicKey, *, officer: str,
                           now: datetime | None = None) -> SignedDocument[ProductionKey]:
        """Register a production company's key, with which it may countersign its grants."""
        now = self._now(now)
        doc = self._sign(ProductionKey, { "company": company,
            "key_id": public_key.key_id, "public_key": public_key.to_base64(),
            "registered_at": format_timestamp(now), "registered_by": officer})
        with self.store.session() as s:
            if (s.get(ProductionKeyRow, public_key.key_id) is not None
                    or s.get(PerformerKeyRow, public_key.key_id) is not None):
                raise DuplicateError(f"key {short_id(public_key.key_id)} is already registered")
            s.add(ProductionKeyRow(key_id=public_key.key_id, company=company, document=doc.raw,
                                   registered_at=now))
            s.flush()
            self.ledger.append(s, EventType.PRODUCTION_KEY_ADDED, {
                "key_id": public_key.key_id, "binding_sha256": doc.sha256}, at=now,
                refs=[("key", public_key.key_id)], document=doc.raw, checkpoint=True)
        return doc

    def _production_keys(self, s: Session) -> dict[str, ProductionKey]:
        facts = gate.verified_facts(gate.PerformerEvidence(
            "", production_keys=list(s.scalars(select(ProductionKeyRow.document)))),
            self.public_key)
        return facts.production

    def rotate_key(self, performer_id: str, old_key_id: str, new_key: PublicKey, *,
                   officer: str, now: datetime | None = None) -> SignedDocument[PerformerKey]:
        """Register ``new_key`` and retire the old one: grants it signed stay valid, but it
        can sign no new ones. (Use :meth:`revoke_key` for a compromised key.)"""
        with self.store.session() as s:
            if old_key_id not in self._key_statuses(s, performer_id):
                raise NotFoundError(f"performer {performer_id} has no key {short_id(old_key_id)}")
            old = self._binding(s, old_key_id)
        return self.add_key(performer_id, new_key, officer=officer, holder_role=old.holder.role,
                            holder_name=old.holder.name,
                            authority_evidence=old.holder.authority_evidence,
                            supersedes=old_key_id, now=now)

    def _binding(self, s: Session, key_id: str) -> PerformerKey:
        row = s.get(PerformerKeyRow, key_id)
        if row is None:
            raise NotFoundError(f"no key {short_id(key_id)}")
        doc = SignedDocument.from_bytes(row.document, PerformerKey)
        doc.verify(self.public_key)
        return doc.payload

    @staticmethod
    def _performer_signer(s: Session, doc: SignedDocument[Any], keys: dict[str, KeyStatus],
                          pid: str, what: str) -> KeyStatus:
        """Which of ``pid``'s keys signed ``doc`` (an active one first when it carries several
        of the performer's signatures); a key of another performer, or none registered, is
        refused by name."""
        candidates = sorted((sig for sig in doc.signatures if sig.keyid in keys),
                            key=lambda sig: keys[sig.keyid].status != "active")
        if candidates:
            return keys[candidates[0].keyid]
        foreign = [row for sig in doc.signatures
                   if (row := s.get(PerformerKeyRow, sig.keyid)) is not None]
        if foreign:
            raise UnknownKeyError(
                f"{what} is for {pid} but signed with key "
                f"{short_id(foreign[0].key_id)} of performer {foreign[0].performer_id}")
        ids = ", ".join(short_id(sig.keyid) for sig in doc.signatures)
        raise UnknownKeyError(f"{what} is signed by {ids}, which is not a key registered to "
                              f"{pid}")

    def _key_statuses(self, s: Session, performer_id: str) -> dict[str, KeyStatus]:
        bindings: dict[str, PerformerKey] = {}
        for row in s.scalars(select(PerformerKeyRow).where(
                PerformerKeyRow.performer_id == performer_id)):
            doc = SignedDocument.from_bytes(row.document, PerformerKey)
            doc.verify(self.public_key)
            bindings[doc.payload.key_id] = doc.payload
        revoked = {r.target_id for r in s.scalars(select(RevocationRow).where(
            RevocationRow.target_kind == "key",
            RevocationRow.target_id.in_(list(bindings))))}
        with self._facts_lock:
            facts = self._ledger_facts(s)
            revoked |= {kid for kid in bindings if facts.key_status(kid) == "revoked"}
        successor = {b.supersedes: b.key_id for b in bindings.values() if b.supersedes}
        out = {}
        for kid, b in bindings.items():
            status = ("revoked" if kid in revoked else "retired" if kid in successor
                      else "active")
            out[kid] = KeyStatus(kid, performer_id, b.holder.role.value, b.holder.name,
                                 b.registered_at, status, successor.get(kid))
        return out

    def keys(self, performer_id: str) -> list[KeyStatus]:
        with self.store.session() as s:
            self._record(s, performer_id)
            return sorted(self._key_statuses(s, performer_id).values(),
                          key=lambda k: k.registered_at)

    def revoke_key(self, key_id: str, *, reason: str, officer: str,
                   performer_request_reference: str,
                   now: datetime | None = None) -> SignedDocument[Revocation]:
        """Revoke a compromised or lost key: every grant it signed stops passing the gate."""
        now = self._now(now)
        with self.store.session() as s:
            binding = self._binding(s, key_id)
        doc = self._officer_revocation(binding.performer_id, "key", key_id, reason, officer,
                                       performer_request_reference, now)
        return self._store_revocation(doc, officer, now)

    # ------------------------------------------------------------------ grants

    def import_grant(self, raw: bytes, *, officer: str,
                     now: datetime | None = None) -> GrantStatus:
        """Verify a performer-signed grant and store it exactly as received."""
        now = self._now(now)
        doc = SignedDocument.from_bytes(raw, Grant)
        g = doc.payload
        pid = g.performer.performer_id
        with self.store.session() as s:
            self._record(s, pid)
            keys = self._key_statuses(s, pid)
            key = self._performer_signer(s, doc, keys, pid, f"grant {g.grant_id}")
            doc.verify(self._binding(s, key.key_id).key)
            if key.status == "revoked":
                raise KeyUnusableError(f"grant {g.grant_id} is signed with key "
                                       f"{short_id(key.key_id)}, which has been revoked")
            if key.status == "retired":
                raise KeyUnusableError(f"grant {g.grant_id} is signed with key "
                                       f"{short_id(key.key_id)}, retired in favour of "
                                       f"{short_id(key.superseded_by or '')}; sign with the "
                                       "current key")
            if key.holder_role != g.signatory.role.value:
                raise SignatureError(f"grant {g.grant_id} names a {g.signatory.role.value} "
                                     f"signatory but key {short_id(key.key_id)} belongs to a "
                                     f"{key.holder_role}")
            problem = gate.countersignature_problem(doc, key.key_id, self._production_keys(s))
            if problem is not None:
                raise SignatureError(f"grant {g.grant_id}: {problem}")
            existing = s.get(GrantRow, g.grant_id)
            if existing is not None:
                if existing.document_sha256 == doc.sha256:
                    raise DuplicateError(f"grant {g.grant_id} is already imported")
                raise DuplicateError(
                    f"grant {g.grant_id} is already imported with different content "
                    f"({existing.document_sha256[:12]}… vs {doc.sha256[:12]}…); a change is a "
                    "new grant with a new grant_id")
            if s.scalar(select(GrantRow.grant_id).where(GrantRow.document_sha256 == doc.sha256)):
                raise DuplicateError(f"an identical document is already imported as grant "
                                     f"{g.grant_id}")
            if g.valid_until <= now:
                raise ExpiredError(f"grant {g.grant_id} expired at "
                                   f"{format_timestamp(g.valid_until)}")
            if g.signed_at > now + gate.CLOCK_SKEW:
                raise DocumentError(f"grant {g.grant_id} claims to be signed at "
                                    f"{format_timestamp(g.signed_at)}, in the future")
            index = self.ledger.append(s, EventType.GRANT_IMPORTED, {
                "grant_id": g.grant_id, "grant_sha256": doc.sha256, "performer_id": pid,
                "signer_key_id": key.key_id}, at=now,
                refs=[("grant", g.grant_id), ("performer", pid)], document=raw, checkpoint=True)
            grant_row = GrantRow(grant_id=g.grant_id, performer_id=pid, signer_key_id=key.key_id,
                           document=raw, document_sha256=doc.sha256, valid_from=g.valid_from,
                           valid_until=g.valid_until, imported_at=now, imported_by=officer,
                           ledger_index=index)
            s.add(grant_row)
            s.flush()
        # Read back in a new transaction: the ledger view reads committed leaves only.
        return self.grant(g.grant_id, now)

    def grant(self, grant_id: str, now: datetime | None = None) -> GrantStatus:
        now = self._now(now)
        with self.store.session() as s:
            row = s.get(GrantRow, grant_id)
            if row is None:
                raise NotFoundError(f"no grant {grant_id}")
            return self._grant_status(s, row, now)

    def grants(self, *, performer_id: str | None = None, project_id: str | None = None,
               now: datetime | None = None, limit: int = 1000) -> list[GrantStatus]:
        now = self._now(now)
        with self.store.session() as s:
            query = select(GrantRow).order_by(GrantRow.imported_at, GrantRow.grant_id)
            if performer_id is not None:
                query = query.where(GrantRow.performer_id == performer_id)
            facts: dict[str, tuple[gate.VerifiedFacts, frozenset[str]]] = {}
            out = [self._grant_status(s, row, now, facts) for row in s.scalars(query.limit(limit))]
        if project_id is not None:
            out = [g for g in out if g.grant is not None
                   and any(p.project_id == project_id for p in g.grant.grantee.projects)]
        return out

    def _grant_status(self, s: Session, row: GrantRow, now: datetime,
                      cache: dict[str, tuple[gate.VerifiedFacts, frozenset[str]]] | None = None,
                      ) -> GrantStatus:
        """Status from the signed documents; ``cache`` shares per-performer facts in a listing."""
        cache = {} if cache is None else cache
        if row.performer_id not in cache:
            ev = self._evidence(s, [row.performer_id])[row.performer_id]
            cache[row.performer_id] = (gate.verified_facts(ev, self.public_key),
                                       ev.ledger_revoked)
        facts, ledger_revoked = cache[row.performer_id]
        if facts.fatal:
            return self._status(row, "invalid", f"registry tampering: {facts.fatal[0]}", None)
        if row.grant_id in ledger_revoked and row.grant_id not in facts.revoked_grants:
            return self._status(row, "revoked", "the ledger records its revocation (the "
                                "revocation document is missing: tampering?)", None)
        try:
            doc = SignedDocument.from_bytes(row.document, Grant)
        except DocumentError as exc:
            return self._status(row, "invalid", f"stored grant is unreadable: {exc}", None)
        g = doc.payload
        key = facts.keys.get(row.signer_key_id)
        if key is None or doc.signature_by(key.key_id) is None:
            return self._status(row, "invalid", "signer key is not a verified key of the "
                                "performer", g)
        try:
            doc.verify(key.key)
        except SignatureError:
            return self._status(row, "invalid", "signature does not verify (document altered)",
                                g)
        problem = gate.countersignature_problem(doc, key.key_id, facts.production)
        if problem is not None:
            return self._status(row, "invalid", problem, g)
        if g.grant_id in facts.revoked_grants:
            r = facts.revoked_grants[g.grant_id]
            return self._status(row, "revoked", f"revoked on {format_timestamp(r.revoked_at)}: "
                                f"{r.reason}", g)
        if key.key_id in facts.revoked_keys:
            r = facts.revoked_keys[key.key_id]
            return self._status(row, "key_revoked", f"signing key revoked on "
                                f"{format_timestamp(r.revoked_at)}", g)
        if now < g.valid_from:
            return self._status(row, "not_yet_valid",
                                f"valid from {format_timestamp(g.valid_from)}", g)
        if now >= g.valid_until:
            return self._status(row, "expired", f"expired at {format_timestamp(g.valid_until)}",
                                g)
        problem = gate.status_problem(g, facts.record, now)
        if problem is not None:  # what the gate's status rule says (a minor's own signature)
            return self._status(row, "not_usable", problem, g)
        return self._status(row, "active", f"valid until {format_timestamp(g.valid_until)}", g)

    @staticmethod
    def _status(row: GrantRow, status: str, detail: str, g: Grant | None) -> GrantStatus:
        return GrantStatus(row.grant_id, row.performer_id, row.document_sha256,
                           row.signer_key_id, status, detail, row.valid_from, row.valid_until,
                           row.ledger_index, g)

    # ------------------------------------------------------------------ revocations

    def revoke_grant(self, grant_id: str, *, reason: str, officer: str,
                     performer_request_reference: str,
                     now: datetime | None = None) -> SignedDocument[Revocation]:
        """A consent officer records the performer's withdrawal (signed by the registry)."""
        now = self._now(now)
        with self.store.session() as s:
            row = s.get(GrantRow, grant_id)
            if row is None:
                raise NotFoundError(f"no grant {grant_id}")
            performer_id = row.performer_id
        doc = self._officer_revocation(performer_id, "grant", grant_id, reason, officer,
                                       performer_request_reference, now)
        return self._store_revocation(doc, officer, now)

    def import_revocation(self, raw: bytes, *, officer: str,
                          now: datetime | None = None) -> SignedDocument[Revocation]:
        """Record a revocation the performer signed with one of their registered keys."""
        doc = SignedDocument.from_bytes(raw, Revocation)
        if doc.payload.issued_by.role != "performer":
            raise DocumentError("an imported revocation must be issued by the performer; "
                                "officers use `revoke` and the registry signs")
        return self._store_revocation(doc, officer, now)

    def _officer_revocation(self, performer_id: str, kind: str, target_id: str, reason: str,
                            officer: str, request_ref: str,
                            now: datetime) -> SignedDocument[Revocation]:
        return self._sign(Revocation, {
            "revocation_id": _new_id("rev"), "performer_id": performer_id,
            "target": {"kind": kind, "id": target_id}, "revoked_at": format_timestamp(now),
            "reason": reason, "issued_by": {"role": "consent_officer", "name": officer},
            "performer_request_reference": request_ref,
        })

    def _store_revocation(self, doc: SignedDocument[Revocation], officer: str,
                          now: datetime | None = None) -> SignedDocument[Revocation]:
        now = self._now(now)
        r = doc.payload
        with self.store.session() as s:
            keys = self._key_statuses(s, r.performer_id) if r.performer_id else {}
            if r.issued_by.role == "consent_officer":
                doc.verify(self.public_key)
            else:
                signer = next((sig for sig in doc.signatures if sig.keyid in keys), None)
                if signer is None:
                    raise UnknownKeyError(f"revocation {r.revocation_id} is not signed by a key "
                                          f"registered to {r.performer_id}")
                doc.verify(self._binding(s, signer.keyid).key)
            if r.target.kind == "grant":
                target = s.get(GrantRow, r.target.id)
                if target is None or target.performer_id != r.performer_id:
                    raise NotFoundError(f"performer {r.performer_id} has no grant {r.target.id}")
            elif r.target.id not in keys:
                raise NotFoundError(f"performer {r.performer_id} has no key "
                                    f"{short_id(r.target.id)}")
            prior = s.scalar(select(RevocationRow.revocation_id).where(
                RevocationRow.target_kind == r.target.kind,
                RevocationRow.target_id == r.target.id))
            if prior is not None:
                raise DuplicateError(f"{r.target.kind} {r.target.id} is already revoked "
                                     f"({prior})")
            if s.get(RevocationRow, r.revocation_id) is not None:
                raise DuplicateError(f"revocation {r.revocation_id} is already recorded")
            event = EventType.REVOCATION if r.target.kind == "grant" else EventType.KEY_REVOKED
            index = self.ledger.append(s, event, {
                "performer_id": r.performer_id, "target_kind": r.target.kind,
                "target_id": r.target.id, "revocation_id": r.revocation_id,
                "revocation_sha256": doc.sha256, "issued_by": r.issued_by.role},
                at=now, refs=[(r.target.kind, r.target.id), ("revocation", r.revocation_id),
                              ("performer", r.performer_id)], document=doc.raw, checkpoint=True)
            s.add(RevocationRow(revocation_id=r.revocation_id, performer_id=r.performer_id,
                                target_kind=r.target.kind, target_id=r.target.id,
                                document=doc.raw, document_sha256=doc.sha256,
                                recorded_at=now, recorded_by=officer, ledger_index=index))
            s.flush()
        # Biometric templates live only as long as some grant of the performer is active.
        self.purge_templates(now)
        return doc

    # ------------------------------------------------------------------ the gate

    def _ledger_facts(self, s: Session) -> LedgerFacts:
        """The leaves' view, brought up to this transaction's ledger; callers hold the lock.

        Refreshed at every use, so nothing decided from it outlives a ledger append. Not
        after this transaction appended itself: the view must hold committed leaves only.
        """
        if not s.info.get("ledger_appended"):
            self._facts.refresh(s)
        return self._facts

    def _evidence(
        self, s: Session, performer_ids: Iterable[str]
    ) -> dict[str, gate.PerformerEvidence]:
        """The raw signed bytes the gate needs, each vouched for by a ledger leaf.

        Rows are read in one prepared statement (a second only when a row names a grant or
        key that no leaf records, which is tampering); which of them count, and which
        revocations exist, comes from the leaves (:class:`LedgerFacts`), never from the rows
        alone.
        """
        pids = sorted(set(performer_ids))
        cur = driver_sql.cursor(s)  # fixed driver statements: this runs at every decision
        with self._facts_lock:
            # PostgreSQL: the rows' statement goes out with the view's read of the new
            # leaves (one round trip, after it: rows never older than the leaves), naming
            # the targets the view knew before; targets those leaves add are looked up
            # after, as are targets only rows name.
            sent_targets = _leaf_targets(self._facts, pids)
            sent: list[Any] = []
            if not s.info.get("ledger_appended") and cur.dialect_name == "postgresql":
                if not self._facts.refresh(s, then=lambda c: sent.append(
                        registry_sql.send_evidence(c, pids, sent_targets))):
                    sent.clear()
                facts = self._facts
            else:
                facts = self._ledger_facts(s)
            rows: dict[str, dict[str, list[tuple[Any, bytes]]]] = {
                kind: {p: [] for p in pids} for kind in ("record", "key", "grant")}
            # Grant and key id -> performer: the leaves' first (the revocation lookup by
            # target below is by these ids), then the rows'.
            owner = _leaf_owners(facts, pids)
            leaf_targets = list(owner)
            revocation_rows: list[tuple[str, str, str, bytes]] = []
            production_rows: list[tuple[str, bytes]] = []
            found = (registry_sql.evidence_result(sent[0]) if sent and sent[0] is not None
                     else registry_sql.evidence_rows(cur, pids, leaf_targets))
            unsent = ([t for t in leaf_targets if t not in set(sent_targets)]
                      if sent and sent[0] is not None else [])
            if found is None:  # too many ids for one statement
                documents = list(registry_sql.documents_of(cur, pids))
                production_rows = list(registry_sql.production_keys(cur))
            else:
                documents = []
                for kind, pid, ref, target, doc in found:
                    if kind == "revocation":
                        revocation_rows.append((pid, target or "", ref, doc))
                    elif kind == "production":
                        production_rows.append((ref, doc))
                    else:
                        documents.append((kind, pid, ref, doc))
            row_owner: dict[str, str] = {}
            for kind, pid, ref, doc in documents:
                if kind == "record":
                    rows[kind][pid].append((int(ref), doc))
                else:
                    rows[kind][pid].append((ref, doc))
                    row_owner[ref] = pid
            for ref, pid in row_owner.items():
                owner.setdefault(ref, pid)
            # Look revocations up by performer *and* by target, so that editing one column
            # of a revocation row cannot hide it; file each under the target's performer.
            # Targets that only rows name (no leaf: tampering, which denies anyway) are
            # looked up too, in a second statement, as are all of them when the single
            # statement could not be used.
            extra = ([t for t in row_owner if t not in set(leaf_targets)] + unsent
                     if found is not None else list(owner))
            if found is None or extra:
                seen = {rid for _pid, _target, rid, _doc in revocation_rows}
                revocation_rows.extend(
                    r for r in registry_sql.revocations_of(cur, pids, extra)
                    if r[2] not in seen)
            revocations: dict[str, list[tuple[str, bytes]]] = {p: [] for p in pids}
            for pid, target_id, rid, doc in revocation_rows:
                revocations.setdefault(owner.get(target_id, pid), []).append((rid, doc))
            production: list[bytes] = []
            shared_problems: list[str] = []
            for key_id, doc in production_rows:
                fact = facts.production_keys.get(key_id)
                if fact is None or not fact.matches(doc):
                    shared_problems.append(f"production key {key_id[:12]} on file is not the "
                                           "one the ledger records (tampering)")
                else:
                    production.append(doc)
            out = {}
            for p in pids:
                prov = facts.provenance(p, StoredDocuments(
                    rows["record"][p], rows["key"][p], rows["grant"][p], revocations[p]))
                out[p] = gate.PerformerEvidence(
                    p, prov.records, prov.keys, prov.grants, prov.revocations,
                    prov.revoked_targets, prov.record_revisions, production,
                    provenance_problems=prov.problems + shared_problems)
            return out

    def authorize(
        self,
        request: gate.AuthorizationRequest,
        identity_matches: Sequence[gate.IdentityMatch],
        now: datetime | None = None,
        *,
        known_tracks: Sequence[str] = (),
    ) -> gate.Decision:
        """Decide, record the decision in the ledger, and return it (allow or deny)."""
        now = self._now(now)
        with self.store.session() as s:
            decision = self._decide(s, request, identity_matches, now, known_tracks)
            return self._ledger_decision(s, request, decision, now)

    def _decide(self, s: Session, request: gate.AuthorizationRequest,
                identity_matches: Sequence[gate.IdentityMatch], now: datetime,
                known_tracks: Sequence[str]) -> gate.Decision:
        evidence = self._evidence(s, [sub.performer_id for sub in request.subjects])
        # The newest time in the ledger's leaves, not the time of its last entry: a decision
        # made with a clock set back must not become the reference for the next one.
        last = self._facts.newest_time
        decision = gate.evaluate(request, evidence, identity_matches, now, self.public_key,
                                 last_ledger_time=last, known_tracks=known_tracks)
        return replace(decision, decision_id=_new_id("dec"))

    def _ledger_decision(self, s: Session, request: gate.AuthorizationRequest,
                         decision: gate.Decision, now: datetime) -> gate.Decision:
        content = decision.content_bytes()

        def decision_row(cur: driver_sql.DriverCursor, index: int) -> None:
            # Written with the leaf's rows (one round trip on PostgreSQL).
            registry_sql.insert_decision(cur, decision.decision_id, decision.allowed, content,
                                         now, index)

        index = self.ledger.append(s, EventType.DECISION, {
            "decision_id": decision.decision_id, "allowed": decision.allowed,
            "decision_sha256": hashlib.sha256(content).hexdigest(),
            "request_sha256": request.sha256,
            "grants": [{"grant_id": g.grant_id, "sha256": g.sha256}
                       for g in decision.grants_used]},
            at=now, refs=[("decision", decision.decision_id)]
            + [("grant", g.grant_id) for g in decision.grants_used], with_rows=decision_row)
        return replace(decision, ledger_index=index)

    def record_refusal(
        self,
        request: gate.AuthorizationRequest,
        identity_matches: Sequence[gate.IdentityMatch],
        reason: str,
        now: datetime | None = None,
        *,
        known_tracks: Sequence[str] = (),
    ) -> gate.Decision:
        """Record a deny the gate could not be asked for, and return it: a render whose
        request names no subject (no face in the shot matches a performer with consent).
        The decision has one failed ``identity`` rule saying ``reason``; like any decision it
        is ledgered, so every refusal of a render leaves a record."""
        now = self._now(now)
        tracks = sorted({*known_tracks, *(m.track_id for m in identity_matches)})
        decision = gate.Decision(False, now, request, (gate.RuleResult("identity", False, reason),),
                                 (), tuple(identity_matches), tuple(tracks),
                                 decision_id=_new_id("dec"))
        with self.store.session() as s:
            return self._ledger_decision(s, request, decision, now)

    def record_output(self, decision: gate.Decision, output_sha256: str, manifest_id: str,
                      now: datetime | None = None) -> int:
        """Ledger the publication of an output made under an *allowed* decision.

        No consent check of its own: the render path uses :meth:`publish_output`, which
        checks consent again in the same transaction.
        """
        now = self._now(now)
        with self.store.session() as s:
            return self._append_output(s, decision, output_sha256, manifest_id, now)

    def _append_output(self, s: Session, decision: gate.Decision, output_sha256: str,
                       manifest_id: str, now: datetime) -> int:
        row = s.get(DecisionRow, decision.decision_id)
        if row is None or not row.allowed or row.ledger_index != decision.ledger_index:
            raise NotFoundError(f"no allowed decision {decision.decision_id} on record")
        if row.document != decision.content_bytes():
            raise DocumentError(f"decision {decision.decision_id} differs from the "
                                "recorded one")
        body: dict[str, Any] = {
            "output_sha256": output_sha256, "manifest_id": manifest_id,
            "decision_id": decision.decision_id, "decision_index": row.ledger_index,
            "grants": [{"grant_id": g.grant_id, "sha256": g.sha256}
                       for g in decision.grants_used]}
        required = self._approvals_required(s, decision)
        if required:  # held until approved (consent.approval); absent: as before
            body["approval_required"] = required
        return self.ledger.append(s, EventType.OUTPUT_PUBLISHED, body,
            at=now, refs=[("output", output_sha256), ("decision", decision.decision_id)]
            + [("grant", g.grant_id) for g in decision.grants_used])

    def approvals_required(self, decision: gate.Decision) -> tuple[str, ...]:
        """The grants of ``decision`` whose performer must approve each output (what a
        manifest names; the publication leaf records the same)."""
        with self.store.session() as s:
            return tuple(r["grant_id"] for r in self._approvals_required(s, decision))

    def _approvals_required(self, s: Session, decision: gate.Decision) -> list[dict[str, str]]:
        """The grants (with their performer) of ``decision`` that require the performer's
        approval of each output: read from the exact grant bytes the decision used."""
        out: dict[tuple[str, str], None] = {}
        for used in decision.grants_used:
            row = s.get(GrantRow, used.grant_id)
            if row is None:
                raise NotFoundError(f"no grant {used.grant_id}")
            doc = SignedDocument.from_bytes(row.document, Grant)
            if doc.sha256 != used.sha256:
                raise DocumentError(f"grant {used.grant_id} differs from the one decision "
                                    f"{decision.decision_id} used")
            if doc.payload.approval_required:
                out[(used.grant_id, doc.payload.performer.performer_id)] = None
        return [{"grant_id": g, "performer_id": p} for g, p in out]

    def publish_output(
        self,
        request: gate.AuthorizationRequest,
        identity_matches: Sequence[gate.IdentityMatch],
        decision: gate.Decision,
        output_sha256: str,
        manifest_id: str,
        link: Callable[[], Callable[[], None]],
        *,
        known_tracks: Sequence[str] = (),
        now: datetime | None = None,
    ) -> Publication:
        """The last consent check and the publication, as one step that revocations cannot
        slip into.

        In one transaction holding the ledger's write lock (the lock every revocation takes
        to append): decide ``request`` again; on deny, ledger that decision and publish
        nothing; on allow, call ``link`` (which makes the file public and returns how to
        undo that) and append ``output_published`` under ``decision`` (the one the output's
        manifest names). So a revocation is ordered either before the check (nothing is
        published) or after the publication (its revocation report lists the output). If
        the append or the commit fails, the link is undone and the error raised: a file is
        never left public with no publication event, short of a crash between the link and
        the commit (see ``studio.render.job``).
        """
        now = self._now(now)
        undo: Callable[[], None] | None = None
        try:
            with self.store.session() as s:
                self.ledger.lock(s)
                final = self._decide(s, request, identity_matches, now, known_tracks)
                if not final.allowed:
                    return Publication(self._ledger_decision(s, request, final, now), None)
                undo = link()
                index = self._append_output(s, decision, output_sha256, manifest_id, now)
        except BaseException:
            if undo is not None:
                undo()
            raise
        return Publication(final, index)

    def revocation_report(self, grant_id: str, now: datetime | None = None) -> RevocationReport:
        """Every output published under ``grant_id``, read from the ledger's own leaves."""
        status = self.grant(grant_id, now)
        with self.store.session() as s:
            entries = Ledger.entries_referencing(s, "grant", grant_id,
                                                 EventType.OUTPUT_PUBLISHED)
        outputs = tuple(_output(e) for e in entries
                        if any(g.get("grant_id") == grant_id for g in e.body.get("grants", [])))
        return RevocationReport(status, outputs)

    # ------------------------------------------------------------------ approvals

    def import_approval(self, raw: bytes, *, officer: str,
                        now: datetime | None = None) -> ApprovalStatus:
        """Verify a performer's signed approval (or rejection) of one published output and
        record it; return the output's approval status afterwards.

        The signature must verify with a key registered to the performer that is neither
        revoked nor retired (as for grants), held in the role the approval names; the
        grant must be the performer's and require approval; the ledger must record the
        output as published under that grant, before the approval was signed."""
        now = self._now(now)
        doc = SignedDocument.from_bytes(raw, OutputApproval)
        a = doc.payload
        pid = a.performer_id
        with self.store.session() as s:
            self.ledger.lock(s)  # what is checked below is what the append follows
            self._record(s, pid)
            keys = self._key_statuses(s, pid)
            key = self._performer_signer(s, doc, keys, pid, f"approval {a.approval_id}")
            doc.verify(self._binding(s, key.key_id).key)
            if key.status != "active":
                raise KeyUnusableError(f"approval {a.approval_id} is signed with key "
                                       f"{short_id(key.key_id)}, which is {key.status}")
            if key.holder_role != a.signed_by.role.value:
                raise SignatureError(f"approval {a.approval_id} names a "
                                     f"{a.signed_by.role.value} signer but key "
                                     f"{short_id(key.key_id)} belongs to a {key.holder_role}")
            grant_row = s.get(GrantRow, a.grant_id)
            if grant_row is None or grant_row.performer_id != pid:
                raise NotFoundError(f"performer {pid} has no grant {a.grant_id}")
            grant = SignedDocument.from_bytes(grant_row.document, Grant).payload
            if not grant.approval_required:
                raise ApprovalNotRequiredError(
                    f"grant {a.grant_id} does not require approval of its outputs "
                    f"(approval: {(grant.approval or 'not_required')})")
            with self._facts_lock:
                facts = self._ledger_facts(s)
                _facts_sound(facts.problems)
                output = facts.approvals.outputs.get(a.output_sha256)
            if output is None or not any(r.grant_id == a.grant_id and r.performer_id == pid
                                         for r in output.required):
                raise ApprovalNotPublishedError(
                    f"the ledger records no output {a.output_sha256[:12]}… published under "
                    f"grant {a.grant_id} and awaiting {pid}'s approval; an output is approved "
                    "once published (held), never before")
            if a.signed_at < output.time - gate.CLOCK_SKEW:
                raise ApprovalNotPublishedError(
                    f"approval {a.approval_id} was signed at {format_timestamp(a.signed_at)}, "
                    f"before the output was published ({format_timestamp(output.time)})")
            if a.signed_at > now + gate.CLOCK_SKEW:
                raise DocumentError(f"approval {a.approval_id} claims to be signed at "
                                    f"{format_timestamp(a.signed_at)}, in the future")
            if s.get(ApprovalRow, a.approval_id) is not None:
                raise DuplicateError(f"approval {a.approval_id} is already recorded")
            if s.scalar(select(ApprovalRow.approval_id).where(
                    ApprovalRow.document_sha256 == doc.sha256)):
                raise DuplicateError("an identical approval document is already recorded")
            event = (EventType.APPROVAL_RECORDED if a.decision is ApprovalDecision.APPROVED
                     else EventType.APPROVAL_REJECTED)
            index = self.ledger.append(s, event, {
                "approval_id": a.approval_id, "approval_sha256": doc.sha256,
                "performer_id": pid, "grant_id": a.grant_id,
                "output_sha256": a.output_sha256, "decision": a.decision.value,
                "signer_key_id": key.key_id}, at=now,
                refs=[("output", a.output_sha256), ("grant", a.grant_id),
                      ("performer", pid), ("approval", a.approval_id)],
                document=raw, checkpoint=True)
            s.add(ApprovalRow(approval_id=a.approval_id, performer_id=pid,
                              grant_id=a.grant_id, output_sha256=a.output_sha256,
                              decision=a.decision.value, signer_key_id=key.key_id,
                              document=raw, document_sha256=doc.sha256, recorded_at=now,
                              recorded_by=officer, ledger_index=index))
            s.flush()
        # Read back in a new transaction: the ledger view reads committed leaves only.
        return self.approval_status(a.output_sha256)

    def approval_status(self, output_sha256: str) -> ApprovalStatus:
        """Whether a published output may be delivered: ``not_required``, ``awaiting``,
        ``approved`` or ``rejected``, from the ledger's leaves (:mod:`consent.approval`).
        Raises NotFoundError for an output the ledger does not record as published, and
        LedgerError when the ledger shows tampering (no status is trusted then)."""
        with self.store.session() as s, self._facts_lock:
            facts = self._ledger_facts(s)
            _facts_sound(facts.problems)
            if facts.covered < facts.newest_checkpoint:
                raise LedgerError(f"the ledger is not consistent with the newest signed "
                                  f"checkpoint (size {facts.newest_checkpoint})")
            status = facts.approvals.status(output_sha256, facts.key_status, facts.covered)
        if status is None:
            raise NotFoundError(f"the ledger records no published output {output_sha256}")
        return status

    def approval_document(self, approval_id: str) -> SignedDocument[OutputApproval]:
        """A recorded approval as received (for reports and delivery copies)."""
        with self.store.session() as s:
            row = s.get(ApprovalRow, approval_id)
            if row is None:
                raise NotFoundError(f"no approval {approval_id}")
            return SignedDocument.from_bytes(row.document, OutputApproval)

    # ------------------------------------------------------------------ identity templates

    def _template_store(self) -> TemplateStore:
        if self._templates is None:
            raise TemplateKeyError("identity templates are not configured (no template key)")
        return self._templates

    def enroll_templates(self, performer_id: str, embedder: str,
                         vectors: Sequence[tuple[Any, dict[str, Any]]], source_sha256: str, *,
                         officer: str, embedder_licence: str = "unrecorded",
                         now: datetime | None = None) -> list[Template]:
        """Store templates (vector, quality) computed from one reference file, encrypted."""
        now = self._now(now)
        store = self._template_store()
        with self.store.session() as s:
            self._record(s, performer_id)
            out = [store.add(s, performer_id, embedder, vec, source_sha256, quality, now)
                   for vec, quality in vectors]
            self.ledger.append(s, EventType.TEMPLATES_ENROLLED, {
                "performer_id": performer_id, "embedder": embedder,
                "embedder_licence": embedder_licence, "source_sha256": source_sha256,
                "template_sha256": [t.template_sha256 for t in out], "enrolled_by": officer},
                at=now, refs=[("performer", performer_id)])
        return out

    def consented_templates(self, embedder: str, now: datetime | None = None, *,
                            inactive_grants: bool = False) -> dict[str, list[Template]]:
        """Templates usable for matching: those of performers with an active grant whose
        evidence names the template or the reference media it was enrolled from.

        ``inactive_grants``: also those named by a verified grant that no longer passes
        (expired, not yet valid, …), so that a render of that performer is matched and then
        *denied by the gate* for the reason, rather than refused as an unknown face with no
        decision (a revocation deletes the templates: see :meth:`purge_templates`).
        Matching is not authorising: the gate still checks every grant. A grant whose
        signature does not verify never links a template.
        """
        now = self._now(now)
        store = self._template_store()
        with self.store.session() as s:
            templates = store.load(s, embedder=embedder)
        named: dict[str, set[str]] = {}
        for pid in {t.performer_id for t in templates}:
            for g in self.grants(performer_id=pid, now=now):
                usable = g.status == "active" or (inactive_grants and g.status != "invalid")
                if usable and g.grant is not None:
                    ev = g.grant.evidence
                    named.setdefault(pid, set()).update(ev.identity_template_sha256)
        out: dict[str, list[Template]] = {}
        for t in templates:
            hashes = named.get(t.performer_id, set())
            if t.template_sha256 in hashes or t.source_sha256 in hashes:
                out.setdefault(t.performer_id, []).append(t)
        return out

    def purge_templates(self, now: datetime | None = None) -> dict[str, int]:
        """Delete the templates of every performer who has no active grant left."""
        now = self._now(now)
        if self._templates is None:
            return {}
        with self.store.session() as s:
            pids = sorted(set(s.scalars(select(IdentityTemplateRow.performer_id))))
        purged: dict[str, int] = {}
        for pid in pids:
            # A grant the performer's status stops (a minor's own signature) is neither
            # expired nor revoked: its templates stay until a guardian's grant can use them.
            if any(g.status in ("active", "not_usable")
                   for g in self.grants(performer_id=pid, now=now)):
                continue
            with self.store.session() as s:
                # Ledger first, then delete: the database lets a template row go only right
                # after a ledgered deletion that names it (see consent.write_guards).
                hashes = TemplateStore.hashes_of(s, pid)
                self.ledger.append(s, EventType.TEMPLATES_DELETED, {
                    "performer_id": pid, "template_sha256": hashes,
                    "reason": "no active grant"}, at=now, refs=[("performer", pid)])
                TemplateStore.delete_for(s, pid)
            purged[pid] = len(hashes)
        return purged

    def decision_document(self, decision_id: str) -> dict[str, Any]:
        with self.store.session() as s:
            row = s.get(DecisionRow, decision_id)
            if row is None:
                raise NotFoundError(f"no decision {decision_id}")
            value: dict[str, Any] = json.loads(row.document)
            value["ledger_index"] = row.ledger_index
            return value

    def issue_motion_seal(self, draft: dict[str, Any]) -> SignedDocument[MotionSeal]:
        """Sign a motion file's seal (drafted by :func:`consent.motion_seal.seal_draft`), but
        only for an *allowed* decision on record at the ledger index and hash it names."""
        with self.store.session() as s:
            row = s.get(DecisionRow, draft.get("decision_id"))
            if (row is None or not row.allowed
                    or row.ledger_index != draft.get("decision_ledger_index")):
                raise NotFoundError(f"no allowed decision {draft.get('decision_id')} on record "
                                    f"at ledger index {draft.get('decision_ledger_index')}")
            if hashlib.sha256(row.document).hexdigest() != draft.get("decision_sha256"):
                raise DocumentError(f"decision {row.decision_id} differs from the recorded one")
        return self._sign(MotionSeal, draft)

    def issue_decision_token(self, draft: dict[str, Any]) -> SignedDocument[RenderDecisionToken]:
        """Sign a render worker's decision token (drafted by
        :func:`consent.decision_token.token_draft`), only for an *allowed* decision on record
        at the ledger index and hash it names."""
        with self.store.session() as s:
            row = s.get(DecisionRow, draft.get("decision_id"))
            if (row is None or not row.allowed
                    or row.ledger_index != draft.get("decision_ledger_index")):
                raise NotFoundError(f"no allowed decision {draft.get('decision_id')} on record "
                                    f"at ledger index {draft.get('decision_ledger_index')}")
            if hashlib.sha256(row.document).hexdigest() != draft.get("decision_sha256"):
                raise DocumentError(f"decision {row.decision_id} differs from the recorded one")
        return self._sign(RenderDecisionToken, draft)


def _leaf_owners(facts: LedgerFacts, pids: Sequence[str]) -> dict[str, str]:
    """Grant and key id -> performer, for every grant and key the leaves record of ``pids``."""
    owner: dict[str, str] = {}
    for p in pids:
        leaves = facts.performers.get(p)
        if leaves is not None:
            owner.update(dict.fromkeys([*leaves.grants, *leaves.keys], p))
    return owner


def _leaf_targets(facts: LedgerFacts, pids: Sequence[str]) -> list[str]:
    return list(_leaf_owners(facts, pids))


def _facts_sound(problems: Sequence[str]) -> None:
    if problems:
        raise LedgerError(f"the ledger shows tampering, no approval status is trusted: "
                          f"{problems[0]}")


def _output(entry: LedgerEntry) -> PublishedOutput:
    body = entry.body
    return PublishedOutput(entry.index, body["output_sha256"], body["manifest_id"],
                           body["decision_id"], body["time"])


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value

