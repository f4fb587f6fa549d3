"""Settings root and the event vocabulary."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from core.errors import ConfigError
from core.events import (
    EVENT_KINDS,
    CallEnded,
    FinalTranscript,
    IntentDetected,
    event_from_json,
    event_kind,
    event_to_json,
)
from voxdesk.settings import Settings, load_settings

pytestmark = pytest.mark.unit


def test_env_overrides_toml_overrides_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "voxdesk.toml"
    config.write_text('[database]\nurl = "sqlite:///from-toml.db"\n[server]\nport = 9001\n[auth]\nsession_ttl_s = 60\n')
    monkeypatch.setenv("VOXDESK_SERVER_PORT", "9100")
    monkeypatch.setenv("VOXDESK_AUTH_SESSION_SECRET", "s" * 40)
    monkeypatch.setenv("VOXDESK_SHARED_DATA", "/data/here")
    settings = load_settings(config)
    assert settings.database.url == "sqlite:///from-toml.db"
    assert settings.server.port == 9100
    assert settings.auth.session_ttl_s == 60
    assert settings.auth.session_secret.get_secret_value() == "s" * 40
    assert "s" * 40 not in repr(settings)
    assert settings.shared_data == Path("/data/here")


def test_database_url_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VOXDESK_DATABASE_URL", "postgresql+psycopg://u@db:5432/voxdesk")
    assert load_settings().database.url == "postgresql+psycopg://u@db:5432/voxdesk"


def test_unknown_keys_and_missing_file_are_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[databse]\nurl = 'x'\n")
    with pytest.raises(ValidationError):
        load_settings(bad)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.toml")


def test_production_refuses_defaults() -> None:
    with pytest.raises(ConfigError) as info:
        Settings(production=True).check_production()
    assert "session_secret" in str(info.value) and "SQLite" in str(info.value)
    Settings(
        production=True,
        database={"url": "postgresql+psycopg://voxdesk@db/voxdesk"},
        auth={"session_secret": "x" * 48, "cookie_secure": True},
    ).check_production()


def test_events_round_trip_and_are_immutable() -> None:
    events = [
        FinalTranscript(
            call_id="call-1", leg="customer", text="我想查询信用卡额度", start_ms=120, end_ms=2300, lang="zh"
        ),
        IntentDetected(call_id="call-1", question_id=None, label="out_of_scope", score=0.2, text="hello"),
        CallEnded(call_id="call-1", duration_ms=65_000, reason="normal", sip_code=200),
    ]
    for event in events:
        back = event_from_json(event_to_json(event))
        assert back == event and type(back) is type(event)
        assert event_kind(event) in EVENT_KINDS
    with pytest.raises(ValidationError):
        events[0].text = "changed"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        event_from_json(b'{"kind": "speech.final", "call_id": "c"}')
    with pytest.raises(ValidationError):
        FinalTranscript(call_id="c", leg="martian", text="x", start_ms=0, end_ms=1)  # type: ignore[arg-type]
