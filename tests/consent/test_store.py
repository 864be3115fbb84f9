"""The Alembic migrations build exactly the schema the models describe, on both backends."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from consent.store import Base, Store, migrate


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
