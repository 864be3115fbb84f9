"""Rows written on the driver's cursor (consent.driver_sql) read back through the ORM exactly
as rows the ORM wrote: same times, same bytes, same types, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import insert, select

from consent import driver_sql
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.store import CheckpointRow, LedgerEntryRow, LedgerNodeRow, LedgerRefRow, Store

AT = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_appended_rows_read_back_as_written(store: Store, registry_key: PrivateKey) -> None:
    ledger = Ledger(store, registry_key, "test.local/ledger")
    with store.session() as s:
        index = ledger.append(s, EventType.DECISION, {"decision_id": "dec-1"}, at=AT,
                              refs=[("decision", "dec-1"), ("grant", "g-1")], checkpoint=True)
        ledger.append(s, EventType.DECISION, {"decision_id": "dec-2"}, at=AT,
                      refs=[("decision", "dec-2")])
    with store.session() as s:
        row = s.get(LedgerEntryRow, index)
        assert row is not None and row.created_at == AT and isinstance(row.data, bytes)
        assert Ledger.entry(s, index).body["decision_id"] == "dec-1"
        refs = {(k, v) for k, v in s.execute(select(LedgerRefRow.ref_kind, LedgerRefRow.ref_id)
                                             .where(LedgerRefRow.entry_idx == index))}
        assert refs == {("decision", "dec-1"), ("grant", "g-1")}
        nodes = {(lv, i) for lv, i in s.execute(select(LedgerNodeRow.level, LedgerNodeRow.idx))}
        assert nodes == {(0, 0), (0, 1), (1, 0)}
        checkpoint = s.get(CheckpointRow, 1)
        assert checkpoint is not None and checkpoint.created_at == AT
        # Bare decision events have no decision rows (verify names those); nothing else.
        assert [p for p in ledger.verify(s).problems if p.kind != "documents"] == []


def test_driver_times_match_the_orm_bytes(store: Store) -> None:
    """The stored value itself (SQLite keeps text) is the one the ORM writes."""
    with store.session() as s:
        s.connection().execute(insert(CheckpointRow), {"size": 7, "root": b"r" * 32,
                                                       "note": "orm", "created_at": AT})
        cur = driver_sql.cursor(s)
        cur.execute("INSERT INTO ledger_checkpoints (size, root, note, created_at) "
                    "VALUES (?, ?, ?, ?)", (8, b"r" * 32, "driver", cur.bind_time(AT)))
        raw = cur.rows("SELECT CAST(created_at AS VARCHAR(40)) FROM ledger_checkpoints "
                       "ORDER BY size")
    assert raw[0] == raw[1]
