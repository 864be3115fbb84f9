"""studio reels: projects, reels, cast, dialogue, reel jobs and their shots

Revision ID: reels_0001
Revises:
Create Date: 2026-12-02 12:30:00
"""

import sqlalchemy as sa
from alembic import op

revision = "reels_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "studio_reel_projects",
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("project_id"),
    )
    op.create_table(
        "studio_reels",
        sa.Column("reel_id", sa.String(length=64), nullable=False),
        sa.Column("project_id", sa.String(length=64), nullable=False),
        sa.Column("source_path", sa.Text(), nullable=False),
        sa.Column("source_sha256", sa.String(length=64), nullable=False),
        sa.Column("shots_from", sa.String(length=16), nullable=False),
        sa.Column("shot_list", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["studio_reel_projects.project_id"]),
        sa.PrimaryKeyConstraint("reel_id"),
    )
    op.create_index("ix_studio_reels_project_id", "studio_reels", ["project_id"])
    op.create_table(
        "studio_reel_cast",
        sa.Column("reel_id", sa.String(length=64), nullable=False),
        sa.Column("character", sa.String(length=64), nullable=False),
        sa.Column("performer_id", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reel_id"], ["studio_reels.reel_id"]),
        sa.PrimaryKeyConstraint("reel_id", "character"),
    )
    op.create_table(
        "studio_reel_dialogue",
        sa.Column("reel_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("character", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reel_id"], ["studio_reels.reel_id"]),
        sa.PrimaryKeyConstraint("reel_id", "language", "character"),
    )
    op.create_table(
        "studio_reel_jobs",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("reel_id", sa.String(length=64), nullable=False),
        sa.Column("language", sa.String(length=35), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("deliverables", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["reel_id"], ["studio_reels.reel_id"]),
        sa.PrimaryKeyConstraint("job_id"),
        sa.UniqueConstraint("reel_id", "language"),
    )
    op.create_index("ix_studio_reel_jobs_reel_id", "studio_reel_jobs", ["reel_id"])
    op.create_table(
        "studio_reel_shots",
        sa.Column("job_id", sa.String(length=64), nullable=False),
        sa.Column("shot", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("input_key", sa.String(length=64), nullable=False),
        sa.Column("characters", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("outcome", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["studio_reel_jobs.job_id"]),
        sa.PrimaryKeyConstraint("job_id", "shot"),
    )


def downgrade() -> None:
    op.drop_table("studio_reel_shots")
    op.drop_index("ix_studio_reel_jobs_reel_id", table_name="studio_reel_jobs")
    op.drop_table("studio_reel_jobs")
    op.drop_table("studio_reel_dialogue")
    op.drop_table("studio_reel_cast")
    op.drop_index("ix_studio_reels_project_id", table_name="studio_reels")
    op.drop_table("studio_reels")
    op.drop_table("studio_reel_projects")
