"""registry and ledger

Revision ID: 0001
Revises: 
Create Date: 2026-11-26 08:01:21.462656
"""
from alembic import op
import sqlalchemy as sa


revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('decisions',
    sa.Column('decision_id', sa.String(length=64), nullable=False),
    sa.Column('allowed', sa.Boolean(), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('decided_at', sa.DateTime(), nullable=False),
    sa.Column('ledger_index', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('decision_id'),
    sa.UniqueConstraint('ledger_index')
    )
    op.create_table('grants',
    sa.Column('grant_id', sa.String(length=64), nullable=False),
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('signer_key_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('valid_from', sa.DateTime(), nullable=False),
    sa.Column('valid_until', sa.DateTime(), nullable=False),
    sa.Column('imported_at', sa.DateTime(), nullable=False),
    sa.Column('imported_by', sa.String(length=200), nullable=False),
    sa.Column('ledger_index', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('grant_id'),
    sa.UniqueConstraint('document_sha256')
    )
    op.create_index(op.f('ix_grants_performer_id'), 'grants', ['performer_id'], unique=False)
    op.create_index(op.f('ix_grants_signer_key_id'), 'grants', ['signer_key_id'], unique=False)
    op.create_table('identity_templates',
    sa.Column('template_id', sa.String(length=64), nullable=False),
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('embedder', sa.String(length=64), nullable=False),
    sa.Column('dim', sa.Integer(), nullable=False),
    sa.Column('ciphertext', sa.LargeBinary(), nullable=False),
    sa.Column('template_sha256', sa.String(length=64), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('quality', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('template_id')
    )
    op.create_index(op.f('ix_identity_templates_performer_id'), 'identity_templates', ['performer_id'], unique=False)
    op.create_table('ledger_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('size')
    )
    op.create_table('ledger_entries',
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('event_type', sa.String(length=32), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('idx')
    )
    op.create_index(op.f('ix_ledger_entries_created_at'), 'ledger_entries', ['created_at'], unique=False)
    op.create_table('ledger_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx')
    )
    op.create_table('performer_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('holder_role', sa.String(length=32), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.Column('supersedes', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_index(op.f('ix_performer_keys_performer_id'), 'performer_keys', ['performer_id'], unique=False)
    op.create_table('performer_records',
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('performer_id', 'revision')
    )
    op.create_table('revocations',
    sa.Column('revocation_id', sa.String(length=64), nullable=False),
    sa.Column('performer_id', sa.String(length=64), nullable=False),
    sa.Column('target_kind', sa.String(length=16), nullable=False),
    sa.Column('target_id', sa.String(length=64), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('document_sha256', sa.String(length=64), nullable=False),
    sa.Column('recorded_at', sa.DateTime(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.Column('ledger_index', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('revocation_id'),
    sa.UniqueConstraint('document_sha256')
    )
    op.create_index(op.f('ix_revocations_performer_id'), 'revocations', ['performer_id'], unique=False)
    op.create_index(op.f('ix_revocations_target_id'), 'revocations', ['target_id'], unique=False)
    op.create_table('ledger_refs',
    sa.Column('entry_idx', sa.BigInteger(), nullable=False),
    sa.Column('ref_kind', sa.String(length=16), nullable=False),
    sa.Column('ref_id', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['entry_idx'], ['ledger_entries.idx'], ),
    sa.PrimaryKeyConstraint('entry_idx', 'ref_kind', 'ref_id')
    )
    op.create_index('ix_ledger_refs_ref', 'ledger_refs', ['ref_id', 'ref_kind'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_ledger_refs_ref', table_name='ledger_refs')
    op.drop_table('ledger_refs')
    op.drop_index(op.f('ix_revocations_target_id'), table_name='revocations')
    op.drop_index(op.f('ix_revocations_performer_id'), table_name='revocations')
    op.drop_table('revocations')
    op.drop_table('performer_records')
    op.drop_index(op.f('ix_performer_keys_performer_id'), table_name='performer_keys')
    op.drop_table('performer_keys')
    op.drop_table('ledger_nodes')
    op.drop_index(op.f('ix_ledger_entries_created_at'), table_name='ledger_entries')
    op.drop_table('ledger_entries')
    op.drop_table('ledger_checkpoints')
    op.drop_index(op.f('ix_identity_templates_performer_id'), table_name='identity_templates')
    op.drop_table('identity_templates')
    op.drop_index(op.f('ix_grants_signer_key_id'), table_name='grants')
    op.drop_index(op.f('ix_grants_performer_id'), table_name='grants')
    op.drop_table('grants')
    op.drop_table('decisions')
