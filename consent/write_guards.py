"""The database itself refuses rewrites of the ledger and the signed documents.

The registry only ever INSERTs into these tables; an UPDATE or DELETE there is either a bug
or an attack. So:

* SQLite: triggers abort every UPDATE and DELETE (installed by migration 0003). Identity
  templates are the one exception that must stay deletable (biometric data is purged when
  no grant covers it any more): a template row may be deleted only right after the ledger
  recorded a ``templates_deleted`` event naming it, which is what
  :meth:`consent.registry.Registry.purge_templates` does in one transaction. That is the
  maintenance path: purge through the registry (``studio up`` purges, and every revocation
  does), never with SQL.
* PostgreSQL: the application connects as a role holding only INSERT and SELECT on these
  tables (plus DELETE on identity templates); migrations run as the owner role.
  :func:`grant_app_role` issues the grants.

Neither stops someone who owns the database file or the owner role (they can drop a
trigger); that is what the ledger's checkpoints, checkpoint log and witness are for.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, text

#: Tables only ever appended to, as of migration 0003 (which guards exactly these) ...
APPEND_ONLY_0003 = (
    "performer_records", "performer_keys", "production_keys", "grants", "revocations",
    "ledger_entries", "ledger_nodes", "ledger_refs", "decisions", "ledger_checkpoints",
)
#: ... and now (0004 added performers' approvals of outputs).
APPEND_ONLY = (*APPEND_ONLY_0003, "approvals")
TEMPLATES = "identity_templates"

_ABORT = "SELECT RAISE(ABORT, '{table} is append-only: the consent registry never {verb}s it')"


def _sqlite_triggers(tables: Sequence[str] = APPEND_ONLY) -> dict[str, str]:
    out = {}
    for table in tables:
        for verb in ("update", "delete"):
            out[f"guard_{table}_{verb}"] = (
                f"CREATE TRIGGER IF NOT EXISTS guard_{table}_{verb} BEFORE {verb.upper()} ON "
                f"{table} BEGIN {_ABORT.format(table=table, verb=verb)}; END")
    out[f"guard_{TEMPLATES}_update"] = (
        f"CREATE TRIGGER IF NOT EXISTS guard_{TEMPLATES}_update BEFORE UPDATE ON {TEMPLATES} "
        f"BEGIN {_ABORT.format(table=TEMPLATES, verb='update')}; END")
    # Every name here is a module constant, nothing comes from input.
    out[f"guard_{TEMPLATES}_delete"] = (
        f"CREATE TRIGGER IF NOT EXISTS guard_{TEMPLATES}_delete BEFORE DELETE ON {TEMPLATES} "  # noqa: S608
        "WHEN NOT EXISTS (SELECT 1 FROM ledger_entries e "
        "WHERE e.idx = (SELECT max(idx) FROM ledger_entries) "
        "AND e.event_type = 'templates_deleted' "
        "AND instr(CAST(e.data AS TEXT), OLD.template_sha256) > 0) "
        "BEGIN SELECT RAISE(ABORT, 'identity templates are deleted only by a ledgered purge "
        "(Registry.purge_templates)'); END")
    return out


def install(conn: Connection, append_only: Sequence[str] = APPEND_ONLY) -> None:
    """Create the guards for this connection's backend (idempotent). ``append_only``: the
    tables a migration guards (an older one cannot name tables a later one creates)."""
    if conn.dialect.name == "sqlite":
        for statement in _sqlite_triggers(append_only).values():
            conn.exec_driver_sql(statement)
    elif conn.dialect.name == "postgresql":
        # Nobody but the owner may rewrite; the app role gets its grants explicitly.
        tables = ", ".join((*append_only, TEMPLATES))
        conn.execute(text(f"REVOKE UPDATE, DELETE, TRUNCATE ON {tables} FROM PUBLIC"))


def drop(conn: Connection) -> None:
    """Remove the SQLite guards (what an attacker holding the file would do; tests)."""
    if conn.dialect.name == "sqlite":
        for name in _sqlite_triggers():
            conn.exec_driver_sql(f"DROP TRIGGER IF EXISTS {name}")


def grant_app_role(conn: Connection, role: str) -> None:
    """PostgreSQL: let ``role`` use the registry with INSERT and SELECT only (and DELETE on
    identity templates, for purges). Run as the owner, after migrating."""
    if conn.dialect.name != "postgresql":
        raise ValueError("roles exist on PostgreSQL only; SQLite is guarded by triggers")
    quoted = conn.dialect.identifier_preparer.quote(role)
    schema = conn.execute(text("SELECT current_schema()")).scalar_one()
    conn.execute(text(f"GRANT USAGE ON SCHEMA {conn.dialect.identifier_preparer.quote(schema)}"
                      f" TO {quoted}"))
    tables = ", ".join(APPEND_ONLY)
    conn.execute(text(f"REVOKE ALL ON {tables}, {TEMPLATES} FROM {quoted}"))
    conn.execute(text(f"GRANT SELECT, INSERT ON {tables} TO {quoted}"))
    conn.execute(text(f"GRANT SELECT, INSERT, DELETE ON {TEMPLATES} TO {quoted}"))
    conn.execute(text(f"GRANT SELECT ON alembic_version TO {quoted}"))
