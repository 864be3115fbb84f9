"""No decision cache outlives a ledger append: a long-running registry (the UI's, a render
worker's) sees every revocation and status change another process appended, at its very
next decision, because its view of the ledger is brought up to date inside each decision's
own transaction."""

from __future__ import annotations

from datetime import date

import pytest

from consent.keys import PrivateKey
from consent.ledger import EventType
from consent.registry import Registry
from consent.store import Store
from tests.consent.helpers import OFFICER, decide, reasons, setup_world
from tests.factory import Clock, signed_grant


@pytest.fixture
def other(store: Store, registry_key: PrivateKey, clock: Clock) -> Registry:
    """A second process on the same database (its own engine and ledger view)."""
    return Registry(Store(store.engine), registry_key, "test.local/ledger", clock=clock)


@pytest.mark.parametrize("change", ["revoke_grant", "revoke_key", "deceased", "minor"])
def test_another_process_append_is_seen_at_the_next_decision(
        registry: Registry, performer: PrivateKey, other: Registry, change: str) -> None:
    setup_world(registry, performer)
    for _ in range(3):  # a warm view, loaded and advanced several times
        assert decide(registry).allowed
    if change == "revoke_grant":
        other.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                           performer_request_reference="Letter")
        expected = "was revoked"
    elif change == "revoke_key":
        other.revoke_key(performer.key_id, reason="Lost", officer=OFFICER,
                         performer_request_reference="Letter")
        expected = "was revoked"
    elif change == "deceased":
        other.update_performer_status("perf-a", officer=OFFICER, minor_until=None,
                                      deceased_on=date(2026, 5, 1))
        expected = "performer deceased"
    else:
        other.update_performer_status("perf-a", officer=OFFICER,
                                      minor_until=date(2030, 1, 1), deceased_on=None)
        expected = "performer is a minor"
    d = decide(registry)
    assert not d.allowed and expected in reasons(d), d.reasons
    status = registry.grant("grant-1").status
    assert status != "active"


def test_a_failed_transaction_leaves_no_trace_in_the_view(
        registry: Registry, performer: PrivateKey) -> None:
    """The view reads committed leaves only: an import that rolled back is not a grant."""
    setup_world(registry, performer)
    doc = signed_grant(performer, grant_id="grant-2")

    def import_then_fail() -> None:
        with registry.store.session() as s:
            registry.ledger.append(s, EventType.GRANT_IMPORTED, {
                "grant_id": "grant-2", "grant_sha256": doc.sha256, "performer_id": "perf-a",
                "signer_key_id": performer.key_id}, at=registry.clock(),
                refs=[("grant", "grant-2")], document=doc.raw, checkpoint=True)
            registry._evidence(s, ["perf-a"])
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        import_then_fail()
    assert decide(registry).allowed
