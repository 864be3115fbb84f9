"""Shared by the tamper tests: a registry world with one performer, a grant, and an attacker
who owns the database (SQLite's write guards dropped first, PostgreSQL as the owner)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func

from consent import write_guards
from consent.documents import Grant, SignedDocument
from consent.gate import Decision
from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import (
    CheckpointRow,
    DecisionRow,
    LedgerEntryRow,
    LedgerNodeRow,
    LedgerRefRow,
    RevocationRow,
    Store,
)
from tests.factory import T0, match, request, signed_grant

OFFICER = "Officer O"


def drop_guards(store: Store) -> None:
    with store.engine.begin() as conn:
        write_guards.drop(conn)


def decide(registry: Registry, **kwargs: Any) -> Decision:
    return registry.authorize(request(**kwargs), [match()])


def reasons(d: Decision) -> str:
    return " | ".join(d.reasons)


def setup_world(registry: Registry, performer: PrivateKey) -> SignedDocument[Grant]:
    """perf-a registered (fixture), with one imported grant that allows the default request."""
    doc = signed_grant(performer)
    assert registry.import_grant(doc.raw, officer=OFFICER).status == "active"
    assert decide(registry).allowed
    return doc


def reopen(registry: Registry, store: Store, key: PrivateKey, **kwargs: Any) -> Registry:
    """The same database seen by a fresh process (no ledger view carried over)."""
    return Registry(store, key, "test.local/ledger", clock=registry.clock, **kwargs)


def truncate(store: Store, size: int) -> None:
    """Cut the ledger back to ``size`` entries and remove every row pointing past it,
    leaving a self-consistent smaller tree (what a careful attacker leaves behind)."""
    drop_guards(store)
    with store.session() as s:
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.entry_idx >= size))
        s.execute(delete(DecisionRow).where(DecisionRow.ledger_index >= size))
        s.execute(delete(RevocationRow).where(RevocationRow.ledger_index >= size))
        s.execute(delete(LedgerEntryRow).where(LedgerEntryRow.idx >= size))
        s.execute(delete(LedgerNodeRow).where(
            (LedgerNodeRow.idx + 1) * func.power(2, LedgerNodeRow.level) > size))
        s.execute(delete(CheckpointRow).where(CheckpointRow.size > size))


__all__ = ["OFFICER", "T0", "timedelta"]
