"""Engines, sessions and migrations for the configured database (SQLite or PostgreSQL)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from core.db import Base
from voxdesk.settings import DatabaseSettings

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Every module that declares tables on core.db.Base; imported so Alembic and create_all see them all.
TABLE_MODULES: tuple[str, ...] = (
    "profiles.tables",
    "knowledge.tables",
    "voxdesk.auth.tables",
    "telephony.tables",
    "agent.assist.tables",
    "qa.tables",
    "telephony.dialer.tables",
)


def load_table_modules() -> type[Base]:
    """Import every table module and return the declarative base (for Alembic autogenerate)."""
    for name in TABLE_MODULES:
        importlib.import_module(name)
    return Base


def make_engine(db: DatabaseSettings) -> Engine:
    """Create the engine; for SQLite creates the parent folder and turns on foreign keys, WAL and a 5 s busy wait."""
    url = make_url(db.url)
    kwargs: dict[str, Any] = {"echo": db.echo, "pool_pre_ping": True}
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 5}
    else:
        kwargs["pool_size"] = db.pool_size
    engine = create_engine(url, **kwargs)
    if url.get_backend_name() == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            if url.database and url.database != ":memory:":
                cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.close()

    return engine


def make_sessions(engine: Engine) -> sessionmaker[Session]:
    """Session factory; objects stay usable after commit (``expire_on_commit=False``)."""
    return sessionmaker(engine, expire_on_commit=False)


def alembic_config(engine: Engine) -> Config:
    """Alembic configuration bound to ``engine`` (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    cfg.attributes["engine"] = engine
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply migrations up to ``revision``."""
    command.upgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or ``None`` for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest migration shipped with this code."""
    return ScriptDirectory(str(MIGRATIONS_DIR)).get_current_head()


def is_up_to_date(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    return current_revision(engine) == head_revision()
