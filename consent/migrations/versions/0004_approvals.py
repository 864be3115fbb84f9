"""performers' approvals of outputs

A grant of schema version 2 may require the performer's approval of every output made under
it; the performer signs an ``output_approval`` (approved or rejected) over the output's
SHA-256, which the consent officer imports. The table keeps those documents as received;
the ledger's ``approval_recorded`` / ``approval_rejected`` leaves record their hashes. It is
append-only like the other signed documents (SQLite triggers; PostgreSQL grants).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 12:00:00
"""
from alembic import op
import sqlalchemy as sa

from consent import write_guards

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approvals',
    sa.Column('approval_id', sa.String(length=64), nullable=False),
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('grant_id', sa.String(length=64), nullable=False),
    sa.Column('output_sha256', sa.String(length=64), nullable=False),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('signer_key_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('ledger_index', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('approval_id'),
    sa.UniqueConstraint('document_sha256')
    )
    op.create_index(op.f('ix_approvals_performer_id'), 'approvals', ['performer_id'],
                    unique=False)
    op.create_index(op.f('ix_approvals_output_sha256'), 'approvals', ['output_sha256'],
                    unique=False)
    write_guards.install(op.get_bind(), ("approvals",))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS guard_approvals_{verb}")
    op.drop_index(op.f('ix_approvals_output_sha256'), table_name='approvals')
    op.drop_index(op.f('ix_approvals_performer_id'), table_name='approvals')
    op.drop_table('approvals')
