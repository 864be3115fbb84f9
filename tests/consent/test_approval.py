"""Performer approval of outputs (issue 17): grant schema 2's ``approval`` field, the signed
``output_approval`` document, the hold on outputs and the attacks on it, on SQLite and
PostgreSQL (the ``registry`` fixture runs on both)."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, update

from consent.approval import ApprovalState, approval_draft
from consent.documents import Grant, OutputApproval, SignedDocument, sign_draft
from consent.errors import (
    ApprovalNotPublishedError,
    ApprovalNotRequiredError,
    DocumentError,
    DuplicateError,
    KeyUnusableError,
    NotFoundError,
    SignatureError,
    UnknownKeyError,
)
from consent.fields import ApprovalDecision, SignatoryRole
from consent.keys import PrivateKey, load_public_key
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from consent.store import ApprovalRow, LedgerRefRow
from tests.consent.helpers import OFFICER, drop_guards
from tests.factory import Clock, grant_draft, match, request, signed_grant

OUT_A = hashlib.sha256(b"render A").hexdigest()
OUT_B = hashlib.sha256(b"render B").hexdigest()
DEMO = Path(__file__).resolve().parents[2] / "assets" / "demo"


def publish(registry: Registry, output: str, **request_kwargs: Any) -> int:
    decision = registry.authorize(request(**request_kwargs), [match()])
    assert decision.allowed, decision.reasons
    return registry.record_output(decision, output, f"urn:c2pa:{output[:8]}")


def approval(key: PrivateKey, clock: Clock, *, output: str = OUT_A,
             decision: ApprovalDecision = ApprovalDecision.APPROVED,
             performer_id: str = "perf-a", grant_id: str = "grant-1", role: str = "self",
             signed_at: Any = None, note: str | None = "Looks right.") -> SignedDocument[Any]:
    return sign_draft(OutputApproval, approval_draft(
        performer_id=performer_id, grant_id=grant_id, output_sha256=output, decision=decision,
        signer_role=role, signer_name="Performer perf-a",
        signed_at=signed_at or clock.now, note=note), [key])


@pytest.fixture
def held(registry: Registry, performer: PrivateKey, clock: Clock) -> Registry:
    """perf-a's grant-1 requires approval; output A is published under it (held)."""
    status = registry.import_grant(signed_grant(performer, approval="required").raw,
                                   officer=OFFICER)
    assert status.status == "active"
    publish(registry, OUT_A)
    clock.advance(minutes=10)
    return registry


# --------------------------------------------------------------------------- the schema


def test_old_grants_keep_their_version_and_bytes() -> None:
    raw = (DEMO / "demo-grant.json").read_bytes()
    doc = SignedDocument.from_bytes(raw, Grant)
    assert doc.payload.schema_version == 1 and doc.payload.approval is None
    assert not doc.payload.approval_required
    assert "approval" not in doc.body
    doc.verify(load_public_key((DEMO / "demo-performer.pub").read_bytes()))
    assert doc.to_bytes() + b"\n" == raw or doc.to_bytes() == raw.strip()
    # A draft without the field is still signed at version 1, with the same bytes as before.
    new = signed_grant(PrivateKey.generate())
    assert new.body["schema_version"] == 1 and "approval" not in new.body


def test_version_2_states_approval_and_only_version_2() -> None:
    key = PrivateKey.generate()
    doc = signed_grant(key, approval="required")
    assert doc.body["schema_version"] == 2 and doc.payload.approval_required
    assert not signed_grant(key, approval="not_required").payload.approval_required
    with pytest.raises(DocumentError, match="approval"):
        sign_draft(Grant, {**grant_draft(), "schema_version": 2}, [key])
    with pytest.raises(DocumentError, match="approval"):
        sign_draft(Grant, {**grant_draft(approval="required"), "schema_version": 1}, [key])
    with pytest.raises(DocumentError, match="approval"):
        sign_draft(Grant, grant_draft(approval="sometimes"), [key])


# --------------------------------------------------------------------------- the hold


def test_outputs_of_a_grant_without_approval_are_not_held(
        registry: Registry, performer: PrivateKey) -> None:
    registry.import_grant(signed_grant(performer).raw, officer=OFFICER)
    registry.import_grant(signed_grant(performer, grant_id="grant-2",
                                       approval="not_required").raw, officer=OFFICER)
    publish(registry, OUT_A)
    status = registry.approval_status(OUT_A)
    assert status.state is ApprovalState.NOT_REQUIRED and status.deliverable
    with registry.store.session() as s:
        leaf = Ledger.entries_referencing(s, "output", OUT_A)[-1].body
    assert "approval_required" not in leaf  # the leaf is exactly as before the feature


