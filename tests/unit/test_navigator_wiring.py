"""voxdesk.navigator: the start-up report names each language's voice (the bundled English Piper voice, loaded
for real: about 1 s) or says that it cannot speak (a bogus zh voice path); the settings reach the session config;
sessions open only for navigator lines; a bank's flow file replaces the shipped one of the same name."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.navigator.flow_loader import shipped_flow_paths
from agent.navigator.testing import RecordingPlaySink
from agent.testing import ScriptedIntents
from core.events import CallStarted, Event
from core.ids import CallId
from voxdesk.container import Container, build_container
from voxdesk.db import load_table_modules
from voxdesk.navigator import NavigatorWiring, build_navigator, flow_paths
from voxdesk.settings import Settings

pytestmark = pytest.mark.unit


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Container]:
    settings = Settings(
        database={"url": f"sqlite:///{tmp_path / 'voxdesk.db'}"},
        navigator={
            "voices": {"zh": tmp_path / "voices" / "zh_CN-missing-medium.onnx"},
            "prompt_cache_dir": tmp_path / "prompt-cache",
            "skill_groups": {"cards": "sip:cards@pbx.bank.local"},
            "resume_after_ms": 900,
        },
    )
    built = build_container(settings)
    load_table_modules().metadata.create_all(built.engine)
    try:
        yield built
    finally:
        built.close()


@pytest.fixture
def wiring(container: Container) -> Iterator[NavigatorWiring]:
    built = build_navigator(container, warm=False, intents=ScriptedIntents())
    try:
        yield built
    finally:
        built.close()


def test_start_up_report_names_each_languages_voice_or_says_it_cannot_speak(wiring: NavigatorWiring) -> None:
    en, zh = sorted(wiring.report, key=lambda line: line[:2])
    assert en.startswith("en: Piper voice en_US-joe-medium")
    assert zh.startswith("zh: no voice and no pre-recorded prompts")
    assert "zh_CN-missing-medium.onnx" in zh and zh.endswith("navigator lines in zh cannot speak")
    assert list(wiring.speaker.caches) == ["en"] and wiring.speaker.caches["en"].rate_hz == 8000
    assert wiring.speaker.caches["en"].voice_id.startswith("en_US-joe-medium-")


def test_settings_reach_the_config_and_sessions_open_for_navigator_lines(wiring: NavigatorWiring) -> None:
    assert wiring.lines == {"navigator": "zh", "navigator-en": "en"}
    config = wiring.config
    assert config.sample_rate_hz == 8000 and config.resume_after_ms == 900
    assert config.skill_groups == {"cards": "sip:cards@pbx.bank.local"} and config.default_transfer_uri is None
    assert "uhhuh" in config.backchannels["en"] and "嗯" in config.backchannels["zh"]
    assert {"card_last4", "birth_date"} <= config.sensitive_slots

    async def publish(event: Event) -> None:
        return None

    sink = RecordingPlaySink()

    def started(line: str) -> CallStarted:
        return CallStarted(call_id=CallId(f"c-{line}"), direction="inbound", line=line, caller="+8613900000000",
                           media_worker=2)  # fmt: skip

    assert wiring.open_session(started("assisted"), publish=publish, sink=sink) is None
    session = wiring.open_session(started("navigator-en"), publish=publish, sink=sink)
    assert session is not None and session.lang == "en" and session.playback.media_worker == 2
    assert session.engine.variables["customer_id"] is None  # an unknown caller


def test_warm_reads_library_and_scripts_and_can_be_stopped(wiring: NavigatorWiring) -> None:
    stop = threading.Event()
    stop.set()
    assert wiring.warm(stop) == {"en": 0}  # stopped before the first render (rendering is the speaker's tests' job)


def test_a_banks_flow_file_replaces_the_shipped_one_of_the_same_name(tmp_path: Path) -> None:
    (tmp_path / "main.yaml").write_text("flows: []\n", encoding="utf-8")
    (tmp_path / "zz_bank.yaml").write_text("flows: []\n", encoding="utf-8")
    paths = flow_paths(tmp_path)
    shipped = shipped_flow_paths()
    assert len(paths) == len(shipped) + 1 and paths[-1] == tmp_path / "zz_bank.yaml"
    assert tmp_path / "main.yaml" in paths and not any(p.name == "main.yaml" and p in shipped for p in paths)
