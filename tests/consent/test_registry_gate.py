"""The gate end to end through the database-backed Registry (SQLite and PostgreSQL).

Besides the ordinary life of a grant (import, allow, revoke, rotate, status changes) this
edits rows behind the registry's back with SQLAlchemy, as an attacker with database access
would, and checks that no edit turns a deny into an allow.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import delete, select, update

from consent.canonical import canonical_bytes
from consent.documents import Grant, PerformerKey, Revocation, SignedDocument, sign_draft
from consent.errors import ClockError, KeyUnusableError, SignatureError, UnknownKeyError
from consent.fields import SignatoryRole
from consent.gate import Decision
from consent.keys import PrivateKey, short_id
from consent.ledger import EventType, Ledger
from consent.registry import Registry
from consent.store import GrantRow, PerformerKeyRow, PerformerRow, RevocationRow, Store
from tests.consent.helpers import drop_guards
from tests.factory import T0, Clock, match, request, signed_grant

OFFICER = "Officer O"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _attacker_owns_the_database(store: Store) -> None:
    """These tests tamper as whoever holds the database file would: SQLite's write guards
    (consent.write_guards) go first. PostgreSQL tests connect as the owner role."""
    drop_guards(store)


def authorize(registry: Registry, *args: Any, **kwargs: Any) -> Decision:
    """Authorize (default: perf-a lip-sync on track t1) and check the decision was ledgered."""
    req = args[0] if args else request()
    matches = args[1] if len(args) > 1 else [match()]
    d = registry.authorize(req, matches, **kwargs)
    assert isinstance(d.ledger_index, int)
    assert d.decision_id.startswith("dec-")
    doc = registry.decision_document(d.decision_id)
    assert doc["allowed"] is d.allowed
    assert doc["ledger_index"] == d.ledger_index
    assert doc["reasons"] == d.reasons
    assert doc["request_sha256"] == req.sha256
    with registry.store.session() as s:
        entry = Ledger.entry(s, d.ledger_index)
    assert entry.event_type is EventType.DECISION
    body = entry.body
    assert body["decision_id"] == d.decision_id
    assert body["allowed"] is d.allowed
    assert body["decision_sha256"] == hashlib.sha256(d.content_bytes()).hexdigest()
    assert [g["grant_id"] for g in body["grants"]] == [g.grant_id for g in d.grants_used]
    return d


def assert_denied(d: Decision, *fragments: str) -> None:
    assert not d.allowed
    assert d.grants_used == ()
    text = " | ".join(d.reasons)
    for fragment in fragments:
        assert fragment in text, (fragment, d.reasons)


def import_grant(registry: Registry, key: PrivateKey, *, expect: str = "active",
                 **kwargs: Any) -> SignedDocument[Grant]:
    doc = signed_grant(key, **kwargs)
    status = registry.import_grant(doc.raw, officer=OFFICER)
    assert status.status == expect, status
    return doc


def register(registry: Registry, performer_id: str, key: PrivateKey) -> None:
    registry.register_performer(performer_id, f"Performer {performer_id}", officer=OFFICER,
                                now=T0 - timedelta(days=200))
    registry.add_key(performer_id, key.public_key, officer=OFFICER,
                     now=T0 - timedelta(days=200))


def grant_row(doc: SignedDocument[Grant], performer_id: str, signer: PrivateKey) -> GrantRow:
    """A grant row as an attacker would insert it, bypassing import_grant's checks."""
    g = doc.payload
    return GrantRow(grant_id=g.grant_id, performer_id=performer_id, signer_key_id=signer.key_id,
                    document=doc.raw, document_sha256=doc.sha256, valid_from=g.valid_from,
                    valid_until=g.valid_until, imported_at=T0, imported_by="mallory",
                    ledger_index=0)


def stored_grant(registry: Registry, grant_id: str = "grant-1") -> bytes:
    with registry.store.session() as s:
        return s.execute(select(GrantRow.document)
                         .where(GrantRow.grant_id == grant_id)).scalar_one()


def ledger_ok(registry: Registry) -> None:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert report.ok, report


# --------------------------------------------------------------------------- ordinary life


