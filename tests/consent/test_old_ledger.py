"""Ledgers written before migration 0003 (leaves without ``refs`` and ``document_sha256``):
their refs are derived from the ids in each leaf and their documents are matched by the
payload hash the leaf recorded; the grants count once a signed checkpoint covers them."""

from __future__ import annotations

import json

from sqlalchemy import delete, insert, select, update

from consent import merkle
from consent.canonical import canonical_bytes
from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import CheckpointRow, LedgerEntryRow, LedgerNodeRow, Store
from tests.consent.helpers import OFFICER, decide, drop_guards, reasons, setup_world
from tests.factory import T0, Clock


def _downgrade_leaves(store: Store) -> None:
    """Rewrite every leaf as the code before 0003 wrote it, with a consistent tree and no
    checkpoint (those signed the new-format leaves)."""
    drop_guards(store)
    with store.session() as s:
        rows = list(s.execute(select(LedgerEntryRow.idx, LedgerEntryRow.data)
                              .order_by(LedgerEntryRow.idx)))
        tree = merkle.MemoryTree()
        for idx, data in rows:
            body = json.loads(data)
            body.pop("refs", None)
            body.pop("document_sha256", None)
            old = canonical_bytes(body)
            s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == idx).values(data=old))
            tree.append(old)
        s.execute(delete(LedgerNodeRow))
        s.execute(insert(LedgerNodeRow), [{"level": lv, "idx": i, "hash": h}
                                          for (lv, i), h in tree.all_nodes()])
        s.execute(delete(CheckpointRow))


def test_an_old_ledger_works_once_a_checkpoint_covers_it(
        registry: Registry, performer: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock) -> None:
    setup_world(registry, performer)
    registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    from tests.factory import signed_grant

    registry.import_grant(signed_grant(performer, grant_id="grant-2").raw, officer=OFFICER)
    _downgrade_leaves(store)

    upgraded = Registry(store, registry_key, "test.local/ledger", clock=clock)
    d = decide(upgraded)
    assert not d.allowed and "not covered by any signed checkpoint" in reasons(d)
    with store.session() as s:
        upgraded.ledger.checkpoint(s, T0)  # what `studio up` does after upgrading
    assert decide(upgraded).allowed  # grant-2, matched by its payload hash
    with store.session() as s:
        report = upgraded.ledger.verify(s)
    assert report.ok, report.problems
    assert [g.status for g in upgraded.grants()] == ["revoked", "active"]
