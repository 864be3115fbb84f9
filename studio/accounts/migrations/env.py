"""Alembic environment of the studio's tables: the engine comes from the caller, and the
version table is ``studio_alembic_version`` so the consent registry's own stays untouched."""

from alembic import context
from sqlalchemy import Engine

from studio.accounts.models import AccountsBase

VERSION_TABLE = "studio_alembic_version"

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=AccountsBase.metadata,
                      version_table=VERSION_TABLE,
                      include_name=lambda name, kind, _parent: kind != "table"
                      or name is None or name.startswith("studio_"))
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