def test_allow_then_revoke_by_officer_denies(registry: Registry, performer: PrivateKey,
                                             clock: Clock) -> None:
    doc = import_grant(registry, performer)
    d1 = authorize(registry)
    assert d1.allowed, d1.reasons
    assert [(g.grant_id, g.sha256) for g in d1.grants_used] == [("grant-1", doc.sha256)]
    assert registry.decision_document(d1.decision_id)["allowed"] is True

    clock.advance(minutes=1)
    registry.revoke_grant("grant-1", reason="Performer withdrew", officer=OFFICER,
                          performer_request_reference="Letter 1")
    clock.advance(minutes=1)
    d2 = authorize(registry)
    assert_denied(d2, "grant grant-1 was revoked on 2026-06-01T12:01:00Z",
                  "by the consent officer")
    assert registry.decision_document(d2.decision_id)["allowed"] is False
    assert d2.ledger_index > d1.ledger_index
    # the earlier allow stays on record as it was
    assert registry.decision_document(d1.decision_id)["allowed"] is True
    assert registry.grant("grant-1").status == "revoked"
    ledger_ok(registry)


def test_performer_signed_revocation_denies(registry: Registry, performer: PrivateKey) -> None:
    import_grant(registry, performer)
    assert authorize(registry).allowed
    rev = sign_draft(Revocation, {
        "revocation_id": "rev-perf-1", "performer_id": "perf-a",
        "target": {"kind": "grant", "id": "grant-1"}, "revoked_at": "2026-06-01T11:00:00Z",
        "reason": "I no longer agree", "issued_by": {"role": "performer", "name": "Perf A"},
    }, [performer])
    registry.import_revocation(rev.raw, officer=OFFICER)
    assert_denied(authorize(registry), "grant grant-1 was revoked", "by the performer")


def test_revocation_signed_by_a_stranger_is_refused(registry: Registry,
                                                    performer: PrivateKey) -> None:
    import_grant(registry, performer)
    rev = sign_draft(Revocation, {
        "revocation_id": "rev-x", "performer_id": "perf-a",
        "target": {"kind": "grant", "id": "grant-1"}, "revoked_at": "2026-06-01T11:00:00Z",
        "reason": "Not really the performer", "issued_by": {"role": "performer", "name": "X"},
    }, [PrivateKey.generate()])
    with pytest.raises(UnknownKeyError):
        registry.import_revocation(rev.raw, officer=OFFICER)
    assert authorize(registry).allowed


def test_other_denials_are_ledgered_too(registry: Registry, performer: PrivateKey) -> None:
    import_grant(registry, performer)
    assert_denied(authorize(registry, request(language="de")),
                  "grant grant-1 does not cover language de")
    assert_denied(authorize(registry, request(), [match(performer_id="perf-b")]),
                  "face t1 matches perf-b, not perf-a")
    assert_denied(authorize(registry, request("perf-z"), [match(performer_id="perf-z")]),
                  "perf-z")
    d = authorize(registry, request(), [match(), match(track_id="t2", performer_id=None,
                                                       distance=None)])
    assert d.allowed and d.untouched_tracks == ("t2",)
    ledger_ok(registry)


def test_clock_behind_the_ledger_is_denied(registry: Registry, performer: PrivateKey) -> None:
    import_grant(registry, performer)
    d = authorize(registry, now=T0 - timedelta(minutes=6))
    assert_denied(d, "clock is untrusted")
    assert authorize(registry, now=T0 - timedelta(minutes=4)).allowed
    with pytest.raises(ClockError):
        registry.authorize(request(), [match()], now=datetime(2026, 6, 1, 12, 0))


def test_clock_behind_the_ledger_stays_denied(registry: Registry, performer: PrivateKey,
                                              clock: Clock) -> None:
    """A clock set back stays untrusted: a denied decision must not lower the bar.

    The first decision under a clock an hour behind the ledger is denied, but it is ledgered
    at the untrusted time; the newest ledger event then reads an hour earlier and the same
    wrong clock must still be denied on the next call.
    """
    import_grant(registry, performer)
    clock.now = T0 - timedelta(hours=1)
    assert_denied(authorize(registry), "clock is untrusted")
    d = authorize(registry)
    assert_denied(d, "clock is untrusted")


