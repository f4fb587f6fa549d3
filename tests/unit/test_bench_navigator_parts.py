"""The pure parts of ``voxdesk bench navigator``: the script file, spoken forms, turn timing from a recording."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.events import BotAudio, BotSaid, FinalTranscript, IntentDetected
from core.ids import CallId, QuestionId
from voxdesk.benches.navigator_script import fill, load_script, spoken_date, spoken_digits
from voxdesk.benches.navigator_timing import TurnClock, frame_rms, speech_onset_ms, time_turns


def test_shipped_script_has_enough_turns_and_known_question_ids() -> None:
    import yaml

    calls = load_script()
    turns = [t for c in calls for t in c.turns]
    intents = [t.intent for t in turns if t.intent]
    assert len(calls) >= 25 and len(turns) >= 100 and len(intents) >= 50
    known = {
        q["id"]
        for f in sorted(Path("voxdesk/demo/questions").glob("*.yaml"))
        for q in yaml.safe_load(f.read_text(encoding="utf-8"))["questions"]
    }
    assert set(intents) <= known, set(intents) - known
    assert {c.expect for c in calls} == {"contained", "transfer"}


def test_malformed_script_is_refused_with_the_call_number(tmp_path: Path) -> None:
    bad = tmp_path / "s.yaml"
    bad.write_text("calls:\n  - id: a\n    turns: [{say: hi}]\n  - id: b\n")
    with pytest.raises(ConfigError) as info:
        load_script(bad)
    assert info.value.details.get("call") == 2


def test_spoken_forms_and_filling() -> None:
    assert spoken_digits("0425") == "zero four two five"
    assert spoken_date(date(1980, 5, 1)) == "May 1st, 1980"
    assert spoken_date(date(1975, 3, 12)) == "March 12th, 1975"
    assert spoken_date(date(1990, 11, 23)) == "November 23rd, 1990"
    assert fill("{last4}", last4="1234", birth=None) == "one two three four"
    with pytest.raises(ConfigError):
        fill("{birth}", last4=None, birth=None)


def _at(ms: float) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def test_turn_timing_finds_end_of_speech_and_stages() -> None:
    rate = 8000
    left = np.zeros(rate * 10, dtype=np.int16)
    left[int(2.0 * rate) : int(3.5 * rate)] = 3000  # caller speech 2.0-3.5 s on the recording
    rms = frame_rms(left, rate)
    assert speech_onset_ms(rms, 0) == 2000.0 and speech_onset_ms(rms, 3600) is None
    start = 1_000_000.0  # epoch ms of the recording's first frame
    call = CallId("c")
    events = [
        FinalTranscript(call_id=call, leg="customer", text="hi", start_ms=0, end_ms=1, at=_at(start + 3500 + 420)),
        IntentDetected(
            call_id=call, question_id=QuestionId("q.x"), label="q.x", score=0.9, text="hi", at=_at(start + 3500 + 440)
        ),
        BotSaid(call_id=call, segment=1, text="answer", at=_at(start + 3500 + 460)),
        BotAudio(call_id=call, segment=0, state="started", at_ms=start + 100),  # the greeting, before the turn
        BotAudio(call_id=call, segment=1, state="started", at_ms=start + 3500 + 480),
    ]
    turns = [TurnClock(started_ms=start + 1900, speech_ms=1500)]
    (timing,) = time_turns(turns, rms, recording_start_ms=start, jitter_delay_ms=40, events=events)
    assert timing.end_of_speech_ms == start + 3500 - 40
    assert timing.latency_ms == pytest.approx(520)
    assert timing.stages == pytest.approx({"final": 460, "intent": 20, "said": 20, "audio": 20})


def test_turn_without_speech_or_answer_has_no_latency() -> None:
    rms = frame_rms(np.zeros(8000 * 2, dtype=np.int16), 8000)
    (timing,) = time_turns([TurnClock(0.0, 500)], rms, recording_start_ms=0.0, jitter_delay_ms=0, events=[])
    assert timing.latency_ms is None and timing.end_of_speech_ms is None


def test_bot_quiet_needs_new_speech_all_segments_closed_and_a_quiet_gap() -> None:
    from core.events import CallEnded
    from voxdesk.benches.navigator_timing import bot_quiet

    call = CallId("c")
    started = BotAudio(call_id=call, segment=1, state="started", at_ms=1_000.0)
    done = BotAudio(call_id=call, segment=1, state="completed", at_ms=3_000.0)
    assert not bot_quiet([started], 500.0, 1_000, 5_000.0)  # still playing
    assert not bot_quiet([started, done], 500.0, 1_000, 3_500.0)  # not quiet long enough
    assert bot_quiet([started, done], 500.0, 1_000, 4_000.0)
    assert not bot_quiet([started, done], 2_000.0, 1_000, 9_000.0)  # nothing said since the caller's turn
    assert bot_quiet([CallEnded(call_id=call, duration_ms=1, reason="normal")], 2_000.0, 1_000, 0.0)
