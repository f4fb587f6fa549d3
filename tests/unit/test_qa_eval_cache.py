"""The transcript cache of ``voxdesk eval qa-rules``: a transcript survives JSON unchanged, a second run reuses it
instead of transcribing, a changed recording or a damaged entry is transcribed again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import InvalidInputError
from qa.imports import ImportedRecording
from qa.inspector import Inspector
from qa.models import CallTranscript, RecordingMeta, Turn, Word
from qa.pipeline import QaPipeline
from qa.rules_config import load_rules
from qa.scorecard import load_scorecards
from qa.testing import ScriptedTranscriber
from qa.transcript_io import transcript_from_json, transcript_to_json
from tests.qa_samples import CLOSING, COMPLAINT, GREETING, LOST_CARD, PROMISE, T0, write_wav
from voxdesk.evals.qa_rules import SetHistory, _inspect

WORDY = Turn("agent", "您好 请讲", 100, 900, "zh", (Word("您好", 100, 500, 0.91), Word("请讲", 520, 900, None)), 0.8)
SCRIPT = CallTranscript((GREETING, LOST_CARD, PROMISE, COMPLAINT, CLOSING, WORDY), 20_000, "en", "stereo")


def pipeline(fake: ScriptedTranscriber) -> QaPipeline:
    cards, default = load_scorecards()
    return QaPipeline(transcriber=fake, inspector=Inspector(load_rules()), scorecards=cards, default_scorecard=default)


def test_transcript_round_trips_through_json() -> None:
    back = transcript_from_json(json.loads(json.dumps(transcript_to_json(SCRIPT), ensure_ascii=False)))
    assert back == SCRIPT


@pytest.mark.parametrize(
    "bad",
    [{}, {"turns": [], "duration_ms": 1, "lang": "fr", "source": "stereo"}, {"turns": [{"channel": "bot"}]}],
)
def test_bad_transcript_json_is_rejected(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        transcript_from_json(bad)


def test_second_run_reuses_the_cached_transcript(tmp_path: Path) -> None:
    wav = tmp_path / "set" / "c-1.wav"
    write_wav(wav)
    rec = ImportedRecording(wav, RecordingMeta("c-1", started_at=T0))
    history = SetHistory(())
    cache = tmp_path / "cache"
    fake = ScriptedTranscriber(SCRIPT)
    first, hit1 = _inspect(pipeline(fake), rec, history, cache)
    second, hit2 = _inspect(pipeline(fake), rec, history, cache)
    assert (hit1, hit2) == (False, True)
    assert len(fake.calls) == 1  # transcribed once
    assert second.findings == first.findings and second.findings
    assert second.sha256 == first.sha256 and second.transcript == SCRIPT

    write_wav(wav, seconds=21.0)  # a different recording under the same call id
    _, hit3 = _inspect(pipeline(fake), rec, history, cache)
    assert not hit3 and len(fake.calls) == 2

    for entry in cache.glob("*.json"):
        entry.write_text("{not json", encoding="utf-8")
    _, hit4 = _inspect(pipeline(fake), rec, history, cache)
    assert not hit4 and len(fake.calls) == 3