def test_key_rotation_keeps_old_grants_and_retires_the_key(registry: Registry,
                                                          performer: PrivateKey,
                                                          clock: Clock) -> None:
    import_grant(registry, performer)
    new = PrivateKey.generate()
    registry.rotate_key("perf-a", performer.key_id, new.public_key, officer=OFFICER)
    statuses = {k.key_id: k.status for k in registry.keys("perf-a")}
    assert statuses == {performer.key_id: "retired", new.key_id: "active"}

    d = authorize(registry)
    assert d.allowed, d.reasons
    assert [g.grant_id for g in d.grants_used] == ["grant-1"]

    with pytest.raises(KeyUnusableError, match="retired"):
        registry.import_grant(signed_grant(performer, grant_id="grant-2").raw, officer=OFFICER)
    import_grant(registry, new, grant_id="grant-3", scope={"languages": ["de"]})
    assert authorize(registry, request(language="de")).grants_used[0].grant_id == "grant-3"
    ledger_ok(registry)


def test_key_revocation_denies_grants_it_signed(registry: Registry, performer: PrivateKey,
                                                clock: Clock) -> None:
    import_grant(registry, performer)
    other = PrivateKey.generate()
    registry.add_key("perf-a", other.public_key, officer=OFFICER)
    import_grant(registry, other, grant_id="grant-2", scope={"languages": ["de"]})
    assert authorize(registry).allowed
    assert authorize(registry, request(language="de")).allowed

    registry.revoke_key(performer.key_id, reason="Laptop stolen", officer=OFFICER,
                        performer_request_reference="Phone call 3")
    assert_denied(authorize(registry), f"the key {short_id(performer.key_id)} that signed "
                  "grant grant-1 was revoked")
    # a grant signed by the performer's other key is unaffected
    assert authorize(registry, request(language="de")).allowed
    assert registry.grant("grant-1").status == "key_revoked"
    with pytest.raises(KeyUnusableError, match="revoked"):
        registry.import_grant(signed_grant(performer, grant_id="grant-9").raw, officer=OFFICER)


def test_grant_signed_with_another_performers_key_is_refused(registry: Registry,
                                                             performer: PrivateKey) -> None:
    key_b = PrivateKey.generate()
    register(registry, "perf-b", key_b)
    with pytest.raises(UnknownKeyError, match="perf-b"):
        registry.import_grant(signed_grant(key_b).raw, officer=OFFICER)


def test_minor_needs_a_guardian(registry: Registry, performer: PrivateKey,
                                clock: Clock) -> None:
    import_grant(registry, performer)
    assert authorize(registry).allowed
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=date(2030, 1, 1),
                                     deceased_on=None)
    assert_denied(authorize(registry), "performer is a minor until 2030-01-01",
                  "needs a guardian signatory")

    guardian = PrivateKey.generate()
    registry.add_key("perf-a", guardian.public_key, officer=OFFICER,
                     holder_role=SignatoryRole.GUARDIAN, holder_name="Parent P",
                     authority_evidence="Birth certificate 12")
    import_grant(registry, guardian, grant_id="grant-g", scope={"languages": ["es-ES"]},
                 signatory={"role": "guardian", "name": "Parent P",
                            "authority_evidence": "Birth certificate 12"})
    d = authorize(registry, request(language="es-ES"))
    assert d.allowed, d.reasons
    assert [g.grant_id for g in d.grants_used] == ["grant-g"]
    assert_denied(authorize(registry), "needs a guardian signatory")

    # a guardian key cannot sign as the performer themself
    with pytest.raises(SignatureError, match="guardian"):
        registry.import_grant(signed_grant(guardian, grant_id="grant-x").raw, officer=OFFICER)

    # coming of age: the performer's own grant is usable again
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=None,
                                     deceased_on=None)
    d = authorize(registry)
    assert d.allowed and d.grants_used[0].grant_id == "grant-1"


