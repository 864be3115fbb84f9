"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from consent import store as store_mod
from consent.store import Base, Store, migrate, open_engine
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


def test_newest_revisions_are_alembics_heads(store: Store) -> None:
    """Store.open reads the newest revision from the scripts itself (alembic is slow to
    import); it must name what alembic's own script directory does."""
    from alembic.script import ScriptDirectory

    heads = ScriptDirectory.from_config(store_mod.alembic_config(store.engine)).get_heads()
    assert store_mod.newest_revisions() == frozenset(heads)


def test_open_runs_alembic_only_when_the_schema_is_behind(
        db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from alembic import command
    from alembic.script import ScriptDirectory

    runs: list[Engine] = []

    def counted(engine: Engine) -> None:
        runs.append(engine)
        migrate(engine)

    monkeypatch.setattr(store_mod, "migrate", counted)
    engine = open_engine(db_url)
    try:
        assert not store_mod.at_newest_revision(engine)  # a new database: no version table
        config = store_mod.alembic_config(engine)
        head = ScriptDirectory.from_config(config).get_revision("head")
        assert isinstance(head.down_revision, str)
        command.upgrade(config, head.down_revision)  # one revision behind
        assert not store_mod.at_newest_revision(engine)
        Store.open(db_url).dispose()
        assert len(runs) == 1 and store_mod.at_newest_revision(engine)
        Store.open(db_url).dispose()  # at the newest revision: nothing to run
        assert len(runs) == 1
        with engine.connect() as conn:  # and the schema is the models' own
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    finally:
        engine.dispose()


@pytest.mark.backend("sqlite")
def test_opening_a_migrated_database_does_not_import_alembic(db_url: str) -> None:
    Store.open(db_url).dispose()
    probe = ("import sys; from consent.store import Store; "
             f"Store.open({db_url!r}).dispose(); print('alembic' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "False"
