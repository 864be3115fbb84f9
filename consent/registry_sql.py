"""The registry's per-decision reads and its decision insert, as fixed driver statements.

A decision runs these at every call; through SQLAlchemy each cost ~20x its own work (see
:mod:`consent.driver_sql`). What they return is raw stored bytes and ids, which the
registry only ever checks against the ledger's leaves (:mod:`consent.ledger_facts`): no row
read here is trusted on its own.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from consent.driver_sql import DriverCursor, as_bytes


@functools.lru_cache(maxsize=64)
def _marks(count: int) -> str:
    return ", ".join(["?"] * count)


@functools.lru_cache(maxsize=64)
def _documents_sql(count: int) -> str:
    marks = _marks(count)
    # Fixed text: only the number of placeholders varies.
    return (
        f"SELECT 'record', performer_id, CAST(revision AS VARCHAR(64)), document "  # noqa: S608
        f"FROM performer_records WHERE performer_id IN ({marks}) "
        f"UNION ALL SELECT 'key', performer_id, key_id, document "
        f"FROM performer_keys WHERE performer_id IN ({marks}) "
        f"UNION ALL SELECT 'grant', performer_id, grant_id, document "
        f"FROM grants WHERE performer_id IN ({marks})")


@functools.lru_cache(maxsize=256)
def _revocations_sql(pids: int, targets: int) -> str:
    # Fixed text: only the number of placeholders varies.
    return (
        "SELECT performer_id, target_id, revocation_id, document FROM revocations "  # noqa: S608
        f"WHERE performer_id IN ({_marks(pids)}) OR target_id IN ({_marks(targets)})")


@functools.lru_cache(maxsize=256)
def _evidence_sql(pids: int, targets: int) -> str:
    marks = _marks(pids)
    # Fixed text: only the number of placeholders varies. One statement for everything a
    # decision reads (one round trip on PostgreSQL, one snapshot on both backends).
    return (
        f"SELECT 'record', performer_id, CAST(revision AS VARCHAR(64)), "  # noqa: S608
        f"CAST(NULL AS VARCHAR(64)), document "
        f"FROM performer_records WHERE performer_id IN ({marks}) "
        f"UNION ALL SELECT 'key', performer_id, key_id, NULL, document "
        f"FROM performer_keys WHERE performer_id IN ({marks}) "
        f"UNION ALL SELECT 'grant', performer_id, grant_id, NULL, document "
        f"FROM grants WHERE performer_id IN ({marks}) "
        f"UNION ALL SELECT 'revocation', performer_id, revocation_id, target_id, document "
        f"FROM revocations WHERE performer_id IN ({marks}) "
        f"OR target_id IN ({_marks(targets)}) "
        f"UNION ALL SELECT 'production', '', key_id, NULL, document FROM production_keys")


#: The IN lists are split at this many values (far below both drivers' parameter limits).
_CHUNK = 200


def evidence_rows(cur: DriverCursor, pids: Sequence[str], targets: Sequence[str]
                  ) -> list[tuple[str, str, str, str | None, bytes]] | None:
    """(kind, performer id, ref, target, stored bytes) of every record revision, key binding
    and grant of ``pids``, every revocation row naming one of ``pids`` or ``targets``, and
    every production key, in one statement; kinds and refs as in :func:`documents_of`,
    :func:`revocations_of` (ref: the revocation id) and :func:`production_keys` (ref: the
    key id). None when the lists are too long for one statement (use those three)."""
    sent = send_evidence(cur, pids, targets)
    return None if sent is None else evidence_result(sent)


def send_evidence(cur: DriverCursor, pids: Sequence[str], targets: Sequence[str]) -> Any:
    """Send :func:`evidence_rows`' statement (in a PostgreSQL pipeline, it waits there);
    its rows come from :func:`evidence_result`. None when the lists are too long."""
    target_list = list(targets) or [""]
    if not pids or len(pids) > _CHUNK or len(target_list) > _CHUNK:
        return None
    params = [*pids, *pids, *pids, *pids, *target_list]
    return cur.execute(_evidence_sql(len(pids), len(target_list)), params)


def evidence_result(sent: Any) -> list[tuple[str, str, str, str | None, bytes]]:
    return [(str(kind), pid, ref, target, as_bytes(doc)) for kind, pid, ref, target, doc
            in sent.fetchall()]


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start:start + _CHUNK]


def documents_of(cur: DriverCursor, pids: Sequence[str]
                 ) -> Iterator[tuple[str, str, str, bytes]]:
    """(kind, performer id, ref, stored bytes) of every record revision, key binding and
    grant of ``pids``; kind is record (ref: the revision), key or grant."""
    for chunk in _chunks(pids):
        params = [*chunk, *chunk, *chunk]
        for kind, pid, ref, doc in cur.rows(_documents_sql(len(chunk)), params):
            yield str(kind), pid, ref, as_bytes(doc)


def revocations_of(cur: DriverCursor, pids: Sequence[str], targets: Sequence[str]
                   ) -> Iterator[tuple[str, str, str, bytes]]:
    """(performer id, target id, revocation id, stored bytes) of every revocation row that
    names one of ``pids`` or one of ``targets`` (each row once)."""
    seen: set[str] = set()
    target_list = list(targets) or [""]
    for pid_chunk in _chunks(pids):
        for target_chunk in _chunks(target_list):
            sql = _revocations_sql(len(pid_chunk), len(target_chunk))
            for pid, target, rid, doc in cur.rows(sql, [*pid_chunk, *target_chunk]):
                if rid not in seen:
                    seen.add(rid)
                    yield pid, target, rid, as_bytes(doc)


def production_keys(cur: DriverCursor) -> Iterator[tuple[str, bytes]]:
    for key_id, doc in cur.rows("SELECT key_id, document FROM production_keys"):
        yield key_id, as_bytes(doc)


_INSERT_DECISION = ("INSERT INTO decisions (decision_id, allowed, document, decided_at, "
                    "ledger_index) VALUES (?, ?, ?, ?, ?)")


def insert_decision(cur: DriverCursor, decision_id: str, allowed: bool, document: bytes,
                    decided_at: datetime, ledger_index: int) -> None:
    cur.execute(_INSERT_DECISION, (decision_id, bool(allowed), document,
                                   cur.bind_time(decided_at), ledger_index))
