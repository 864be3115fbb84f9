"""Alembic environment of the studio's own tables (version table ``studio_alembic_version``)."""
