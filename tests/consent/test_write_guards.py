"""The database refuses rewrites: SQLite triggers, and a PostgreSQL application role with
INSERT and SELECT only. Purging identity templates keeps working through the registry."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from sqlalchemy import create_engine, delete, event, select, text, update
from sqlalchemy.exc import DBAPIError

from consent import write_guards
from consent.keys import PrivateKey
from consent.registry import Registry
from consent.store import IdentityTemplateRow, Store, open_engine
from tests.consent.helpers import OFFICER, decide, setup_world
from tests.factory import Clock, signed_grant

ROWS = {
    "performer_records": "revision", "performer_keys": "holder_role",
    "production_keys": "company", "grants": "imported_by", "revocations": "recorded_by",
    "ledger_entries": "event_type", "ledger_nodes": "hash", "ledger_refs": "ref_id",
    "decisions": "allowed", "ledger_checkpoints": "note",
}


def _world(registry: Registry, performer: PrivateKey) -> None:
    setup_world(registry, performer)
    registry.import_grant(signed_grant(performer, grant_id="grant-2").raw, officer=OFFICER)
    registry.revoke_grant("grant-2", reason="Withdrawn", officer=OFFICER,
                          performer_request_reference="Letter")
    registry.add_production_key("Dub House Ltd", PrivateKey.generate().public_key,
                                officer=OFFICER)


@pytest.mark.backend("sqlite")  # PostgreSQL is guarded by the role (below)
@pytest.mark.parametrize("table", sorted(ROWS))
def test_sqlite_refuses_update_and_delete(registry: Registry, performer: PrivateKey,
                                          store: Store, table: str) -> None:
    _world(registry, performer)
    column = ROWS[table]
    for statement in (f"UPDATE {table} SET {column} = {column}", f"DELETE FROM {table}"):
        with pytest.raises(DBAPIError, match="append-only"), store.engine.begin() as conn:
            conn.exec_driver_sql(statement)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one() > 0


def _enrol(registry: Registry, store: Store) -> None:
    vec = np.ones(128, dtype=np.float32) / np.sqrt(128)
    from tests.factory import EVIDENCE_SHA

    registry.enroll_templates("perf-a", "test-embedder", [(vec, {"q": 1.0})], EVIDENCE_SHA,
                              officer=OFFICER)
    with store.session() as s:
        assert len(list(s.scalars(select(IdentityTemplateRow)))) == 1


@pytest.fixture
def templated(store: Store, registry_key: PrivateKey, clock: Clock,
              performer: PrivateKey) -> Registry:
    registry = Registry(store, registry_key, "test.local/ledger", clock=clock,
                        template_key=bytes(range(32)))
    setup_world(registry, performer)
    return registry


def test_templates_are_purged_through_the_registry_only(templated: Registry,
                                                         store: Store) -> None:
    _enrol(templated, store)
    if store.dialect == "sqlite":
        for statement in (delete(IdentityTemplateRow),
                          update(IdentityTemplateRow).values(embedder="x")):
            with pytest.raises(DBAPIError), store.session() as s:
                s.execute(statement)
    templated.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                           performer_request_reference="Letter")
    with store.session() as s:
        assert list(s.scalars(select(IdentityTemplateRow))) == []
    with store.session() as s:
        assert templated.ledger.verify(s).ok


# --------------------------------------------------------------------------- PostgreSQL role


@pytest.fixture
def app_role(db_url: str) -> Iterator[tuple[str, str]]:
    assert db_url.startswith("postgresql"), "roles are a PostgreSQL matter"
    role = f"consent_app_{uuid.uuid4().hex[:10]}"
    admin = create_engine(db_url)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN'))
        write_guards.grant_app_role(conn, role)
    try:
        yield db_url, role
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))
        admin.dispose()


def _as_role(url: str, role: str) -> Store:
    engine = open_engine(url)

    def become(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f'SET ROLE "{role}"')
        dbapi_connection.commit()

    event.listen(engine, "connect", become)
    return Store(engine)


@pytest.mark.backend("postgresql")
def test_postgres_app_role_inserts_and_reads_only(
        store: Store, app_role: tuple[str, str], registry_key: PrivateKey, clock: Clock,
        performer_key: PrivateKey) -> None:
    url, role = app_role
    app_store = _as_role(url, role)
    try:
        with app_store.engine.connect() as conn:
            assert conn.execute(text("SELECT current_user")).scalar_one() == role
        registry = Registry(app_store, registry_key, "test.local/ledger", clock=clock,
                            template_key=bytes(range(32)))
        registry.register_performer("perf-a", "Performer perf-a", officer=OFFICER,
                                    now=clock.now.replace(year=2025))
        registry.add_key("perf-a", performer_key.public_key, officer=OFFICER,
                         now=clock.now.replace(year=2025))
        _world(registry, performer_key)
        _enrol(registry, app_store)
        for table, column in ROWS.items():
            for statement in (f"UPDATE {table} SET {column} = {column}",
                              f"DELETE FROM {table}", f"TRUNCATE {table} CASCADE"):
                with pytest.raises(DBAPIError, match="permission denied"), \
                        app_store.engine.begin() as conn:
                    conn.exec_driver_sql(statement)
        # The purge path still works for the role (DELETE on templates only).
        registry.revoke_grant("grant-1", reason="Withdrawn", officer=OFFICER,
                              performer_request_reference="Letter 9")
        with app_store.session() as s:
            assert list(s.scalars(select(IdentityTemplateRow))) == []
        assert not decide(registry).allowed
        with app_store.session() as s:
            assert registry.ledger.verify(s).ok
    finally:
        app_store.dispose()
