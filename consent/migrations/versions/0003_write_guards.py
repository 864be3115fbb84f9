"""write guards: the database refuses UPDATE and DELETE on the ledger and signed documents

SQLite: triggers (identity templates may be deleted only right after a ledgered purge);
PostgreSQL: UPDATE, DELETE and TRUNCATE revoked from PUBLIC (the application role gets
INSERT and SELECT only, see consent.write_guards.grant_app_role).

Existing ledgers need no rewrite: leaves written before this revision carry no ``refs``
list and no ``document_sha256``; their refs are derived from the ids their bodies hold and
their documents are matched by the payload hash their bodies record (consent.ledger_facts).
The gate counts a grant only once a signed checkpoint covers its import: after upgrading,
sign one (``studio up`` does; or ``studio ledger verify`` then ``studio ledger checkpoint``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 05:40:00
"""
from alembic import op

from consent import write_guards

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The tables of this revision: later ones guard the tables they add.
    write_guards.install(op.get_bind(), write_guards.APPEND_ONLY_0003)


def downgrade() -> None:
    write_guards.drop(op.get_bind())
