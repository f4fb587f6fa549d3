"""The labelled QA call set: scripts, timeline, labels, metadata rows, the eval matcher (and, slow, real TTS)."""

from __future__ import annotations

import csv
import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from qa.models import Finding
from qa.rules_config import RULE_IDS
from voxdesk.benches.qa_scripts import (
    METADATA_HEADER,
    WHOLE_CALL_RULES,
    CallScript,
    ScriptTurn,
    Span,
    build_timeline,
    estimate_ms,
    label_call,
    load_scripts,
    metadata_row,
)
from voxdesk.evals.qa_match import ExpectedFinding, match_call, summarise
from voxdesk.evals.qa_rules import SetHistory

_DEMO = Path(__file__).resolve().parents[2] / "voxdesk" / "demo" / "questions"


def _question_ids() -> frozenset[str]:
    ids: set[str] = set()
    for path in _DEMO.glob("*.yaml"):
        ids.update(q["id"] for q in yaml.safe_load(path.read_text(encoding="utf-8"))["questions"])
    return frozenset(ids)


def _call(**kw: object) -> CallScript:
    base: dict[str, object] = {
        "id": "t1",
        "agent_id": "A1",
        "team": "cards",
        "customer_phone": "+86 138 0013 8000",
        "start_time": "2025-03-03T09:00:00+08:00",
        "turns": [
            {"speaker": "agent", "text": "Thank you for calling."},
            {"speaker": "customer", "text": "I lost my card.", "pause_s": 1.0},
            {"speaker": "agent", "text": "Listen to me.", "overlap_s": 2.0},
            {"speaker": "customer", "text": "Okay.", "pause_s": 16.0},
        ],
        "expected": [
            {"rule": "call_reason", "turn": 1, "question": "cards.report_lost_card"},
            {"rule": "talk_over", "turn": 2},
            {"rule": "long_silence", "turn": 3},
            {"rule": "overlong_call"},
        ],
    }
    base.update(kw)
    return CallScript.model_validate(base)


def test_shipped_scripts_load_and_cover_every_rule() -> None:
    calls = load_scripts(question_ids=_question_ids())
    assert len(calls) >= 44
    counts = dict.fromkeys(RULE_IDS, 0)
    for call in calls:
        assert call.reason  # exactly one call_reason, a known question id (checked by load_scripts)
        for e in call.expected:
            assert e.rule in RULE_IDS
            counts[e.rule] += 1
    assert counts["call_reason"] == len(calls)
    assert all(n >= 3 for n in counts.values()), counts
    clean = [c for c in calls if len(c.expected) == 1]
    assert len(clean) >= len(calls) // 4
    phones = [c.customer_phone for c in calls]
    import phonenumbers

    assert all(phonenumbers.is_valid_number(phonenumbers.parse(p)) for p in phones)
    assert sum(c.audio == "mono" for c in calls) >= 3 and sum(c.audio == "flac" for c in calls) >= 2


def test_bad_scripts_are_rejected(tmp_path: Path) -> None:
    from core.errors import ConfigError

    good = _call().model_dump(mode="json")
    bad_rule = {**good, "expected": [*good["expected"], {"rule": "no_such_rule", "turn": 0}]}
    no_reason = {**good, "expected": [{"rule": "talk_over", "turn": 2}]}
    for item in (bad_rule, no_reason):
        path = tmp_path / "calls.yaml"
        path.write_text(yaml.safe_dump({"calls": [item]}), encoding="utf-8")
        with pytest.raises(ConfigError):
            load_scripts(path)
    with pytest.raises(ValueError):
        ScriptTurn(speaker="agent", text="x", pause_s=1.0, overlap_s=1.0)


