"""Alembic environment: runs against the engine handed in by `Database.migrate()` or SIYU_DATABASE_URL."""

from __future__ import annotations

from alembic import context

import siyu.models  # noqa: F401  (registers every table on Base.metadata)
from siyu.db import Base, make_engine

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("connection_engine")
    if engine is None:
        from siyu.config import Settings

        engine = make_engine(Settings.from_env().database_url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
