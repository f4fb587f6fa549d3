"""Pure parts of call transcription: packing speech into chunks, mapping chunk times back to the recording,
splitting segments into turns, choosing the call's language; the transcriber's checks and the scripted fake."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from asr.normalize import normalize_for_display
from core.errors import AudioFormatError, InvalidInputError
from qa.models import CallTranscript, SpeakerTurn, Turn, Word
from qa.testing import ScriptedTranscriber
from qa.transcribe import CallTranscriber
from qa.transcribe_parts import (
    Chunk,
    Piece,
    RawWord,
    choose_language,
    intersect_regions,
    pack_regions,
    segment_turns,
    split_at_gaps,
    words_in_text,
)

pytestmark = pytest.mark.unit

SR = 16_000


def _two_pieces() -> Chunk:
    """1 s of speech at 1–2 s, then (after 0.3 s of inserted silence) 1 s at 5–6 s of the recording."""
    return Chunk("agent", (Piece(1 * SR, 0, SR), Piece(5 * SR, SR + 4800, SR)))


def _keep(text: str, lang: Literal["zh", "en"]) -> str:
    return " ".join(text.split())


# ------------------------------------------------------------------------------------------ packing


def test_pack_regions_fills_chunks_evenly_with_gaps() -> None:
    regions = [(0, 4 * SR), (6 * SR, 10 * SR), (12 * SR, 16 * SR), (20 * SR, 21 * SR)]
    chunks = pack_regions(regions, "customer", max_samples=8 * SR, gap_samples=SR // 10)
    assert [c.channel for c in chunks] == ["customer", "customer"]
    assert [c.regions for c in chunks] == [((0, 4 * SR), (6 * SR, 10 * SR)), ((12 * SR, 16 * SR), (20 * SR, 21 * SR))]
    second = chunks[1].pieces
    assert second[0].chunk_start == 0 and second[1].chunk_start == 4 * SR + SR // 10
    assert all(sum(p.length for p in c.pieces) <= 8 * SR for c in chunks)


def test_pack_regions_splits_long_regions_and_merges_overlaps() -> None:
    chunks = pack_regions([(0, 25 * SR), (24 * SR, 26 * SR), (30, 30)], "agent", max_samples=10 * SR)
    step = -(-26 * SR // 3)  # three equal parts, rounded up
    assert [c.regions for c in chunks] == [((0, step),), ((step, 2 * step),), ((2 * step, 26 * SR),)]
    assert pack_regions([], "agent", max_samples=SR) == []
    with pytest.raises(ValueError):
        pack_regions([(0, 1)], "agent", max_samples=0)


def test_intersect_regions_keeps_speech_inside_turns() -> None:
    speech = [(0, 100), (150, 300)]
    turns = [(50, 170), (160, 200), (250, 400)]
    assert intersect_regions(speech, turns) == [(50, 100), (150, 200), (250, 300)]
    assert intersect_regions(speech, []) == []


# ------------------------------------------------------------------------------------------ time mapping


def test_chunk_times_map_back_to_the_recording() -> None:
    chunk = _two_pieces()
    assert chunk.samples == 2 * SR + 4800
    assert chunk.recording_ms(0.0) == 1000
    assert chunk.recording_ms(0.5) == 1500
    assert chunk.recording_ms(1.5) == 5200  # 1.5 s into the chunk = 0.2 s into the second piece
    assert chunk.recording_ms(1.0, is_end=True) == 2000  # on the join: the end of the first piece
    assert chunk.recording_ms(1.1) == 5000  # inside the inserted silence: the start of the later piece
    assert chunk.recording_ms(99.0, is_end=True) == 6000  # clamped to the chunk


def test_map_span_never_stretches_over_removed_silence() -> None:
    chunk = _two_pieces()
    assert chunk.map_span(0.2, 0.6) == (1200, 1600)
    assert chunk.map_span(0.5, 1.35) == (1500, 2000)  # mostly in the first piece: clipped to its end
    assert chunk.map_span(0.95, 1.8) == (5000, 5500)  # mostly in the second piece: starts at its start
    assert chunk.map_span(1.05, 1.2) == (5000, 5000)  # wholly in the silence: an instant at the later piece


def test_covered_and_piece_chunk() -> None:
    chunk = _two_pieces()
    turn = Turn("agent", "hello", 1100, 1500, words=(Word("hello", 1100, 1500),))
    assert chunk.covered([turn]) == [True, False]
    alone = chunk.piece_chunk(1)
    assert alone.regions == ((5 * SR, 6 * SR),) and alone.pieces[0].chunk_start == 0


# ------------------------------------------------------------------------------------------ turns


def test_split_at_gaps_splits_only_over_the_limit() -> None:
    words = [Word("a", 0, 100), Word("b", 900, 1000), Word("c", 1801, 1900)]
    assert [[w.text for w in g] for g in split_at_gaps(words, 800)] == [["a", "b"], ["c"]]
    assert split_at_gaps([], 800) == []


def test_segment_turns_splits_at_pauses_in_recording_time() -> None:
    chunk = Chunk("customer", (Piece(10 * SR, 0, 5 * SR),))
    words = [
        RawWord(" Hello,", 0.10, 0.40, 0.9),
        RawWord(" my", 0.45, 0.60, 0.8),
        RawWord(" card.", 0.62, 0.90, 0.7),
        RawWord(" Thanks.", 2.50, 2.90, 0.6),
    ]
    turns = segment_turns(
        chunk, " Hello, my card. Thanks.", words, lang="en", normalizer=normalize_for_display, max_gap_ms=800
    )
    assert [t.text for t in turns] == ["Hello, my card.", "Thanks."]
    assert [(t.start_ms, t.end_ms) for t in turns] == [(10100, 10900), (12500, 12900)]
    assert all(t.channel == "customer" and t.lang == "en" for t in turns)
    assert turns[0].confidence == pytest.approx(0.8)
    assert [w.text for w in turns[0].words] == ["Hello,", "my", "card."]
    for t in turns:
        assert words_in_text(t.text, [w.text for w in t.words])


def test_segment_turns_chinese_words_are_simplified_and_found_in_the_text() -> None:
    chunk = Chunk("agent", (Piece(0, 0, 3 * SR),))
    words = [RawWord("您好", 0.0, 0.4, 0.9), RawWord("歡迎", 0.4, 0.8, 0.9), RawWord("致電", 0.8, 1.2, 0.9)]
    (turn,) = segment_turns(chunk, "您好歡迎致電", words, lang="zh", normalizer=normalize_for_display, max_gap_ms=800)
    assert turn.text == "您好欢迎致电" and turn.lang == "zh"
    assert [w.text for w in turn.words] == ["您好", "欢迎", "致电"]


def test_segment_turns_rebuilds_text_when_the_normaliser_drops_words() -> None:
    chunk = Chunk("agent", (Piece(0, 0, 3 * SR),))
    words = [RawWord(" no", 0.0, 0.2), RawWord(" risk", 0.2, 0.4)]

    def drop_risk(text: str, lang: Literal["zh", "en"]) -> str:
        return text.replace("risk", "").strip()

    (turn,) = segment_turns(chunk, " no risk", words, lang="en", normalizer=drop_risk, max_gap_ms=800)
    assert turn.text == "no" and [w.text for w in turn.words] == ["no"]

    def first_word(text: str, lang: Literal["zh", "en"]) -> str:
        return text.split()[0] if text.split() else ""

    (kept,) = segment_turns(chunk, " no risk", words, lang="en", normalizer=first_word, max_gap_ms=800)
    assert kept.text == "no risk"  # the text lost a word the words kept: rebuilt from the words


def test_segment_turns_without_words_spans_the_chunk() -> None:
    chunk = _two_pieces()
    (turn,) = segment_turns(chunk, " Hi.", [], lang="en", normalizer=_keep, max_gap_ms=800, confidence=0.5)
    assert (turn.start_ms, turn.end_ms, turn.text, turn.words, turn.confidence) == (1000, 6000, "Hi.", (), 0.5)
    assert segment_turns(chunk, "  ", [], lang="en", normalizer=_keep, max_gap_ms=800) == []


def test_words_in_text() -> None:
    assert words_in_text("thank you for calling", ["thank", "for", "calling"])
    assert not words_in_text("thank you for calling", ["for", "thank"])
    assert not words_in_text("aa", ["a", "a", "a"])


# ------------------------------------------------------------------------------------------ language


def test_choose_language() -> None:
    assert choose_language([("zh", 0.3), ("yue", 0.3), ("en", 0.4)]) == "zh"
    assert choose_language([("en", 0.2), ("ja", 0.7), ("zh", 0.1)]) == "en"
    assert choose_language([("ja", 1.0)]) == "en"
    assert choose_language([]) == "en"


# ------------------------------------------------------------------------------------------ transcriber


def _never() -> Path:
    raise AssertionError("the model must not load")


def test_transcriber_checks_settings_and_audio() -> None:
    with pytest.raises(InvalidInputError):
        CallTranscriber(_never, beam_size=0)
    tr = CallTranscriber(_never, threads=2, batch_size=8)
    assert (tr.passes, tr.threads_per_pass, tr.batch_size) == (2, 1, 1)
    assert CallTranscriber(_never, threads=8, passes=2, batch_size=8).batch_size == 2
    with pytest.raises(AudioFormatError):
        tr.transcribe_channels({})
    with pytest.raises(AudioFormatError):
        tr.transcribe_channels({"agent": np.zeros(100, dtype=np.float32)})
    with pytest.raises(InvalidInputError):
        tr.transcribe_diarized(np.zeros(100, dtype=np.int16), [SpeakerTurn("spk0", 0, 5)], {})


def test_transcriber_without_speech_loads_no_model() -> None:
    tr = CallTranscriber(_never)
    tiny = np.zeros(80, dtype=np.int16)  # 5 ms: too short for voice activity detection
    out = tr.transcribe_channels({"customer": tiny, "agent": tiny}, lang="zh")
    assert out == CallTranscript((), 5, "zh", "stereo")
    assert tr.transcribe_diarized(tiny, [], {}).source == "diarized"


def test_scripted_transcriber_returns_its_transcript() -> None:
    script = CallTranscript((Turn("agent", "hello", 0, 500),), 1000, "en", "stereo")
    fake = ScriptedTranscriber(script)
    pcm = np.zeros(SR, dtype=np.int16)
    assert fake.transcribe_channels({"agent": pcm, "customer": pcm}, lang="en") is script
    assert fake.transcribe_diarized(pcm, [SpeakerTurn("spk0", 0, 500)], {"spk0": "agent"}) is script
    assert fake.calls == [("channels", SR, "en"), ("diarized", SR, "auto")]
