"""Utterance endpointing over frame probabilities: start, pre-roll, end, post-roll, forced end, hysteresis."""

from __future__ import annotations

import itertools

import pytest

from asr.endpointer import EndpointConfig, Endpointer, EndpointEvent
from core.errors import InvalidInputError

pytestmark = pytest.mark.unit

FRAME = 320  # 20 ms at 16 kHz
MS = 16  # samples per ms


def run(probs: list[float], config: EndpointConfig) -> list[tuple[int, EndpointEvent]]:
    """(frame index, event) for every event produced."""
    ep = Endpointer(config)
    out: list[tuple[int, EndpointEvent]] = []
    for i, p in enumerate(probs):
        out += [(i, ev) for ev in ep.push(p, FRAME)]
    return out


def frames(*runs: tuple[float, int]) -> list[float]:
    """``(prob, ms)`` runs → one probability per 20 ms frame."""
    out: list[float] = []
    for prob, ms in runs:
        out += [prob] * (ms // 20)
    return out


CONFIG = EndpointConfig(
    min_speech_ms=100, endpoint_silence_ms=200, max_utterance_ms=2_000, pre_roll_ms=60, post_roll_ms=40
)


def test_start_after_min_speech_with_pre_roll() -> None:
    events = run(frames((0.0, 400), (0.9, 300), (0.0, 400)), CONFIG)
    kinds = [ev.kind for _, ev in events]
    assert kinds[0] == "start" and kinds[-1] == "end"
    assert set(kinds[1:-1]) == {"continue"}
    index, start = events[0]
    assert index == 20 + 5 - 1  # the 5th speech frame completes 100 ms
    assert start.speech_start == 400 * MS
    assert start.audio_start == (400 - 60) * MS  # pre-roll keeps the first syllable
    assert start.audio_end == 500 * MS


def test_end_after_silence_with_post_roll() -> None:
    events = run(frames((0.0, 400), (0.9, 300), (0.0, 400)), CONFIG)
    index, end = events[-1]
    assert end.kind == "end" and not end.forced
    assert index == (400 + 300 + 200) // 20 - 1  # 200 ms of silence after the last speech frame
    assert end.speech_start == 400 * MS
    assert end.speech_end == 700 * MS
    assert end.audio_end == 740 * MS  # 40 ms post-roll
    assert end.audio_start == 340 * MS


def test_short_bursts_are_ignored() -> None:
    # a 300 ms gap (start_gap_ms) drops a candidate that has not spanned min_speech_ms
    assert run(frames((0.9, 80), (0.0, 300), (0.9, 60), (0.0, 500)), CONFIG) == []


def test_words_with_short_dips_start_an_utterance() -> None:
    # Silero dips between words: 80 ms speech, 100 ms dip, 60 ms speech spans 240 ms ≥ min_speech_ms
    events = run(frames((0.0, 400), (0.9, 60), (0.1, 40), (0.9, 40), (0.0, 400)), CONFIG)
    (index, start), *_ = events
    assert start.kind == "start" and index == 25  # the frame after the dip: span 120 ms >= 100 ms
    assert start.speech_start == 400 * MS and start.audio_start == 340 * MS
    assert events[-1][1].kind == "end" and events[-1][1].speech_end == 540 * MS


def test_short_pause_does_not_end_the_utterance() -> None:
    events = run(frames((0.9, 200), (0.0, 180), (0.9, 200), (0.0, 300)), CONFIG)
    ends = [ev for _, ev in events if ev.kind == "end"]
    assert len(ends) == 1
    assert ends[0].speech_end == 580 * MS


def test_hysteresis_keeps_speaking_above_the_silence_threshold() -> None:
    # 0.4 is below the start threshold (0.5) but above the silence threshold (0.35)
    events = run(frames((0.9, 200), (0.4, 600), (0.0, 300)), CONFIG)
    ends = [ev for _, ev in events if ev.kind == "end"]
    assert len(ends) == 1 and ends[0].speech_end == 800 * MS
    # ...but 0.4 alone never starts one
    assert run(frames((0.4, 1000)), CONFIG) == []


def test_forced_end_at_max_utterance_and_seamless_restart() -> None:
    events = run(frames((0.9, 5_000), (0.0, 400)), CONFIG)
    utterances = [ev for _, ev in events if ev.kind == "end"]
    assert utterances[0].forced
    assert utterances[0].audio_end - utterances[0].audio_start == 2_000 * MS
    # the next utterance begins exactly where the forced one ended: nothing lost, nothing repeated
    for before, after in itertools.pairwise(utterances):
        assert after.audio_start == before.audio_end
    assert not utterances[-1].forced
    assert utterances[-1].speech_end == 5_000 * MS
    assert sum(ev.audio_end - ev.audio_start for ev in utterances) == 5_000 * MS + 40 * MS


def test_pre_roll_never_reaches_into_the_previous_utterance() -> None:
    cfg = EndpointConfig(min_speech_ms=100, endpoint_silence_ms=200, max_utterance_ms=2_000, pre_roll_ms=500)
    events = run(frames((0.9, 200), (0.0, 200), (0.9, 200), (0.0, 300)), cfg)
    ends = [ev for _, ev in events if ev.kind == "end"]
    assert len(ends) == 2
    assert ends[1].audio_start == ends[0].audio_end


def test_pre_roll_is_clipped_at_stream_start() -> None:
    events = run(frames((0.9, 200), (0.0, 300)), CONFIG)
    assert events[0][1].audio_start == 0


def test_flush_ends_the_open_utterance() -> None:
    ep = Endpointer(CONFIG)
    for p in frames((0.9, 300)):
        ep.push(p, FRAME)
    assert ep.in_utterance
    (end,) = ep.flush()
    assert end.kind == "end" and end.audio_end == 300 * MS
    assert not ep.in_utterance and ep.flush() == []


def test_keep_from_bounds_what_a_caller_must_buffer() -> None:
    ep = Endpointer(CONFIG)
    for p in frames((0.0, 1_000)):
        ep.push(p, FRAME)
    assert ep.keep_from == (1_000 - 60) * MS
    for p in frames((0.9, 40)):
        ep.push(p, FRAME)
    assert ep.keep_from == (1_000 - 60) * MS  # anchored at the speech run's start
    for p in frames((0.9, 100)):
        ep.push(p, FRAME)
    assert ep.in_utterance and ep.keep_from == (1_000 - 60) * MS


def test_deterministic_and_reset() -> None:
    probs = frames((0.0, 100), (0.9, 500), (0.0, 300), (0.8, 700), (0.1, 300))
    assert run(probs, CONFIG) == run(probs, CONFIG)
    ep = Endpointer(CONFIG)
    for p in probs[:30]:
        ep.push(p, FRAME)
    ep.reset()
    assert ep.position == 0 and not ep.in_utterance


def test_invalid_config() -> None:
    with pytest.raises(InvalidInputError):
        EndpointConfig(threshold=0.0)
    with pytest.raises(InvalidInputError):
        EndpointConfig(max_utterance_ms=100, min_speech_ms=250)
    with pytest.raises(InvalidInputError):
        Endpointer(CONFIG).push(0.5, 0)
