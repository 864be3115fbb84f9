"""identity templates

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:52:19.594587
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
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


def downgrade() -> None:
    op.drop_index(op.f('ix_identity_templates_performer_id'), table_name='identity_templates')
    op.drop_table('identity_templates')