def test_held_until_the_performer_approves(held: Registry, performer: PrivateKey,
                                           clock: Clock) -> None:
    status = held.approval_status(OUT_A)
    assert status.state is ApprovalState.AWAITING and not status.deliverable
    assert [(r.grant_id, r.performer_id) for r in status.required] == [("grant-1", "perf-a")]
    doc = approval(performer, clock)
    after = held.import_approval(doc.raw, officer=OFFICER)
    assert after.state is ApprovalState.APPROVED and after.deliverable
    assert after.decisions[0].approval_sha256 == doc.sha256
    assert held.approval_document(doc.payload.approval_id).raw == doc.raw
    with held.store.session() as s:
        entries = Ledger.entries_referencing(s, "output", OUT_A, EventType.APPROVAL_RECORDED)
        assert held.ledger.verify(s).ok
    assert entries[-1].body["document_sha256"] == hashlib.sha256(doc.raw).hexdigest()
    with pytest.raises(DuplicateError):
        held.import_approval(doc.raw, officer=OFFICER)


def test_rejection_is_not_deliverable_and_the_newest_decision_stands(
        held: Registry, performer: PrivateKey, clock: Clock) -> None:
    rejected = held.import_approval(
        approval(performer, clock, decision=ApprovalDecision.REJECTED,
                 note="Mouth drifts in the last line.").raw, officer=OFFICER)
    assert rejected.state is ApprovalState.REJECTED and not rejected.deliverable
    with held.store.session() as s:
        assert Ledger.entries_referencing(s, "output", OUT_A, EventType.APPROVAL_REJECTED)
    clock.advance(minutes=5)
    again = held.import_approval(approval(performer, clock).raw, officer=OFFICER)
    assert again.state is ApprovalState.APPROVED


def test_status_comes_from_the_leaves_not_the_index(held: Registry, performer: PrivateKey,
                                                    clock: Clock) -> None:
    held.import_approval(approval(performer, clock, decision=ApprovalDecision.REJECTED).raw,
                         officer=OFFICER)
    drop_guards(held.store)
    with held.store.session() as s:  # hide the rejection from every index
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.ref_id == OUT_A))
    fresh = Registry(held.store, held._key, "test.local/ledger", clock=held.clock)
    assert fresh.approval_status(OUT_A).state is ApprovalState.REJECTED


def test_ledger_verify_names_an_edited_or_deleted_approval_row(
        held: Registry, performer: PrivateKey, clock: Clock) -> None:
    doc = approval(performer, clock, decision=ApprovalDecision.REJECTED)
    held.import_approval(doc.raw, officer=OFFICER)
    drop_guards(held.store)
    with held.store.session() as s:
        s.execute(update(ApprovalRow).values(decision="approved"))
        report = held.ledger.verify(s)
    assert not report.ok
    assert any("edited row" in p.detail and doc.payload.approval_id in p.detail
               for p in report.problems)
    with held.store.session() as s:
        s.execute(delete(ApprovalRow))
        report = held.ledger.verify(s)
    assert any("deleted row" in p.detail for p in report.problems)
    # The status never came from the row: still rejected.
    assert held.approval_status(OUT_A).state is ApprovalState.REJECTED


def test_unknown_output_has_no_status(held: Registry) -> None:
    with pytest.raises(NotFoundError):
        held.approval_status(OUT_B)


# --------------------------------------------------------------------------- attacks


def test_forged_approval_refused(held: Registry, performer: PrivateKey, clock: Clock) -> None:
    doc = approval(performer, clock, decision=ApprovalDecision.REJECTED)
    envelope = json.loads(doc.raw)
    envelope["signed"]["decision"] = "approved"  # the performer rejected it
    with pytest.raises(SignatureError):
        held.import_approval(json.dumps(envelope).encode(), officer=OFFICER)
    with pytest.raises(UnknownKeyError):  # signed by a key nobody registered
        held.import_approval(approval(PrivateKey.generate(), clock).raw, officer=OFFICER)
    assert held.approval_status(OUT_A).state is ApprovalState.AWAITING


def test_approval_by_another_performers_key_refused(held: Registry, clock: Clock) -> None:
    other = PrivateKey.generate()
    held.register_performer("perf-b", "Performer perf-b", officer=OFFICER)
    held.add_key("perf-b", other.public_key, officer=OFFICER)
    with pytest.raises(UnknownKeyError, match="perf-b"):
        held.import_approval(approval(other, clock).raw, officer=OFFICER)
    # perf-b speaking for themselves about perf-a's grant: not their grant.
    with pytest.raises(NotFoundError, match="grant-1"):
        held.import_approval(approval(other, clock, performer_id="perf-b").raw,
                             officer=OFFICER)
    assert held.approval_status(OUT_A).state is ApprovalState.AWAITING


