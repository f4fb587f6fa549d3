"""docker/ stays consistent with the code: every package is copied, every variable is a real setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from voxdesk.settings import Settings

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
PACKAGES = (
    "core",
    "profiles",
    "knowledge",
    "asr",
    "nlu",
    "telephony",
    "vision",
    "recommender",
    "qa",
    "agent",
    "voxdesk",
)


def test_dockerfile_copies_every_package() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    for package in PACKAGES:
        assert f"COPY {package} {package}" in text


def test_compose_environment_is_valid_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    assert {"app", "postgres", "redis"} <= set(compose["services"])
    env = compose["services"]["app"]["environment"]
    for key, value in env.items():
        assert key.startswith("VOXDESK_")
        monkeypatch.setenv(
            key,
            str(value)
            .replace("${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}", "pw")
            .replace("${VOXDESK_AUTH_SESSION_SECRET:?set VOXDESK_AUTH_SESSION_SECRET (32+ chars)}", "k" * 40),
        )
    settings = Settings(production=True)
    settings.check_production()
    assert settings.bus.backend == "redis"
    assert settings.database.url.startswith("postgresql+psycopg://voxdesk:pw@postgres")
