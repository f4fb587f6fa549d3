"""Alembic environment: runs migrations on the engine handed in by :mod:`voxdesk.db`."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine, create_engine

from voxdesk.db import load_table_modules

config = context.config
target_metadata = load_table_modules().metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        url = config.get_main_option("sqlalchemy.url")
        assert url, "sqlalchemy.url is not set"
        engine = create_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
