"""Alembic environment: run against the engine the registry passes in (no ini file URL)."""

from alembic import context
from sqlalchemy import Engine

from consent.store import Base

engine: Engine = context.config.attributes["engine"]

with engine.connect() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata)
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
