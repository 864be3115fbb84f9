"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from consent import store as store_mod
from consent.store import Base, Store, migrate
from tests.conftest import PG_ENABLED, PG_URL


def test_migrations_match_the_models(store: Store) -> None:
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_migrate_is_idempotent_and_versioned(store: Store) -> None:
    migrate(store.engine)
    tables = set(inspect(store.engine).get_table_names())
    assert {"grants", "revocations", "performer_keys", "performer_records", "decisions",
            "ledger_entries", "ledger_nodes", "ledger_refs", "ledger_checkpoints",
            "alembic_version"} <= tables


def _kill_pooled_backends(store: Store) -> None:
    """The server drops every connection of this store's pool (as a restart would)."""
    with store.engine.connect() as conn:
        own = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    admin = create_engine(PG_URL)
    with admin.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": int(own)})
    admin.dispose()


@pytest.mark.postgres
@pytest.mark.backend("postgresql")
@pytest.mark.skipif(not PG_ENABLED, reason="no PostgreSQL")
def test_a_dropped_idle_connection_is_replaced(db_url: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Idle past PING_AFTER_IDLE_S: pinged at checkout, and a dead one is replaced unseen."""
    s = Store.open(db_url)
    try:
        _kill_pooled_backends(s)
        monkeypatch.setattr(store_mod, "PING_AFTER_IDLE_S", 0.0)
        with s.session() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        s.dispose()


@pytest.mark.postgres
@pytest.mark.backend("postgresql")
@pytest.mark.skipif(not PG_ENABLED, reason="no PostgreSQL")
def test_a_connection_dropped_while_recently_used_fails_once_then_is_replaced(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Not pinged (used a moment ago): the transaction fails and rolls back (nothing is
    decided), and the next session gets a new connection."""
    s = Store.open(db_url)
    try:
        _kill_pooled_backends(s)
        monkeypatch.setattr(store_mod, "PING_AFTER_IDLE_S", 3600.0)
        with pytest.raises(OperationalError), s.session() as session:
            session.execute(text("SELECT 1"))
        with s.session() as session:
            assert session.execute(text("SELECT 1")).scalar() == 1
    finally:
        s.dispose()