def test_deceased_performer_needs_an_estate_grant(registry: Registry, performer: PrivateKey,
                                                  clock: Clock) -> None:
    import_grant(registry, performer)
    import_grant(registry, performer, grant_id="grant-until",
                 scope={"languages": ["de"]},
                 after_death={"policy": "until_date", "until": "2026-09-01"})
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=None,
                                     deceased_on=date(2026, 5, 1))
    assert_denied(authorize(registry), "performer deceased",
                  "grant grant-1 does not extend after death")
    assert authorize(registry, request(language="de")).allowed

    estate = PrivateKey.generate()
    registry.add_key("perf-a", estate.public_key, officer=OFFICER,
                     holder_role=SignatoryRole.ESTATE, holder_name="Estate E",
                     authority_evidence="Probate order 99")
    import_grant(registry, estate, grant_id="grant-estate",
                 signatory={"role": "estate", "name": "Estate E",
                            "authority_evidence": "Probate order 99"})
    d = authorize(registry)
    assert d.allowed, d.reasons
    assert d.grants_used[0].grant_id == "grant-estate"

    clock.now = datetime.fromisoformat("2026-09-01T00:00:00Z")
    assert_denied(authorize(registry, request(language="de")),
                  "allowed use only until 2026-09-01")


def test_estate_grant_while_alive_is_denied(registry: Registry, performer: PrivateKey) -> None:
    estate = PrivateKey.generate()
    registry.add_key("perf-a", estate.public_key, officer=OFFICER,
                     holder_role=SignatoryRole.ESTATE, holder_name="Estate E",
                     authority_evidence="Probate order 99")
    # Listed as the gate sees it (issue 15: never "active" while the gate denies it).
    import_grant(registry, estate, grant_id="grant-estate", expect="not_usable",
                 signatory={"role": "estate", "name": "Estate E",
                            "authority_evidence": "Probate order 99"})
    assert_denied(authorize(registry), "signed by an estate but the performer is not "
                  "recorded as deceased")


# --------------------------------------------------------------------------- tampering


def test_tampered_grant_bytes_are_denied(registry: Registry, performer: PrivateKey) -> None:
    import_grant(registry, performer)
    raw = stored_grant(registry)
    assert b'"languages":["fr","es-ES"]' in raw
    forged = raw.replace(b'"languages":["fr","es-ES"]', b'"languages":["fr","es-ES","de"]')
    with registry.store.session() as s:
        s.execute(update(GrantRow).where(GrantRow.grant_id == "grant-1")
                  .values(document=forged))
    assert stored_grant(registry) == forged
    for req in (request(language="de"), request()):
        d = authorize(registry, req)
        assert_denied(d, "grant grant-1 of perf-a differs from the document its ledger entry",
                      "tampering")
    assert registry.grant("grant-1").status == "invalid"


@pytest.mark.parametrize("edit", ["valid_until", "performer", "signature"])
def test_other_edits_of_a_stored_grant_are_denied(registry: Registry, performer: PrivateKey,
                                                  clock: Clock, edit: str) -> None:
    import_grant(registry, performer, valid_until="2026-07-01T00:00:00Z")
    body = json.loads(stored_grant(registry))
    if edit == "valid_until":
        body["signed"]["valid_until"] = "2030-01-01T00:00:00Z"
        clock.now = datetime.fromisoformat("2026-08-01T00:00:00Z")
    elif edit == "performer":
        body["signed"]["performer"]["legal_name"] = "Someone Else"
    else:
        other = signed_grant(PrivateKey.generate())
        body["signatures"] = json.loads(other.raw)["signatures"]
    with registry.store.session() as s:
        s.execute(update(GrantRow).where(GrantRow.grant_id == "grant-1")
                  .values(document=json.dumps(body).encode()))
    assert_denied(authorize(registry), "grant grant-1 of perf-a differs from the document",
                  "tampering")


def test_swapped_grant_performer_column_never_allows(registry: Registry,
                                                     performer: PrivateKey) -> None:
    key_b = PrivateKey.generate()
    register(registry, "perf-b", key_b)
    import_grant(registry, performer)
    with registry.store.session() as s:
        s.execute(update(GrantRow).where(GrantRow.grant_id == "grant-1")
                  .values(performer_id="perf-b"))
    # perf-a's grant is now filed under perf-b: it cannot authorise a render of perf-b ...
    d = authorize(registry, request("perf-b"), [match(performer_id="perf-b")])
    assert_denied(d, "grant grant-1 of perf-b has no ledger entry", "tampering")
    # ... and perf-a has lost it (a deny, never a wrongful allow)
    assert_denied(authorize(registry), "the ledger records grant grant-1 of perf-a",
                  "no longer holds it")