def test_timeline_places_pauses_and_overlaps() -> None:
    call = _call()
    spans = build_timeline(call.turns, [2000, 3000, 2500, 1000], lead_ms=300)
    assert spans[0] == Span(300, 2300)
    assert spans[1] == Span(3300, 6300)  # 1 s pause
    assert spans[2] == Span(4300, 6800)  # starts 2 s before the customer ends
    assert spans[3] == Span(22800, 23800)  # 16 s after the latest end
    plain = (ScriptTurn(speaker="agent", text="Hi."), ScriptTurn(speaker="customer", text="Hello."))
    default = build_timeline(plain, [1000, 1000], lead_ms=0)
    assert default[1].start_ms == 1500  # the natural 0.5 s hand-over


def test_seeded_timeline_draws_natural_pauses_deterministically() -> None:
    plain = tuple(ScriptTurn(speaker="agent" if i % 2 else "customer", text="Hello there.") for i in range(8))
    first = build_timeline(plain, [1000] * 8, lead_ms=0, seed="qa001")
    assert first == build_timeline(plain, [1000] * 8, lead_ms=0, seed="qa001")
    assert first != build_timeline(plain, [1000] * 8, lead_ms=0, seed="qa002")
    gaps = [b.start_ms - a.end_ms for a, b in itertools.pairwise(first)]
    assert all(500 <= g <= 1100 for g in gaps) and len(set(gaps)) > 1


def test_shipped_timelines_keep_planted_and_hard_negative_timing_apart() -> None:
    """With estimated turn lengths: planted silences and talk-over are well past the rules' limits (8 s waiting on
    the agent, 15 s on the customer, 1 s of overlap), every other pause and overlap well under them, and only the
    overlong calls last over 6 minutes."""
    for call in load_scripts():
        spans = build_timeline(call.turns, [estimate_ms(t) for t in call.turns], seed=call.id)
        silences = {e.turn for e in call.expected if e.rule == "long_silence"}
        talk_over = {e.turn for e in call.expected if e.rule == "talk_over"}
        for i, turn in enumerate(call.turns[1:], start=1):
            prev = call.turns[i - 1]
            if turn.overlap_s is not None:
                if i in talk_over:
                    assert (turn.speaker, prev.speaker) == ("agent", "customer") and turn.overlap_s >= 1.5, call.id
                elif (turn.speaker, prev.speaker) == ("agent", "customer"):
                    assert turn.overlap_s < 1.0, call.id  # a backchannel
                continue
            gap = spans[i].start_ms - max(s.end_ms for s in spans[:i])
            if i in silences:
                assert gap >= (10_000 if turn.speaker == "agent" else 18_000), call.id
            elif prev.speaker == "agent" and turn.speaker == "customer":
                assert gap <= 12_000, call.id
            else:
                assert gap <= 6_000, call.id
        assert not talk_over - {i for i, t in enumerate(call.turns) if t.overlap_s is not None}, call.id
        overlong = any(e.rule == "overlong_call" for e in call.expected)
        assert (spans[-1].end_ms > 360_000) == overlong, call.id


def test_labels_locate_the_planted_findings() -> None:
    call = _call()
    spans = build_timeline(call.turns, [2000, 3000, 2500, 1000], lead_ms=300)
    labels = {lb.rule: lb for lb in label_call(call, spans, 24_600)}
    assert (labels["talk_over"].channel, labels["talk_over"].start_ms, labels["talk_over"].end_ms) == (
        "agent",
        4300,
        6300,
    )
    assert (labels["long_silence"].channel, labels["long_silence"].start_ms) == ("customer", 6800)
    assert labels["long_silence"].end_ms == 22800
    assert (labels["overlong_call"].channel, labels["overlong_call"].end_ms) == (None, 24_600)
    assert labels["call_reason"].question == "cards.report_lost_card"
    assert labels["call_reason"].channel == "customer"


