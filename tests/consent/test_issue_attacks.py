"""The four attacks of issue 13, each as its attacker would play it against the database."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from sqlalchemy import delete, select, update

from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.merkle import MerkleError, ProofError
from consent.registry import Registry
from consent.store import (
    GrantRow,
    LedgerEntryRow,
    LedgerNodeRow,
    LedgerRefRow,
    PerformerRow,
    RevocationRow,
    Store,
)
from tests.consent.helpers import OFFICER, decide, drop_guards, reasons, setup_world, truncate
from tests.factory import T0, Clock, signed_grant


def verify_problems(registry: Registry) -> str:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    assert not report.ok
    return " | ".join(f"[{p.kind}] {p.detail}" for p in report.problems)


def fresh(registry: Registry, store: Store, key: PrivateKey, clock: Clock) -> Registry:
    return Registry(store, key, "test.local/ledger", clock=clock)


# --------------------------------------------------------------------------- 1. revocation erased


def test_1_erased_revocation_and_its_refs_still_deny(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock) -> None:
    setup_world(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    drop_guards(store)
    with store.session() as s:
        s.execute(delete(RevocationRow))
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.ref_kind.in_(["grant", "revocation"])))
    for reg in (registry, fresh(registry, store, registry_key, clock)):
        d = decide(reg)
        assert not d.allowed and "the ledger records a revocation of grant-1" in reasons(d)
        assert [g.status for g in reg.grants()] == ["revoked"]
    problems = verify_problems(registry)
    assert "revocation" in problems and "ledger_refs" in problems


def test_1_erased_deceased_record_revision_still_denies(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock) -> None:
    setup_world(registry, performer)
    registry.update_performer_status("perf-a", officer=OFFICER, minor_until=None,
                                     deceased_on=date(2026, 5, 1))
    drop_guards(store)
    with store.session() as s:
        s.execute(delete(PerformerRow).where(PerformerRow.revision == 2))
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.ref_kind == "performer"))
    for reg in (registry, fresh(registry, store, registry_key, clock)):
        d = decide(reg)
        assert not d.allowed and "performer record 2 of perf-a" in reasons(d), d.reasons
    assert "performer record perf-a revision 2" in verify_problems(registry)


def test_1_revocation_entry_event_type_edited_still_denies(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock) -> None:
    setup_world(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    drop_guards(store)
    with store.session() as s:
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.event_type == "revocation")
                  .values(event_type="decision"))
    for reg in (registry, fresh(registry, store, registry_key, clock)):
        assert not decide(reg).allowed
    assert "type column" in verify_problems(registry)


# --------------------------------------------------------------------------- 2. grants inserted


def _insert(store: Store, doc: object, performer: PrivateKey) -> None:
    from tests.consent.test_registry_gate import grant_row

    drop_guards(store)
    with store.session() as s:
        s.add(grant_row(doc, "perf-a", performer))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["retired_key", "never_imported", "signed_in_the_future"])
def test_2_grant_rows_inserted_directly_deny(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock, how: str) -> None:
    setup_world(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    signer = performer
    overrides: dict[str, object] = {}
    if how == "retired_key":
        registry.rotate_key("perf-a", performer.key_id, PrivateKey.generate().public_key,
                            officer=OFFICER)
    elif how == "signed_in_the_future":
        overrides["signed_at"] = (T0 + timedelta(days=30)).isoformat().replace("+00:00", "Z")
    doc = signed_grant(signer, grant_id="grant-evil", **overrides)
    _insert(store, doc, signer)
    for reg in (registry, fresh(registry, store, registry_key, clock)):
        d = decide(reg)
        assert not d.allowed and "grant grant-evil of perf-a has no ledger entry" in reasons(d)
    assert "grant grant-evil has no ledger entry" in verify_problems(registry)


def test_2_a_grant_with_a_hand_appended_leaf_still_denies(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock) -> None:
    """The attacker also appends the grant_imported leaf (with correct hashes), but cannot
    sign the checkpoint that would cover it, and the key was retired before it."""
    setup_world(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    registry.rotate_key("perf-a", performer.key_id, PrivateKey.generate().public_key,
                        officer=OFFICER)
    doc = signed_grant(performer, grant_id="grant-evil")
    _insert(store, doc, performer)
    forger = Ledger(store, PrivateKey.generate(), "test.local/ledger", checkpoint_every=10**9)
    with store.session() as s:
        index = forger.append(s, EventType.GRANT_IMPORTED, {
            "grant_id": "grant-evil", "grant_sha256": doc.sha256, "performer_id": "perf-a",
            "signer_key_id": performer.key_id}, at=clock.now,
            refs=[("grant", "grant-evil"), ("performer", "perf-a")], document=doc.raw)
        s.execute(update(GrantRow).where(GrantRow.grant_id == "grant-evil")
                  .values(ledger_index=index))
    for reg in (registry, fresh(registry, store, registry_key, clock)):
        d = decide(reg)
        assert not d.allowed
        assert "not covered by any signed checkpoint" in reasons(d), d.reasons
        assert "retired" in reasons(d), d.reasons


# --------------------------------------------------------------------------- 3. tail truncation


def test_3_tail_truncation_after_a_revocation_denies(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock, tmp_path: object) -> None:
    from pathlib import Path

    log = Path(str(tmp_path)) / "ledger-checkpoints.log"
    reg = Registry(store, registry_key, "test.local/ledger", clock=clock, checkpoint_log=log)
    setup_world(reg, performer)
    reg.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                     performer_request_reference="Letter")
    with store.session() as s:
        index = s.scalar(select(RevocationRow.ledger_index))
        assert index is not None and int(index) + 1 in {
            int(json.loads(line)["note"].split("\n")[1]) for line in log.read_text().splitlines()}
    truncate(store, int(index))
    again = Registry(store, registry_key, "test.local/ledger", clock=clock, checkpoint_log=log)
    d = decide(again)
    assert not d.allowed and "truncated or rolled back" in reasons(d), d.reasons
    problems = verify_problems(again)  # the denial above was appended at the cut
    assert "was signed at tree size" in problems or "no longer produce the root" in problems


# --------------------------------------------------------------------------- 4. interior node


def test_4_edited_interior_node_is_named_by_verify(registry: Registry, performer: PrivateKey,
                                                   store: Store) -> None:
    setup_world(registry, performer)
    for _ in range(4):
        decide(registry)
    drop_guards(store)
    with store.session() as s:
        s.execute(update(LedgerNodeRow).where(LedgerNodeRow.level == 1, LedgerNodeRow.idx == 1)
                  .values(hash=b"\x00" * 32))
    problems = verify_problems(registry)
    assert "subtree hash (level 1, index 1)" in problems
    with store.session() as s, pytest.raises((ProofError, MerkleError)):
        registry.ledger.inclusion_proof(s, 0).verify()
    assert decide(registry).allowed  # the gate never relied on interior nodes