def test_deleted_revocation_row_still_denies(registry: Registry, performer: PrivateKey) -> None:
    import_grant(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter 2")
    assert_denied(authorize(registry), "was revoked")
    with registry.store.session() as s:
        gone = s.execute(delete(RevocationRow).where(RevocationRow.target_id == "grant-1"))
        assert gone.rowcount == 1
    d = authorize(registry)
    assert_denied(d, "the ledger records a revocation of grant-1",
                  "missing from the registry (tampering?)")
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert [p.kind for p in report.problems] == ["documents"]
    assert "is missing from the registry (deleted row)" in report.problems[0].detail


def test_deleted_key_revocation_row_still_denies(registry: Registry,
                                                 performer: PrivateKey) -> None:
    import_grant(registry, performer)
    registry.revoke_key(performer.key_id, reason="Key lost", officer=OFFICER,
                        performer_request_reference="Letter 3")
    with registry.store.session() as s:
        s.execute(delete(RevocationRow))
    assert_denied(authorize(registry), f"revocation of {performer.key_id[:12]}", "tampering")


def test_hidden_revocation_row_is_still_found(registry: Registry,
                                              performer: PrivateKey) -> None:
    """Moving a revocation row to another performer and target does not hide it."""
    import_grant(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter 4")
    with registry.store.session() as s:
        s.execute(update(RevocationRow).values(performer_id="perf-zz"))
    assert_denied(authorize(registry), "grant grant-1 was revoked")
    with registry.store.session() as s:
        s.execute(update(RevocationRow).values(target_id="grant-zz"))
    assert not authorize(registry).allowed


def _forged_binding(performer_id: str, attacker: PrivateKey, signer: PrivateKey) -> bytes:
    return sign_draft(PerformerKey, {
        "performer_id": performer_id, "key_id": attacker.key_id,
        "public_key": attacker.public_key.to_base64(),
        "holder": {"role": "self", "name": f"Performer {performer_id}"},
        "registered_at": "2025-06-01T12:00:00Z", "registered_by": OFFICER,
    }, [signer]).raw


@pytest.mark.parametrize("how", ["self-signed", "old-registry-signature", "new-row"])
def test_forged_key_binding_does_not_authorise_the_attacker(
        registry: Registry, performer: PrivateKey, registry_key: PrivateKey, how: str) -> None:
    import_grant(registry, performer)
    attacker = PrivateKey.generate()
    with registry.store.session() as s:
        original = s.execute(select(PerformerKeyRow.document).where(
            PerformerKeyRow.key_id == performer.key_id)).scalar_one()
        if how == "self-signed":
            forged = _forged_binding("perf-a", attacker, attacker)
        else:
            body = json.loads(original)
            body["signed"]["key_id"] = attacker.key_id
            body["signed"]["public_key"] = attacker.public_key.to_base64()
            forged = canonical_bytes(body)
        if how == "new-row":
            s.add(PerformerKeyRow(key_id=attacker.key_id, performer_id="perf-a",
                                  document=forged, holder_role="self", registered_at=T0,
                                  supersedes=None))
        else:
            s.execute(update(PerformerKeyRow).where(PerformerKeyRow.key_id == performer.key_id)
                      .values(document=forged))
        evil = signed_grant(attacker, grant_id="grant-evil", scope={"languages": ["de"]})
        s.add(grant_row(evil, "perf-a", attacker))
    d = authorize(registry, request(language="de"))
    assert_denied(d, "grant grant-evil of perf-a has no ledger entry", "key binding",
                  "tampering")


def test_another_performers_genuine_binding_refiled_is_ignored(
        registry: Registry, performer: PrivateKey) -> None:
    key_b = PrivateKey.generate()
    register(registry, "perf-b", key_b)
    import_grant(registry, performer)
    with registry.store.session() as s:
        s.execute(update(PerformerKeyRow).where(PerformerKeyRow.key_id == key_b.key_id)
                  .values(performer_id="perf-a"))
        evil = signed_grant(key_b, grant_id="grant-evil", scope={"languages": ["de"]})
        s.add(grant_row(evil, "perf-a", key_b))
    assert_denied(authorize(registry, request(language="de")),
                  "grant grant-evil of perf-a has no ledger entry", "tampering")
    # perf-a's record now holds rows the ledger never saw: nothing of perf-a passes
    assert_denied(authorize(registry), f"key binding {key_b.key_id} of perf-a")


def test_grant_inserted_with_a_revoked_key_is_denied(registry: Registry,
                                                     performer: PrivateKey) -> None:
    registry.revoke_key(performer.key_id, reason="Stolen", officer=OFFICER,
                        performer_request_reference="Letter 5")
    with registry.store.session() as s:
        s.add(grant_row(signed_grant(performer), "perf-a", performer))
    assert_denied(authorize(registry), "grant grant-1 of perf-a has no ledger entry")


def _set_record(registry: Registry, revision: int, document: bytes) -> None:
    with registry.store.session() as s:
        s.execute(update(PerformerRow).where(PerformerRow.performer_id == "perf-a",
                                             PerformerRow.revision == revision)
                  .values(document=document))


def test_edited_performer_record_minor_until_removed_is_denied(registry: Registry,
                                                               performer: PrivateKey) -> None:
    import_grant(registry, performer)
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=date(2030, 1, 1),
                                     deceased_on=None)
    assert_denied(authorize(registry), "performer is a minor")
    with registry.store.session() as s:
        raw = s.execute(select(PerformerRow.document).where(
            PerformerRow.performer_id == "perf-a", PerformerRow.revision == 2)).scalar_one()
    body = json.loads(raw)
    del body["signed"]["minor_until"]
    for forged in (json.dumps(body).encode(), canonical_bytes(body)):
        _set_record(registry, 2, forged)
        d = authorize(registry)
        assert_denied(d, "performer record 2 of perf-a differs from the document")


def test_edited_performer_record_deceased_removed_is_denied(registry: Registry,
                                                            performer: PrivateKey) -> None:
    import_grant(registry, performer)
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=None,
                                     deceased_on=date(2026, 5, 1))
    assert_denied(authorize(registry), "performer deceased")
    with registry.store.session() as s:
        raw = s.execute(select(PerformerRow.document).where(
            PerformerRow.performer_id == "perf-a", PerformerRow.revision == 2)).scalar_one()
    body = json.loads(raw)
    del body["signed"]["deceased_on"]
    _set_record(registry, 2, canonical_bytes(body))
    assert_denied(authorize(registry), "performer record 2 of perf-a differs", "tampering")


