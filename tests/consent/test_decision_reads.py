"""A decision reads its rows with the view's new leaves (one round trip on PostgreSQL), naming
the grants and keys the view knew *before* those leaves: what the new leaves add must still
be looked up, so that a revocation filed under another performer (an edited column) is
found by its target in a process whose view predates the grant."""

from __future__ import annotations

from sqlalchemy import update

from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import RevocationRow, Store
from tests.consent.helpers import OFFICER, drop_guards
from tests.factory import T0, Clock, match, request, signed_grant

ORIGIN = "test.local/ledger"


def test_a_grant_revoked_elsewhere_is_found_by_target_after_its_row_moved(
        store: Store, registry_key: PrivateKey, clock: Clock, performer: PrivateKey) -> None:
    deciding = Registry(store, registry_key, ORIGIN, clock=clock)
    other = Registry(store, registry_key, ORIGIN, clock=clock)
    other.register_performer("perf-z", "Performer perf-z", officer=OFFICER,
                             now=T0.replace(year=2025))
    wanted = (request(language="it"), [match()])
    assert not deciding.authorize(*wanted).allowed  # view warm; no Italian grant yet
    other.import_grant(signed_grant(performer, grant_id="grant-it",
                                    scope={"languages": ["it"]}).raw, officer=OFFICER)
    assert deciding.authorize(*wanted).allowed
    other.import_grant(signed_grant(performer, grant_id="grant-it-2",
                                    scope={"languages": ["it"]}).raw, officer=OFFICER)
    for gid in ("grant-it", "grant-it-2"):
        other.revoke_grant(gid, reason="Withdrawn", officer=OFFICER,
                           performer_request_reference="Letter 9")
    drop_guards(store)
    with store.session() as s:  # both revocations filed under another performer
        s.execute(update(RevocationRow).values(performer_id="perf-z"))
    decision = deciding.authorize(*wanted)
    assert not decision.allowed
    # Both revocations found (by target): neither reads "signed document is missing".
    assert sum("was revoked on" in r for r in decision.reasons) == 2, decision.reasons
