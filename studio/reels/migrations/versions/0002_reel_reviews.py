"""studio reels: per-shot review decisions (approve / reject with a note)

Revision ID: reels_0002
Revises: reels_0001
Create Date: 2026-12-02 15:45:00
"""

import sqlalchemy as sa
from alembic import op

revision = "reels_0002"
down_revision = "reels_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_reel_reviews",
        sa.Column("review_id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("shot", sa.Integer(), nullable=False),
        sa.Column("output_sha256", sa.String(length=64), nullable=False),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reviewer", sa.String(length=128), nullable=False),
        sa.Column("decided_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["studio_reel_jobs.job_id"]),
        sa.PrimaryKeyConstraint("review_id"),
    )
    op.create_index("ix_studio_reel_reviews_job_id", "studio_reel_reviews", ["job_id"])


def downgrade() -> None:
    op.drop_index("ix_studio_reel_reviews_job_id", table_name="studio_reel_reviews")
    op.drop_table("studio_reel_reviews")