def test_deleted_newer_performer_record_is_still_denied(registry: Registry,
                                                        performer: PrivateKey) -> None:
    """Deleting the revision that made the performer a minor must not restore the adult one.

    The ledger records the PERFORMER_UPDATED event (revision 2 and its hash), just as it
    records revocations, so a vanished revision is tampering and must fail closed.
    """
    import_grant(registry, performer)
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=date(2030, 1, 1),
                                     deceased_on=None)
    assert_denied(authorize(registry), "performer is a minor")
    with registry.store.session() as s:
        s.execute(delete(PerformerRow).where(PerformerRow.performer_id == "perf-a",
                                             PerformerRow.revision == 2))
    d = authorize(registry)
    assert not d.allowed, "a deleted performer-record revision turned a deny into an allow"


def test_an_edited_document_is_named_by_verify(registry: Registry,
                                              performer: PrivateKey) -> None:
    """Rows are checked against the hashes their leaves record: verify names the edit."""
    import_grant(registry, performer)
    with registry.store.session() as s:
        s.execute(update(GrantRow).values(document=b"{}"))
    assert_denied(authorize(registry), "grant grant-1 of perf-a differs", "tampering")
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert not report.ok
    assert any("grant grant-1" in p.detail for p in report.problems), report.problems


def test_grant_document_hash_matches_ledger(registry: Registry, performer: PrivateKey) -> None:
    doc = import_grant(registry, performer)
    with registry.store.session() as s:
        entries = Ledger.entries_referencing(s, "grant", "grant-1", EventType.GRANT_IMPORTED)
    assert [e.body["grant_sha256"] for e in entries] == [doc.sha256]
