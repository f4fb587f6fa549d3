"""Shared SQLAlchemy declarative base and column helpers.

Each package declares its own tables on :class:`Base` (``profiles/tables.py``, ``knowledge/tables.py``, …); the
application shell imports them all for Alembic. Engines and sessions are built in ``voxdesk/``, never here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData, TypeDecorator
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from core.errors import StorageError

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    """Declarative base of every Voxdesk table."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UtcDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and always returned timezone-aware (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@contextmanager
def session_scope(sessions: sessionmaker[Session], *, write: bool = False) -> Iterator[Session]:
    """A session that commits on success when ``write``, rolls back on any error, always closes, and turns
    database errors into :class:`core.errors.StorageError` (retryable)."""
    session = sessions()
    try:
        yield session
        if write:
            session.commit()
    except SQLAlchemyError as exc:
        session.rollback()
        raise StorageError("database operation failed") from exc
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
