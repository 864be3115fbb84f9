"""The saved ledger view (consent.ledger_snapshot): a new process starts from it instead of
reading every leaf, decides exactly as one that read them all, and never lets the file
turn a deny into an allow: a forged or foreign file is ignored, a database that no longer
holds the saved tree denies, and everything appended since is read as usual.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consent import ledger_facts, ledger_snapshot
from consent.keys import PrivateKey
from consent.ledger_facts import LedgerFacts
from consent.registry import Registry
from consent.store import Store
from tests.consent.helpers import OFFICER, decide, reasons, setup_world, truncate
from tests.factory import Clock

ORIGIN = "test.local/ledger"


@pytest.fixture(autouse=True)
def save_often(monkeypatch: pytest.MonkeyPatch) -> None:
    # The real threshold (4096 leaves) would need thousands of events per test.
    monkeypatch.setattr(ledger_facts, "SNAPSHOT_EVERY", 1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


def open_registry(store: Store, key: PrivateKey, clock: Clock, data_dir: Path) -> Registry:
    return Registry(store, key, ORIGIN, clock=clock,
                    checkpoint_log=data_dir / "ledger-checkpoints.log")


def view_file(data_dir: Path) -> Path:
    return data_dir / "ledger-checkpoints.log.view"


def facts(reg: Registry) -> LedgerFacts:
    return reg._facts  # the view is what these tests are about


def checkpoint_and_save(reg: Registry) -> int:
    """Sign a checkpoint of the whole tree, then decide: the decision's refresh finds the
    tree covered and saves the view. Returns the saved size."""
    with reg.store.session() as s:
        reg.ledger.checkpoint(s, reg.clock())
    decide(reg)
    saved = facts(reg).snapshot_size
    assert saved > 0
    return saved


@pytest.fixture
def world(store: Store, registry_key: PrivateKey, performer_key: PrivateKey, clock: Clock,
          data_dir: Path) -> Registry:
    reg = open_registry(store, registry_key, clock, data_dir)
    reg.register_performer("perf-a", "Performer perf-a", officer=OFFICER,
                           now=clock.now.replace(year=2025))
    reg.add_key("perf-a", performer_key.public_key, officer=OFFICER,
                now=clock.now.replace(year=2025))
    setup_world(reg, performer_key)
    return reg


def revoke(reg: Registry) -> None:
    reg.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                     performer_request_reference="Letter 1")


def summary(view: LedgerFacts) -> dict[str, object]:
    """Everything the gate reads from a view."""
    return {
        "size": view.size, "covered": view.covered, "newest": view.newest_checkpoint,
        "time": view.newest_time, "problems": view.problems,
        "performers": {pid: (leaves.records, leaves.keys, leaves.grants)
                       for pid, leaves in view.performers.items()},
        "production": view.production_keys, "revocations": view.revocations,
        "revoked": view.revoked, "retired": view.retired_at,
        "approvals": view.approvals,
    }


def test_a_new_process_starts_from_the_saved_view_and_sees_the_same(
        world: Registry, store: Store, registry_key: PrivateKey, clock: Clock,
        data_dir: Path) -> None:
    saved = checkpoint_and_save(world)
    assert view_file(data_dir).exists()
    fresh = open_registry(store, registry_key, clock, data_dir)
    assert decide(fresh).allowed
    assert facts(fresh).from_snapshot and facts(fresh).snapshot_size == saved
    # The same view as a process that read every leaf (no snapshot configured).
    full = Registry(store, registry_key, ORIGIN, clock=clock)
    decide(full)
    assert not facts(full).from_snapshot
    with store.session() as s:
        facts(fresh).refresh(s)
        facts(full).refresh(s)
    assert summary(facts(fresh)) == summary(facts(full))


def test_a_revocation_after_the_saved_view_denies(world: Registry, store: Store,
                                                  registry_key: PrivateKey, clock: Clock,
                                                  data_dir: Path) -> None:
    checkpoint_and_save(world)
    revoke(world)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert facts(fresh).from_snapshot
    assert not d.allowed and "revoked" in reasons(d)


def test_a_view_saved_with_a_revocation_keeps_it(world: Registry, store: Store,
                                                 registry_key: PrivateKey, clock: Clock,
                                                 data_dir: Path) -> None:
    revoke(world)
    checkpoint_and_save(world)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert facts(fresh).from_snapshot
    assert not d.allowed and "revoked" in reasons(d)


def _without_revocations(path: Path) -> tuple[bytes, dict[str, object], bytes]:
    """The saved view's tag, its state with every revocation removed, and the rest."""
    data = path.read_bytes()
    tag, head, rest = data[:64], *data[65:].split(b"\n", 1)
    state = json.loads(head)
    state["revocations"], state["revoked"] = [], []
    return tag, state, rest


def test_an_edited_view_is_ignored(world: Registry, store: Store, registry_key: PrivateKey,
                                   clock: Clock, data_dir: Path) -> None:
    revoke(world)
    checkpoint_and_save(world)
    tag, state, rest = _without_revocations(view_file(data_dir))
    view_file(data_dir).write_bytes(
        tag + b"\n" + json.dumps(state, separators=(",", ":")).encode() + b"\n" + rest)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert not facts(fresh).from_snapshot
    assert not d.allowed and "revoked" in reasons(d)


def test_a_view_tagged_with_another_key_is_ignored(world: Registry, store: Store,
                                                   registry_key: PrivateKey, clock: Clock,
                                                   data_dir: Path) -> None:
    revoke(world)
    checkpoint_and_save(world)
    _tag, state, rest = _without_revocations(view_file(data_dir))
    state.pop("format")
    performers = dict(line.decode().split("\t", 1) for line in rest.split(b"\n"))
    other = ledger_snapshot.mac_key(PrivateKey.generate().crypto_key.private_bytes_raw())
    ledger_snapshot.write(view_file(data_dir), other, state, performers)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert not facts(fresh).from_snapshot
    assert not d.allowed and "revoked" in reasons(d)


def test_a_truncated_database_below_the_saved_view_denies(
        world: Registry, store: Store, registry_key: PrivateKey, clock: Clock,
        data_dir: Path) -> None:
    saved = checkpoint_and_save(world)
    truncate(store, saved - 2)
    fresh = open_registry(store, registry_key, clock, data_dir)
    d = decide(fresh)
    assert not d.allowed
    assert "truncated" in reasons(d) or "rolled back" in reasons(d)
