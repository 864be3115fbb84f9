"""Truncation and rollback of the database are caught through signed checkpoints kept
outside it: the checkpoint log in the data folder, and a witness with its own key and state.

The attacker here owns the database: they delete a revocation and everything after it,
or restore an earlier copy of the file (and of the data folder's checkpoint log).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import select

from consent import merkle
from consent.keys import PrivateKey
from consent.ledger import Ledger, node_reader
from consent.registry import Registry
from consent.store import (
    CheckpointRow,
    RevocationRow,
    Store,
)
from consent.witness import Witness, WitnessError
from tests.consent.helpers import OFFICER, decide, reasons, setup_world, truncate
from tests.factory import T0, Clock

ORIGIN = "test.local/ledger"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def open_registry(store: Store, key: PrivateKey, clock: Clock, data_dir: Path,
                  witness: Witness | None = None) -> Registry:
    return Registry(store, key, ORIGIN, clock=clock,
                    checkpoint_log=data_dir / "ledger-checkpoints.log",
                    witness_logs=[witness.log.path] if witness else [])


@pytest.fixture
def reg(store: Store, registry_key: PrivateKey, clock: Clock, data_dir: Path) -> Registry:
    return open_registry(store, registry_key, clock, data_dir)


@pytest.fixture
def perf(reg: Registry, performer_key: PrivateKey, clock: Clock) -> PrivateKey:
    reg.register_performer("perf-a", "Performer perf-a", officer=OFFICER,
                           now=clock.now.replace(year=2025))
    reg.add_key("perf-a", performer_key.public_key, officer=OFFICER,
                now=clock.now.replace(year=2025))
    return performer_key


def revoke(reg: Registry) -> int:
    reg.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                     performer_request_reference="Letter 1")
    with reg.store.session() as s:
        index = s.scalar(select(RevocationRow.ledger_index))
    assert index is not None
    assert not decide(reg).allowed
    return int(index)


def sqlite_path(store: Store) -> Path:
    assert store.dialect == "sqlite", "copies the database file: mark the test backend('sqlite')"
    database = store.engine.url.database
    assert database
    return Path(database)


def backup(store: Store, to: Path) -> None:
    src = sqlite3.connect(sqlite_path(store))
    dst = sqlite3.connect(to)
    src.backup(dst)
    src.close()
    dst.close()


def restore(store: Store, frm: Path) -> None:
    """Overwrite the live database with an earlier copy (every connection closed first)."""
    store.engine.dispose()
    path = sqlite_path(store)
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    shutil.copyfile(frm, path)


def witness_round(witness: Witness, reg: Registry) -> int:
    with reg.store.session() as s:
        note = Ledger.latest_checkpoint(s)
        assert note is not None
        read = node_reader(s)
        done = witness.cosign(note, reg.ledger.verifier, ORIGIN,
                              lambda a, b: merkle.consistency_proof(a, b, read))
    return done.checkpoint.size


# --------------------------------------------------------------------------- checkpoints


def test_a_revocation_signs_a_checkpoint_and_logs_it(reg: Registry, perf: PrivateKey,
                                                     data_dir: Path) -> None:
    setup_world(reg, perf)
    index = revoke(reg)
    with reg.store.session() as s:
        sizes = list(s.scalars(select(CheckpointRow.size)))
    assert index + 1 in sizes
    logged = (data_dir / "ledger-checkpoints.log").read_text()
    assert f"\\n{index + 1}\\n" in logged


def test_checkpoints_follow_every_n_events_and_m_minutes(reg: Registry, perf: PrivateKey,
                                                          clock: Clock) -> None:
    setup_world(reg, perf)
    reg.ledger.checkpoint_every = 8
    with reg.store.session() as s:
        start = max(s.scalars(select(CheckpointRow.size)))
    for _ in range(20):
        decide(reg)
    with reg.store.session() as s:
        sizes = sorted(s.scalars(select(CheckpointRow.size).where(CheckpointRow.size > start)))
    assert sizes == [start + 8, start + 16]
    clock.advance(minutes=6)
    decide(reg)
    with reg.store.session() as s:
        assert max(s.scalars(select(CheckpointRow.size))) == Ledger.size(s)


# --------------------------------------------------------------------------- truncation


@pytest.mark.parametrize("process", ["same", "fresh"])
def test_tail_truncation_after_a_revocation_is_refused(
        reg: Registry, perf: PrivateKey, store: Store, registry_key: PrivateKey, clock: Clock,
        data_dir: Path, process: str) -> None:
    """Attack 3: delete the revocation and every later entry, ref, node and checkpoint."""
    setup_world(reg, perf)
    index = revoke(reg)
    truncate(store, index)
    if process == "fresh":
        reg = open_registry(store, registry_key, clock, data_dir)
    d = decide(reg)
    assert not d.allowed
    assert "truncated or rolled back" in reasons(d) or "shrank" in reasons(d), d.reasons
    # verify names it too: a logged checkpoint beyond the tree, or (once the denied
    # decision above was appended at the revocation's index) one whose root it no longer
    # produces.
    with store.session() as s:
        report = reg.ledger.verify(s)
    assert {p.kind for p in report.problems} & {"truncated", "checkpoint_root"}, \
        report.problems


def test_truncation_without_the_log_is_what_the_log_prevents(
        reg: Registry, perf: PrivateKey, store: Store, registry_key: PrivateKey,
        clock: Clock, tmp_path: Path) -> None:
    """The control: a process that knows no checkpoint log can be fooled (so keep one)."""
    setup_world(reg, perf)
    index = revoke(reg)
    truncate(store, index)
    blind = Registry(store, registry_key, ORIGIN, clock=clock)
    assert decide(blind).allowed


# --------------------------------------------------------------------------- rollback


@pytest.mark.backend("sqlite")  # copies the database file
def test_rollback_to_an_earlier_copy_is_refused(
        reg: Registry, perf: PrivateKey, store: Store, registry_key: PrivateKey, clock: Clock,
        data_dir: Path, tmp_path: Path) -> None:
    setup_world(reg, perf)
    copy = tmp_path / "before-revocation.db"
    backup(store, copy)
    revoke(reg)
    restore(store, copy)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert not d.allowed and "truncated or rolled back" in reasons(d), d.reasons

    # The attacker keeps using the copy (appends past the old size) with a process that
    # has no checkpoint log: the tree is now a fork of the logged one.
    blind = Registry(store, registry_key, ORIGIN, clock=clock)
    for _ in range(6):
        assert decide(blind).allowed
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert not d.allowed and "checkpoint log" in reasons(d), d.reasons


@pytest.mark.backend("sqlite")  # copies the database file
def test_the_witness_catches_a_rollback_of_database_and_log(
        reg: Registry, perf: PrivateKey, store: Store, registry_key: PrivateKey, clock: Clock,
        data_dir: Path, tmp_path: Path) -> None:
    setup_world(reg, perf)
    witness = Witness(tmp_path / "witness")
    first = witness_round(witness, reg)
    db_copy, log_copy = tmp_path / "old.db", tmp_path / "old.log"
    backup(store, db_copy)
    shutil.copyfile(data_dir / "ledger-checkpoints.log", log_copy)
    index = revoke(reg)
    assert witness_round(witness, reg) == index + 1 > first

    # Database *and* checkpoint log restored: the data folder alone cannot tell ...
    restore(store, db_copy)
    shutil.copyfile(log_copy, data_dir / "ledger-checkpoints.log")
    assert decide(open_registry(store, registry_key, clock, data_dir)).allowed
    # ... the witness's log can, and the witness refuses to cosign the older tree.
    d = decide(open_registry(store, registry_key, clock, data_dir, witness))
    assert not d.allowed and "cosigned.log" in reasons(d), d.reasons
    with pytest.raises(WitnessError, match="rollback"):
        witness_round(witness, reg)

    # Grown past the witnessed size, the copy is a fork: no consistency proof exists.
    blind = Registry(store, registry_key, ORIGIN, clock=clock)
    for _ in range(8):
        decide(blind)
    with store.session() as s:
        blind.ledger.checkpoint(s, T0)
    with pytest.raises(WitnessError, match="not an extension"):
        witness_round(witness, reg)
    d = decide(open_registry(store, registry_key, clock, data_dir, witness))
    assert not d.allowed and "cosigned.log" in reasons(d), d.reasons


def test_witness_cosignature_verifies_with_its_key(reg: Registry, perf: PrivateKey,
                                                   tmp_path: Path) -> None:
    from consent.note import open_note

    setup_world(reg, perf)
    witness = Witness(tmp_path / "w")
    witness_round(witness, reg)
    again = Witness(tmp_path / "w")  # same key and state from its folder
    assert again.verifier.verifier_key() == witness.verifier.verifier_key()
    state = again.state()
    assert state is not None
    note = (tmp_path / "w" / "cosigned.log").read_text()
    import json

    signed = json.loads(note.splitlines()[-1])["note"]
    opened = open_note(signed, [reg.ledger.verifier, witness.verifier])
    assert set(opened.verified_names) == {ORIGIN, "studio-witness"}
