"""Alembic environment of the reel tables: the engine comes from the caller, and the version
table is ``studio_reels_alembic_version`` (the registry's and the accounts' stay untouched)."""

from alembic import context
from sqlalchemy import Engine

from studio.reels.models import ReelsBase

VERSION_TABLE = "studio_reels_alembic_version"

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=ReelsBase.metadata,
                      version_table=VERSION_TABLE,
                      include_name=lambda name, kind, _parent: kind != "table"
                      or name is None or name.startswith("studio_reel"))
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