def test_approval_cannot_be_replayed_for_another_output(
        held: Registry, performer: PrivateKey, clock: Clock) -> None:
    publish(held, OUT_B)
    clock.advance(minutes=1)
    doc = approval(performer, clock, output=OUT_A)
    held.import_approval(doc.raw, officer=OFFICER)
    assert held.approval_status(OUT_B).state is ApprovalState.AWAITING
    envelope = json.loads(doc.raw)
    envelope["signed"]["output_sha256"] = OUT_B
    with pytest.raises(SignatureError):
        held.import_approval(json.dumps(envelope).encode(), officer=OFFICER)
    envelope["signed"]["approval_id"] = "appr-replayed"
    with pytest.raises(SignatureError):
        held.import_approval(json.dumps(envelope).encode(), officer=OFFICER)
    assert held.approval_status(OUT_B).state is ApprovalState.AWAITING


def test_revoked_or_retired_key_refused(held: Registry, performer: PrivateKey,
                                        clock: Clock) -> None:
    successor = PrivateKey.generate()
    held.rotate_key("perf-a", performer.key_id, successor.public_key, officer=OFFICER)
    with pytest.raises(KeyUnusableError, match="retired"):
        held.import_approval(approval(performer, clock).raw, officer=OFFICER)
    held.revoke_key(successor.key_id, reason="Phone stolen.", officer=OFFICER,
                    performer_request_reference="call 2026-06-01")
    with pytest.raises(KeyUnusableError, match="revoked"):
        held.import_approval(approval(successor, clock).raw, officer=OFFICER)
    assert held.approval_status(OUT_A).state is ApprovalState.AWAITING


def test_approval_signed_with_a_key_revoked_later_stops_counting(
        held: Registry, performer: PrivateKey, clock: Clock) -> None:
    assert held.import_approval(approval(performer, clock).raw,
                                officer=OFFICER).state is ApprovalState.APPROVED
    held.revoke_key(performer.key_id, reason="Key leaked.", officer=OFFICER,
                    performer_request_reference="letter 17")
    status = held.approval_status(OUT_A)
    assert status.state is ApprovalState.AWAITING
    assert "revoked" in status.ignored[0]


def test_approval_before_publishing_refused(held: Registry, performer: PrivateKey,
                                            clock: Clock) -> None:
    with pytest.raises(ApprovalNotPublishedError):  # output B is not published (yet)
        held.import_approval(approval(performer, clock, output=OUT_B).raw, officer=OFFICER)
    early = approval(performer, clock, output=OUT_B, signed_at=clock.now)
    clock.advance(hours=1)
    publish(held, OUT_B)
    with pytest.raises(ApprovalNotPublishedError, match="before the output was published"):
        held.import_approval(early.raw, officer=OFFICER)
    future = approval(performer, clock, output=OUT_B, signed_at=clock.now + timedelta(days=1))
    with pytest.raises(DocumentError, match="future"):
        held.import_approval(future.raw, officer=OFFICER)
    assert held.approval_status(OUT_B).state is ApprovalState.AWAITING


def test_approval_for_a_grant_without_approval_refused(
        registry: Registry, performer: PrivateKey, clock: Clock) -> None:
    registry.import_grant(signed_grant(performer).raw, officer=OFFICER)
    publish(registry, OUT_A)
    with pytest.raises(ApprovalNotRequiredError):
        registry.import_approval(approval(performer, clock).raw, officer=OFFICER)


def test_signer_role_must_match_the_key(held: Registry, performer: PrivateKey,
                                        clock: Clock) -> None:
    with pytest.raises(SignatureError, match="guardian"):
        held.import_approval(approval(performer, clock, role="guardian").raw,
                             officer=OFFICER)


def test_a_registered_signatory_may_approve_for_the_performer(
        held: Registry, clock: Clock) -> None:
    """A union designee's key registered to perf-a (with its authority) signs as such."""
    designee = PrivateKey.generate()
    held.add_key("perf-a", designee.public_key, officer=OFFICER,
                 holder_role=SignatoryRole.UNION_DESIGNEE, holder_name="Union Rep",
                 authority_evidence="Union mandate 2026-17 for perf-a's approvals.")
    with pytest.raises(SignatureError, match="union_designee"):
        held.import_approval(approval(designee, clock).raw, officer=OFFICER)  # says "self"
    status = held.import_approval(approval(designee, clock, role="union_designee").raw,
                                  officer=OFFICER)
    assert status.state is ApprovalState.APPROVED
    assert status.decisions[0].signer_key_id == designee.key_id