def test_metadata_row_matches_the_importer(tmp_path: Path) -> None:
    from qa.imports import scan_folder

    call = _call()
    row = metadata_row(call, "t1.wav", "stereo")
    assert tuple(row) == METADATA_HEADER
    (tmp_path / "t1.wav").write_bytes(b"")
    with (tmp_path / "metadata.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(METADATA_HEADER))
        writer.writeheader()
        writer.writerow(row)
    found = scan_folder(tmp_path)
    meta = found.recordings[0].meta
    assert meta.call_id == "t1" and meta.customer_phone == "+8613800138000"
    assert meta.started_at == datetime(2025, 3, 3, 1, 0, tzinfo=UTC)


def _f(rule: str, start: int, end: int, channel: str | None = "agent", detail: str = "") -> Finding:
    return Finding(rule, "minor", "", start, end, channel, detail)  # type: ignore[arg-type]


def test_matcher_counts_tp_fp_fn() -> None:
    expected = [
        ExpectedFinding("forbidden_phrase", "agent", 10_000, 12_000),
        ExpectedFinding("forbidden_phrase", "agent", 30_000, 31_000),
        ExpectedFinding("call_reason", "customer", 1000, 4000, "cards.report_lost_card"),
        ExpectedFinding("identity_missing", "agent", 5000, 6000),
        ExpectedFinding("overlong_call", None, 0, 400_000),
    ]
    predicted = [
        _f("forbidden_phrase", 13_500, 14_000),  # within the 2 s tolerance
        _f("forbidden_phrase", 13_600, 14_000),  # a second prediction for the same finding: FP
        _f("forbidden_phrase", 40_000, 41_000),  # too far from the second one: FP (and that one FN)
        _f("call_reason", 1000, 4000, "customer", "cards.activate_card"),  # wrong question: FP + FN
        _f("identity_missing", 90_000, 91_000),  # whole-call rule: anywhere in the call
        _f("overlong_call", 0, 400_000, None),
        _f("talk_over", 5000, 7000, "customer"),  # wrong channel: FP
    ]
    pairs, missed, extra = match_call(expected, predicted)
    assert len(pairs) == 3 and len(missed) == 2 and len(extra) == 4
    counts, summary = summarise([("c1", expected, predicted)])
    assert (counts["forbidden_phrase"].tp, counts["forbidden_phrase"].fp, counts["forbidden_phrase"].fn) == (1, 2, 1)
    assert (counts["call_reason"].tp, counts["call_reason"].fp, counts["call_reason"].fn) == (0, 1, 1)
    assert summary["rules"]["identity_missing"]["precision"] == 1.0
    assert summary["rules"]["greeting_missing"]["precision"] is None
    assert summary["n_calls"] == 1 and summary["min_recall"] == 0.0
    assert set(summary["rules"]) == set(RULE_IDS)
    assert "call_reason" in WHOLE_CALL_RULES


def test_set_history_returns_earlier_calls_within_the_window() -> None:
    t0 = datetime(2025, 3, 3, 9, tzinfo=UTC)
    history = SetHistory((("+86", "a", t0), ("+86", "b", t0 + timedelta(hours=80)), ("+87", "c", t0)))
    assert [c.call_id for c in history.prior_calls("+86", t0 + timedelta(hours=90), 72)] == ["b"]
    assert history.prior_calls("+86", t0, 72) == []  # not the call itself


@pytest.mark.integration
@pytest.mark.slow
def test_two_calls_are_synthesised_as_stereo_8k(tmp_path: Path) -> None:
    pytest.importorskip("piper")
    from core.audio import read_audio
    from voxdesk.benches.qa_set import build_set

    summary = build_set(tmp_path, limit=2, workers=1)
    assert len(summary.calls) == 2
    labels = [json.loads(line) for line in (tmp_path / "labels.jsonl").read_text(encoding="utf-8").splitlines()]
    for built, label, script in zip(summary.calls, labels, load_scripts()[:2], strict=True):
        clip = read_audio(tmp_path / built.file)
        assert clip.sample_rate == 8000
        if built.row["channels"] == "stereo":
            assert clip.channels == 2
            assert clip.samples[:, 0].any() and clip.samples[:, 1].any()
        assert 60_000 <= clip.duration_ms <= 150_000
        assert len(label["turns"]) == len(script.turns)
        for e in label["expected"]:
            assert 0 <= e["start_ms"] <= e["end_ms"] <= clip.duration_ms
    header = (tmp_path / "metadata.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header == ",".join(METADATA_HEADER)
