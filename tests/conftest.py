"""Shared fixtures: databases (SQLite and real PostgreSQL), settings, the wired container, shared data."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from sqlalchemy import create_engine, text

from voxdesk.settings import Settings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "0")

POSTGRES_URL = os.environ.get("VOXDESK_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
ROOT = Path(__file__).resolve().parent.parent


def shared_data_root() -> Path:
    """The real data folder (``VOXDESK_SHARED_DATA`` or ``../shared/data`` beside the project)."""
    return Path(os.environ.get("VOXDESK_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """Path of ``../shared/data``; skips the test with a clear message when it is absent."""
    root = shared_data_root()
    if not root.is_dir():
        pytest.skip(f"real data not found at {root} (set VOXDESK_SHARED_DATA)")
    return root


def _postgres_available() -> bool:
    try:
        engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
        return True
    except Exception:
        return False


@pytest.fixture(scope="session")
def postgres_ok() -> bool:
    return _postgres_available()


@pytest.fixture(
    params=[
        pytest.param("sqlite", marks=pytest.mark.integration),
        pytest.param("postgres", marks=[pytest.mark.integration, pytest.mark.postgres]),
    ]
)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, postgres_ok: bool) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a private schema on the real PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'voxdesk.db'}"
        return
    if not postgres_ok:
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}")
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL)
    with admin.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield f"{POSTGRES_URL}?options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    """Settings for one test: its own database and var folder, quick password hashing, memory bus."""
    return Settings(
        var_dir=tmp_path / "var",
        database={"url": database_url},
        bus={"backend": "memory"},
        logging={"json_logs": True, "level": "INFO"},
        demo={"load_on_empty": False},
    )


@pytest.fixture
def container(settings: Settings) -> Iterator[object]:
    """The wired application on a migrated, empty database."""
    from voxdesk.container import build_container
    from voxdesk.db import upgrade

    built = build_container(settings)
    upgrade(built.engine)
    try:
        yield built
    finally:
        built.close()


def ncc_peak(signal_: npt.NDArray[np.float64], template: npt.NDArray[np.float64]) -> float:
    """Peak of the normalised cross-correlation of ``template`` sliding over ``signal_`` (both 8 kHz)."""
    if len(signal_) < len(template):
        signal_ = np.concatenate([signal_, np.zeros(len(template) - len(signal_))])
    n = len(signal_) + len(template)
    size = 1 << (n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(signal_, size) * np.conj(np.fft.rfft(template, size)), size)
    valid = corr[: len(signal_) - len(template) + 1]
    energy = np.concatenate([[0.0], np.cumsum(signal_**2)])
    window = energy[len(template) :] - energy[: len(signal_) - len(template) + 1]
    denom = np.sqrt(np.maximum(window, 1e-9)) * np.linalg.norm(template)
    return float(np.max(valid / denom))
