"""production keys

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 08:31:11.122690
"""
from alembic import op
import sqlalchemy as sa


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('production_keys',
    sa.Column('key_id', sa.String(length=64), nullable=False),
    sa.Column('company', sa.String(length=200), nullable=False),
    sa.Column('document', sa.LargeBinary(), nullable=False),
    sa.Column('registered_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('key_id')
    )
    op.create_index(op.f('ix_production_keys_company'), 'production_keys', ['company'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_production_keys_company'), table_name='production_keys')
    op.drop_table('production_keys')
