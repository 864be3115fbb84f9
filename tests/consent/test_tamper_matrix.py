"""Every table × {update, delete, insert, reorder}, on SQLite and PostgreSQL, played by
someone who can write the database: no decision turns from deny to allow (neither in the
process that was running nor in a fresh one), and ``ledger verify`` names the change.

The world holds one deny of each kind the gate gives: a revoked grant (perf-a), a minor
without a guardian's grant (perf-b, a status change), a grant signed by a revoked key
(perf-c), and a request no grant covers (perf-a in German).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.orm import Session

from consent.canonical import canonical_bytes
from consent.documents import PerformerKey, sign_draft
from consent.errors import LedgerError
from consent.gate import AuthorizationRequest, IdentityMatch
from consent.keys import PrivateKey
from consent.ledger import Ledger
from consent.note import Checkpoint, NoteSigner, sign_checkpoint
from consent.registry import Registry
from consent.store import Base, Store
from tests.consent.helpers import OFFICER, drop_guards
from tests.factory import T0, Clock, match, request, signed_grant

ORIGIN = "test.local/ledger"
TEMPLATE_KEY = bytes(range(32))


@dataclass
class World:
    registry: Registry
    store: Store
    key: PrivateKey
    clock: Clock
    log: Path
    keys: dict[str, PrivateKey]
    denied: list[tuple[AuthorizationRequest, list[IdentityMatch]]]

    def fresh(self) -> Registry:
        return Registry(self.store, self.key, ORIGIN, clock=self.clock,
                        template_key=TEMPLATE_KEY, checkpoint_log=self.log)


def _register(reg: Registry, pid: str, key: PrivateKey) -> None:
    reg.register_performer(pid, f"Performer {pid}", officer=OFFICER, now=T0.replace(year=2025))
    reg.add_key(pid, key.public_key, officer=OFFICER, now=T0.replace(year=2025))


def _vectors(seed: int) -> list[tuple[Any, dict[str, Any]]]:
    rng = np.random.default_rng(seed)
    return [(rng.normal(size=128).astype(np.float32), {"yaw": 1.0}) for _ in range(2)]


@pytest.fixture
def world(store: Store, registry_key: PrivateKey, clock: Clock, tmp_path: Path) -> World:
    log = tmp_path / "ledger-checkpoints.log"
    reg = Registry(store, registry_key, ORIGIN, clock=clock, template_key=TEMPLATE_KEY,
                   checkpoint_log=log)
    keys = {pid: PrivateKey.generate() for pid in ("perf-a", "perf-b", "perf-c")}
    for pid, key in keys.items():
        _register(reg, pid, key)
    reg.add_production_key("Dub House Ltd", PrivateKey.generate().public_key, officer=OFFICER)
    reg.add_production_key("Other House", PrivateKey.generate().public_key, officer=OFFICER)
    reg.import_grant(signed_grant(keys["perf-a"]).raw, officer=OFFICER)
    reg.import_grant(signed_grant(keys["perf-a"], grant_id="grant-2",
                                  scope={"languages": ["it"]}).raw, officer=OFFICER)
    for pid in ("perf-b", "perf-c"):
        doc = signed_grant(keys[pid], performer_id=pid, grant_id=f"grant-{pid[-1]}")
        reg.import_grant(doc.raw, officer=OFFICER)
    source = hashlib.sha256(b"reference").hexdigest()
    reg.enroll_templates("perf-a", "test-embedder", _vectors(1), source, officer=OFFICER)
    reg.enroll_templates("perf-b", "test-embedder", _vectors(2), source, officer=OFFICER)
    reqs = {pid: (request(pid), [match(performer_id=pid)]) for pid in keys}
    for req, matches in reqs.values():
        assert reg.authorize(req, matches).allowed
    reg.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                     performer_request_reference="Letter 1")
    reg.update_performer_status("perf-b", officer=OFFICER, minor_until=date(2030, 1, 1),
                                deceased_on=None)
    reg.revoke_key(keys["perf-c"].key_id, reason="Stolen", officer=OFFICER,
                   performer_request_reference="Letter 2")
    denied = [*reqs.values(), (request(language="de"), [match()])]
    for req, matches in denied:
        assert not reg.authorize(req, matches).allowed
    assert reg.authorize(request(language="it"), [match()]).allowed
    drop_guards(store)
    return World(reg, store, registry_key, clock, log, keys, denied)


# --------------------------------------------------------------------------- SQL helpers


def _rows(s: Session, sql: str, **params: Any) -> list[Any]:
    return list(s.execute(text(sql), params))


def _swap(s: Session, table: str, column: str, key: str, a: Any, b: Any) -> None:
    """Exchange ``column`` between the rows whose ``key`` is a and b."""
    va = s.execute(text(f"SELECT {column} FROM {table} WHERE {key} = :k"), {"k": a}).scalar()
    vb = s.execute(text(f"SELECT {column} FROM {table} WHERE {key} = :k"), {"k": b}).scalar()
    s.execute(text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"), {"v": vb, "k": a})
    s.execute(text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"), {"v": va, "k": b})


def _revocation_entry(s: Session) -> int:
    return int(s.execute(text("SELECT ledger_index FROM revocations WHERE target_id = "
                              "'grant-1'")).scalar_one())


def _insert_like(s: Session, table: str, where: str, changes: dict[str, Any]) -> None:
    model = Base.metadata.tables[table]
    row = dict(s.execute(select(model).where(text(where))).mappings().first() or {})
    assert row, (table, where)
    row.update(changes)
    s.execute(insert(model), row)  # typed binds (JSON, datetimes)


def _attacker_binding(w: World) -> bytes:
    attacker = PrivateKey.generate()
    return sign_draft(PerformerKey, {
        "performer_id": "perf-a", "key_id": attacker.key_id,
        "public_key": attacker.public_key.to_base64(),
        "holder": {"role": "self", "name": "Performer perf-a"},
        "registered_at": "2025-06-01T12:00:00Z", "registered_by": OFFICER,
    }, [attacker]).raw


Tamper = Callable[[Session, World], None]


def _records(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        where = "performer_id = 'perf-b'"
        if op == "update":
            old = s.execute(text(f"SELECT document FROM performer_records WHERE {where} AND "
                                 "revision = 1")).scalar_one()
            s.execute(text(f"UPDATE performer_records SET document = :d WHERE {where} AND "
                           "revision = 2"), {"d": old})
        elif op == "delete":
            s.execute(text(f"DELETE FROM performer_records WHERE {where} AND revision = 2"))
        elif op == "insert":
            _insert_like(s, "performer_records", f"{where} AND revision = 1", {"revision": 3})
        else:
            s.execute(text(f"UPDATE performer_records SET revision = 99 WHERE {where} AND "
                           "revision = 1"))
            s.execute(text(f"UPDATE performer_records SET revision = 1 WHERE {where} AND "
                           "revision = 2"))
            s.execute(text(f"UPDATE performer_records SET revision = 2 WHERE {where} AND "
                           "revision = 99"))
    return run


def _keys(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        a, c = w.keys["perf-a"].key_id, w.keys["perf-c"].key_id
        if op == "update":
            s.execute(text("UPDATE performer_keys SET holder_role = 'guardian', "
                           "performer_id = 'perf-x' WHERE key_id = :k"), {"k": c})
        elif op == "delete":
            s.execute(text("DELETE FROM performer_keys WHERE key_id = :k"), {"k": c})
        elif op == "insert":
            raw = _attacker_binding(w)
            import json
            kid = json.loads(raw)["signed"]["key_id"]
            _insert_like(s, "performer_keys", "key_id = '" + a + "'",
                         {"key_id": kid, "document": raw})
        else:
            _swap(s, "performer_keys", "document", "key_id", a, c)
    return run


def _production(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        ids = [r[0] for r in _rows(s, "SELECT key_id FROM production_keys ORDER BY key_id")]
        if op == "update":
            s.execute(text("UPDATE production_keys SET company = 'Evil Co'"))
        elif op == "delete":
            s.execute(text("DELETE FROM production_keys"))
        elif op == "insert":
            _insert_like(s, "production_keys", f"key_id = '{ids[0]}'",
                         {"key_id": PrivateKey.generate().key_id})
        else:
            _swap(s, "production_keys", "document", "key_id", ids[0], ids[1])
    return run


def _grants(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        if op == "update":
            s.execute(text("UPDATE grants SET grant_id = 'grant-1x' WHERE grant_id = 'grant-1'"))
        elif op == "delete":
            s.execute(text("DELETE FROM grants WHERE grant_id = 'grant-1'"))
        elif op == "insert":
            # A grant the performer really signed (in the future, even) that was never
            # imported, and one signed with the revoked (compromised) key of perf-c.
            evil = signed_grant(w.keys["perf-a"], grant_id="grant-evil",
                                signed_at="2026-07-01T00:00:00Z")
            _insert_like(s, "grants", "grant_id = 'grant-2'",
                         {"grant_id": "grant-evil", "document": evil.raw,
                          "document_sha256": evil.sha256})
            stolen = signed_grant(w.keys["perf-c"], performer_id="perf-c", grant_id="grant-stolen")
            _insert_like(s, "grants", "grant_id = 'grant-c'",
                         {"grant_id": "grant-stolen", "document": stolen.raw,
                          "document_sha256": stolen.sha256})
        else:
            _swap(s, "grants", "document", "grant_id", "grant-1", "grant-2")
    return run


def _revocations(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        ids = [r[0] for r in _rows(s, "SELECT revocation_id FROM revocations ORDER BY "
                                      "target_kind")]
        if op == "update":
            s.execute(text("UPDATE revocations SET target_id = 'nothing', target_kind = 'key'"))
        elif op == "delete":
            s.execute(text("DELETE FROM revocations"))
        elif op == "insert":
            _insert_like(s, "revocations", f"revocation_id = '{ids[0]}'",
                         {"revocation_id": "rev-forged", "target_id": "grant-2",
                          "document_sha256": "0" * 64})
        else:
            _swap(s, "revocations", "target_id", "revocation_id", ids[0], ids[1])
    return run


def _entries(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        rev = _revocation_entry(s)
        if op == "update":
            s.execute(text("UPDATE ledger_entries SET event_type = 'decision' WHERE event_type "
                           "IN ('revocation', 'key_revoked', 'performer_updated')"))
        elif op == "delete":
            s.execute(text("DELETE FROM ledger_refs WHERE entry_idx = :i"), {"i": rev})
            s.execute(text("DELETE FROM ledger_entries WHERE idx = :i"), {"i": rev})
        elif op == "insert":
            n = Ledger.size(s)
            data = canonical_bytes({"index": n, "type": "decision", "time": "2026-06-01T12:00:00Z",
                                    "decision_id": "dec-forged", "allowed": True, "refs": []})
            s.execute(text("INSERT INTO ledger_entries (idx, event_type, data, created_at) "
                           "VALUES (:i, 'decision', :d, :t)"),
                      {"i": n, "d": data, "t": T0.replace(tzinfo=None)})
        else:
            _swap(s, "ledger_entries", "data", "idx", rev, rev + 1)
    return run


def _nodes(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        if op == "update":
            s.execute(text("UPDATE ledger_nodes SET hash = :h WHERE level = 1 AND idx = 0"),
                      {"h": b"\x00" * 32})
        elif op == "delete":
            s.execute(text("DELETE FROM ledger_nodes WHERE level = 1"))
        elif op == "insert":
            s.execute(text("INSERT INTO ledger_nodes (level, idx, hash) VALUES (0, 100000, :h)"),
                      {"h": b"\x01" * 32})
        else:
            rev = _revocation_entry(s)
            for level, idx, value in [(0, rev, b"\x02" * 32), (0, rev + 1, b"\x03" * 32)]:
                s.execute(text("UPDATE ledger_nodes SET hash = :h WHERE level = :l AND "
                               "idx = :i"), {"h": value, "l": level, "i": idx})
            a, b = (_rows(s, "SELECT hash FROM ledger_nodes WHERE level = 0 AND idx = :i", i=i)
                    for i in (0, 1))
            s.execute(text("UPDATE ledger_nodes SET hash = :h WHERE level = 0 AND idx = 0"),
                      {"h": b[0][0]})
            s.execute(text("UPDATE ledger_nodes SET hash = :h WHERE level = 0 AND idx = 1"),
                      {"h": a[0][0]})
    return run


def _refs(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        c = w.keys["perf-c"].key_id
        if op == "update":
            s.execute(text("UPDATE ledger_refs SET ref_id = 'zz' WHERE ref_id IN ('grant-1', "
                           ":c, 'perf-b')"), {"c": c})
        elif op == "delete":
            s.execute(text("DELETE FROM ledger_refs WHERE ref_id IN ('grant-1', :c, 'perf-b')"),
                      {"c": c})
        elif op == "insert":
            s.execute(text("INSERT INTO ledger_refs (entry_idx, ref_kind, ref_id) VALUES "
                           "(0, 'grant', 'grant-1')"))
        else:
            rev = _revocation_entry(s)
            s.execute(text("UPDATE ledger_refs SET entry_idx = 0 WHERE entry_idx = :i AND "
                           "ref_kind = 'grant'"), {"i": rev})
    return run


def _decisions(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        ids = [r[0] for r in _rows(s, "SELECT decision_id FROM decisions ORDER BY ledger_index")]
        if op == "update":
            s.execute(text("UPDATE decisions SET allowed = :t"), {"t": True})
        elif op == "delete":
            s.execute(text("DELETE FROM decisions"))
        elif op == "insert":
            _insert_like(s, "decisions", f"decision_id = '{ids[-1]}'",
                         {"decision_id": "dec-forged", "ledger_index": 0})
        else:
            _swap(s, "decisions", "document", "decision_id", ids[-1], ids[-2])
    return run


def _checkpoints(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        sizes = [r[0] for r in _rows(s, "SELECT size FROM ledger_checkpoints ORDER BY size")]
        if op == "update":
            s.execute(text("UPDATE ledger_checkpoints SET note = replace(note, '\n\n', "
                           "'\nextension\n\n') WHERE size = :n"), {"n": sizes[-1]})
        elif op == "delete":
            s.execute(text("DELETE FROM ledger_checkpoints"))
        elif op == "insert":
            other = NoteSigner(ORIGIN, PrivateKey.generate().crypto_key)
            n = sizes[-1] + 5
            note = sign_checkpoint(Checkpoint(ORIGIN, n, b"\x00" * 32), other)
            s.execute(text("INSERT INTO ledger_checkpoints (size, root, note, created_at) "
                           "VALUES (:n, :r, :note, :t)"),
                      {"n": n, "r": b"\x00" * 32, "note": note, "t": T0.replace(tzinfo=None)})
        else:
            _swap(s, "ledger_checkpoints", "note", "size", sizes[-1], sizes[-2])
    return run


def _templates(op: str) -> Tamper:
    def run(s: Session, w: World) -> None:
        ids = {r[1]: r[0] for r in _rows(s, "SELECT template_id, performer_id FROM "
                                            "identity_templates")}
        if op == "update":
            s.execute(text("UPDATE identity_templates SET performer_id = 'perf-c'"))
        elif op == "delete":
            s.execute(text("DELETE FROM identity_templates WHERE performer_id = 'perf-a'"))
        elif op == "insert":
            _insert_like(s, "identity_templates", f"template_id = '{ids['perf-a']}'",
                         {"template_id": "tpl-forged", "template_sha256": "f" * 64})
        else:
            _swap(s, "identity_templates", "performer_id", "template_id", ids["perf-a"],
                  ids["perf-b"])
    return run


TABLES: dict[str, tuple[Callable[[str], Tamper], str]] = {
    "performer_records": (_records, r"performer record"),
    "performer_keys": (_keys, r"key binding"),
    "production_keys": (_production, r"production key"),
    "grants": (_grants, r"grant"),
    "revocations": (_revocations, r"revocation"),
    "ledger_entries": (_entries, r"entr(y|ies)"),
    "ledger_nodes": (_nodes, r"node|hash"),
    "ledger_refs": (_refs, r"ledger_refs"),
    "decisions": (_decisions, r"decision"),
    "ledger_checkpoints": (_checkpoints, r"checkpoint"),
    "identity_templates": (_templates, r"template"),
}


@pytest.mark.parametrize("op", ["update", "delete", "insert", "reorder"])
@pytest.mark.parametrize("table", sorted(TABLES))
def test_no_tamper_turns_a_deny_into_an_allow(world: World, table: str, op: str) -> None:
    make, named = TABLES[table]
    with world.store.session() as s:
        make(op)(s, world)
    for reg, who in ((world.registry, "running process"), (world.fresh(), "fresh process")):
        for req, matches in world.denied:
            try:
                d = reg.authorize(req, matches)
            except LedgerError:
                continue  # the ledger cannot even record a decision: refused, not allowed
            assert not d.allowed, (who, req.subjects[0].performer_id, req.language)
    with world.store.session() as s:
        report = world.fresh().ledger.verify(s)
    assert not report.ok, f"verify missed {op} on {table}"
    text_ = " | ".join(p.detail for p in report.problems)
    assert re.search(named, text_, re.IGNORECASE), (named, report.problems)
