"""The ledger in the database: proofs against an independent Merkle computation, signed
checkpoints, tamper detection that names the entry, and concurrent writers."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from consent import merkle
from consent.keys import PrivateKey
from consent.ledger import EventType, Ledger
from consent.note import open_checkpoint
from consent.registry import Registry
from consent.store import (
    CheckpointRow,
    DecisionRow,
    LedgerEntryRow,
    LedgerNodeRow,
    LedgerRefRow,
    Store,
    open_engine,
)
from tests.consent.helpers import drop_guards
from tests.factory import T0


@pytest.fixture(autouse=True)
def _attacker_owns_the_database(store: Store) -> None:
    """These tests tamper as whoever holds the database file would: SQLite's write guards
    (consent.write_guards) go first. PostgreSQL tests connect as the owner role."""
    drop_guards(store)


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 Merkle Tree Hash, straight from the definition (independent of consent.merkle)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def _decide(ledger: Ledger, s: Session, decision_id: str, at: datetime) -> int:
    """A decision event and its row, as Registry.authorize stores them."""
    document = f"decision {decision_id}".encode()
    index = ledger.append(s, EventType.DECISION, {
        "decision_id": decision_id, "allowed": True,
        "decision_sha256": hashlib.sha256(document).hexdigest()},
        at=at, refs=[("decision", decision_id)])
    s.add(DecisionRow(decision_id=decision_id, allowed=True, document=document, decided_at=at,
                      ledger_index=index))
    s.flush()
    return index


def _fill(registry: Registry, n: int) -> list[bytes]:
    with registry.store.session() as s:
        start = Ledger.size(s)
        for i in range(start, start + n):
            _decide(registry.ledger, s, f"d{i}", T0 + timedelta(seconds=i))
    with registry.store.session() as s:
        return [r for r in s.scalars(select(LedgerEntryRow.data).order_by(LedgerEntryRow.idx))]


def test_roots_and_proofs_match_independent_computation(registry: Registry) -> None:
    datas = _fill(registry, 37)
    ledger = registry.ledger
    with registry.store.session() as s:
        for size in (1, 2, 3, 8, 13, 32, 37):
            assert ledger.root(s, size) == _mth(datas[:size])
        for index in range(37):
            proof = ledger.inclusion_proof(s, index)
            assert proof.root == _mth(datas)
            assert proof.leaf_hash == hashlib.sha256(b"\x00" + datas[index]).digest()
            proof.verify()
        for old in (0, 1, 5, 16, 36, 37):
            ledger.consistency_proof(s, old, 37).verify()
        bad = ledger.inclusion_proof(s, 5)
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(bad.leaf_hash, 6, bad.size, list(bad.hashes), bad.root)


def test_entries_hold_index_type_and_time(registry: Registry) -> None:
    datas = _fill(registry, 3)
    body = json.loads(datas[2])
    assert body == {"index": 2, "type": "decision", "time": "2026-06-01T12:00:02Z",
                    "decision_id": "d2", "allowed": True, "refs": [["decision", "d2"]],
                    "decision_sha256": hashlib.sha256(b"decision d2").hexdigest()}


def test_checkpoint_is_a_signed_note_over_the_root(registry: Registry,
                                                   registry_key: PrivateKey) -> None:
    datas = _fill(registry, 10)
    with registry.store.session() as s:
        note = registry.ledger.checkpoint(s, T0)
    lines = note.split("\n")
    assert lines[0] == "test.local/ledger"
    assert lines[1] == "10"
    assert lines[4].startswith("— test.local/ledger ")
    cp = open_checkpoint(note, Ledger.verifier_for("test.local/ledger", registry_key.public_key))
    assert cp.size == 10 and cp.root == _mth(datas)
    with pytest.raises(ValueError, match=r"(?i)verif|signature"):
        open_checkpoint(note, Ledger.verifier_for("test.local/ledger",
                                                  PrivateKey.generate().public_key))


def _verify(registry: Registry) -> list[tuple[int | None, str]]:
    with registry.store.session() as s:
        report = registry.ledger.verify(s)
    return [(p.index, p.kind) for p in report.problems]


def test_verify_passes_on_an_intact_ledger(registry: Registry) -> None:
    _fill(registry, 20)
    with registry.store.session() as s:
        registry.ledger.checkpoint(s, T0)
    _fill(registry, 5)
    assert _verify(registry) == []


def test_edited_entry_is_named(registry: Registry) -> None:
    datas = _fill(registry, 12)
    edited = datas[7].replace(b'"allowed":true', b'"allowed":false')
    assert edited != datas[7]
    with registry.store.session() as s:
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == 7).values(data=edited))
    assert (7, "edited") in _verify(registry)


def test_edit_with_recomputed_leaf_hash_is_caught_by_the_signed_checkpoint(
        registry: Registry) -> None:
    datas = _fill(registry, 12)
    with registry.store.session() as s:
        registry.ledger.checkpoint(s, T0)
    edited = datas[3].replace(b'"allowed":true', b'"allowed":false')
    with registry.store.session() as s:
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == 3).values(data=edited))
        s.execute(update(LedgerNodeRow).where(LedgerNodeRow.level == 0, LedgerNodeRow.idx == 3)
                  .values(hash=merkle.leaf_hash(edited)))
    kinds = {k for _, k in _verify(registry)}
    assert "checkpoint_root" in kinds and "nodes" in kinds


def test_deleted_entry_is_named(registry: Registry) -> None:
    _fill(registry, 10)
    with registry.store.session() as s:
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.entry_idx == 4))
        s.execute(delete(LedgerEntryRow).where(LedgerEntryRow.idx == 4))
    problems = _verify(registry)
    assert (4, "deleted") in problems


def test_truncation_after_a_checkpoint_is_reported(registry: Registry) -> None:
    _fill(registry, 10)
    with registry.store.session() as s:
        registry.ledger.checkpoint(s, T0)
        s.execute(delete(LedgerRefRow).where(LedgerRefRow.entry_idx == 9))
        s.execute(delete(LedgerEntryRow).where(LedgerEntryRow.idx == 9))
    assert any(k == "truncated" for _, k in _verify(registry))


def test_reordered_entries_are_named(registry: Registry) -> None:
    datas = _fill(registry, 8)
    with registry.store.session() as s:
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == 2).values(data=datas[5]))
        s.execute(update(LedgerEntryRow).where(LedgerEntryRow.idx == 5).values(data=datas[2]))
    problems = _verify(registry)
    assert (2, "reordered") in problems and (5, "reordered") in problems


def test_forged_checkpoint_signature_is_reported(registry: Registry) -> None:
    _fill(registry, 4)
    with registry.store.session() as s:
        note = registry.ledger.checkpoint(s, T0)
        forged = note.replace("\n4\n", "\n4\n", 1)
        lines = forged.split("\n")
        sig_line = lines[4]
        lines[4] = sig_line[:-6] + ("AAAA==" if not sig_line.endswith("AAAA==") else "BBBB==")
        s.execute(update(CheckpointRow).where(CheckpointRow.size == 4)
                  .values(note="\n".join(lines)))
    assert any(k == "checkpoint_signature" for _, k in _verify(registry))


def _append_many(url: str, key_pem: bytes, worker: int, count: int) -> list[int]:
    store = Store(open_engine(url))
    ledger = Ledger(store, PrivateKey.from_pem(key_pem, None), "test.local/ledger")
    indexes = []
    for i in range(count):
        with store.session() as s:
            indexes.append(_decide(ledger, s, f"w{worker}-{i}", T0))
    store.dispose()
    return indexes


def test_concurrent_writers_produce_one_consistent_log(registry: Registry, db_url: str,
                                                       registry_key: PrivateKey) -> None:
    workers, per_worker = 4, 40
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
        results = list(pool.map(_append_many, [db_url] * workers,
                                [registry_key.to_pem(None)] * workers, range(workers),
                                [per_worker] * workers))
    all_indexes = sorted(i for r in results for i in r)
    assert all_indexes == list(range(workers * per_worker))
    assert _verify(registry) == []
    with registry.store.session() as s:
        datas = list(s.scalars(select(LedgerEntryRow.data).order_by(LedgerEntryRow.idx)))
        assert registry.ledger.root(s) == _mth(datas)
