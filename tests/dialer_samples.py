"""Shared pieces of the dialer tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine
from sqlalchemy.orm import Session, sessionmaker

import telephony.dialer.tables  # noqa: F401  (registers the dialer tables)
from core.db import Base


def dialer_sessions(path: Path) -> Iterator[sessionmaker[Session]]:
    """Sessions on a fresh SQLite database at ``path`` with every registered table (a fixture body: yields, then
    disposes); a 10 s busy timeout for the tests that race several writers."""
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 10})
    Base.metadata.create_all(engine)
    try:
        yield sessionmaker(engine, expire_on_commit=False)
    finally:
        engine.dispose()
