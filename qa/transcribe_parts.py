"""Pure parts of call transcription (:mod:`qa.transcribe`): packing speech into decoder chunks, mapping times
back to the recording, splitting segments into turns, choosing the call's language.

A *region* is a stretch of one party's speech as ``(start, end)`` samples at 16 kHz in the recording (end
exclusive). Regions are packed, silence removed, into *chunks* of at most ``max_samples``; a :class:`Chunk`
remembers where each of its :class:`Piece` s came from, so that times the recogniser gives inside a chunk
(seconds from the chunk's start) map back to milliseconds from the start of the recording. Everything here is
pure and thread-safe.
"""

from __future__ import annotations

import bisect
import math
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from asr.base import SAMPLE_RATE_HZ
from qa.models import Channel, Turn, Word

__all__ = [
    "Chunk",
    "Piece",
    "RawWord",
    "Region",
    "choose_language",
    "compression_ratio",
    "drop_echoes",
    "intersect_regions",
    "pack_regions",
    "repeat_key",
    "segment_turns",
    "split_at_gaps",
    "words_in_text",
]

Region = tuple[int, int]
"""``(start, end)`` in samples at 16 kHz from the start of the recording, end exclusive."""


@dataclass(frozen=True)
class Piece:
    """Recording samples ``[source_start, source_start + length)`` copied to chunk samples
    ``[chunk_start, chunk_start + length)``."""

    source_start: int
    chunk_start: int
    length: int

    @property
    def chunk_end(self) -> int:
        return self.chunk_start + self.length


@dataclass(frozen=True)
class Chunk:
    """Speech of one party, silence removed, decoded as one recogniser input (at most ~15 s)."""

    channel: Channel
    pieces: tuple[Piece, ...]

    @property
    def samples(self) -> int:
        """Length of the chunk's audio (samples at 16 kHz)."""
        return self.pieces[-1].chunk_end if self.pieces else 0

    @property
    def regions(self) -> tuple[Region, ...]:
        """The recording regions the chunk is made of, in order."""
        return tuple((p.source_start, p.source_start + p.length) for p in self.pieces)

    def _piece_at(self, sample: int, *, is_end: bool) -> int:
        """The piece an instant belongs to: for a start, the first piece that ends after it (an instant in the
        silence between two pieces starts the later one); for an end, the last piece that starts before it."""
        if is_end:
            index = bisect.bisect_left([p.chunk_start for p in self.pieces], sample) - 1
        else:
            index = bisect.bisect_right([p.chunk_end for p in self.pieces], sample)
        return min(max(index, 0), len(self.pieces) - 1)

    @staticmethod
    def _ms(piece: Piece, sample: int) -> int:
        inside = min(max(sample - piece.chunk_start, 0), piece.length)
        return (piece.source_start + inside) * 1000 // SAMPLE_RATE_HZ

    def recording_ms(self, chunk_s: float, *, is_end: bool = False) -> int:
        """Milliseconds from the start of the recording of the instant ``chunk_s`` seconds into the chunk. A time
        exactly on the join of two pieces belongs to the earlier piece when ``is_end`` (the end of a word), to the
        later one otherwise; times outside the chunk are clamped to its first or last sample."""
        sample = round(chunk_s * SAMPLE_RATE_HZ)
        return self._ms(self.pieces[self._piece_at(sample, is_end=is_end)], sample)

    def map_span(self, start_s: float, end_s: float) -> tuple[int, int]:
        """A word's ``(start_ms, end_ms)`` in the recording. A span that crosses a join (the removed silence) is
        kept within the piece holding most of it, so no word stretches over a silence that was cut out; a span
        wholly inside the silence between two pieces becomes an instant at the start of the later piece."""
        a, b = round(start_s * SAMPLE_RATE_HZ), round(max(end_s, start_s) * SAMPLE_RATE_HZ)
        first, last = self._piece_at(a, is_end=False), self._piece_at(b, is_end=True)
        if first > last:
            a = b = self.pieces[first].chunk_start
            last = first
        elif first < last:
            p, q = self.pieces[first], self.pieces[last]
            if p.chunk_end - a >= b - q.chunk_start:
                b, last = p.chunk_end, first
            else:
                a, first = q.chunk_start, last
        return self._ms(self.pieces[first], a), self._ms(self.pieces[last], b)

    def covered(self, turns: Iterable[Turn]) -> list[bool]:
        """For each piece, whether a word of ``turns`` (in recording time) lies in it: a piece without one was
        skipped by the recogniser (or held no speech)."""
        spans = [(w.start_ms, w.end_ms) for t in turns for w in t.words]
        out = []
        for p in self.pieces:
            lo = p.source_start * 1000 // SAMPLE_RATE_HZ
            hi = (p.source_start + p.length) * 1000 // SAMPLE_RATE_HZ
            out.append(any(s < hi and e >= lo for s, e in spans))
        return out

    def piece_chunk(self, index: int) -> Chunk:
        """A chunk of one piece alone (to decode again a piece that was skipped)."""
        p = self.pieces[index]
        return Chunk(self.channel, (Piece(p.source_start, 0, p.length),))


def _split_long(region: Region, max_samples: int) -> list[Region]:
    start, end = region
    parts = max(1, math.ceil((end - start) / max_samples))
    step = math.ceil((end - start) / parts)
    return [(s, min(end, s + step)) for s in range(start, end, step)]


def pack_regions(regions: Iterable[Region], channel: Channel, *, max_samples: int, gap_samples: int = 0) -> list[Chunk]:
    """Pack one party's speech regions, in time order, into chunks of at most ``max_samples`` of speech, with
    ``gap_samples`` of silence between two pieces (a clear boundary for the recogniser's word alignment).

    The number of chunks is the fewest that can hold the speech (a region longer than ``max_samples`` is cut
    into equal parts first), and they are filled to about equal length, so that no tiny last chunk costs a whole
    encoder pass. Empty regions are dropped; overlapping regions are merged.
    """
    if max_samples <= 0:
        raise ValueError("max_samples must be positive")
    merged: list[Region] = []
    for start, end in sorted(r for r in regions if r[1] > r[0]):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    parts = [p for r in merged for p in _split_long(r, max_samples)]
    total = sum(e - s for s, e in parts)
    if not total:
        return []
    target = total / math.ceil(total / max_samples)
    chunks: list[Chunk] = []
    current: list[Piece] = []
    filled = 0
    for start, end in parts:
        n = end - start
        if current and (filled + n > max_samples or filled >= target):
            chunks.append(Chunk(channel, tuple(current)))
            current, filled = [], 0
        current.append(Piece(start, filled + gap_samples * len(current), n))
        filled += n
    if current:
        chunks.append(Chunk(channel, tuple(current)))
    return chunks


def intersect_regions(a: Sequence[Region], b: Sequence[Region]) -> list[Region]:
    """The parts of regions ``a`` that lie inside regions ``b`` (e.g. detected speech within one speaker's
    diarized turns), in time order."""
    out: list[Region] = []
    ordered = sorted(b)
    for start, end in sorted(a):
        for s, e in ordered:
            if s >= end:
                break
            lo, hi = max(start, s), min(end, e)
            if hi > lo:
                out.append((lo, hi))
    merged: list[Region] = []
    for r in out:
        if merged and r[0] <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], r[1]))
        else:
            merged.append(r)
    return merged


def choose_language(probs: Iterable[tuple[str, float]]) -> Literal["zh", "en"]:
    """``zh`` or ``en`` from Whisper's language probabilities: Chinese (``zh`` plus Cantonese ``yue``) against
    English; other languages are ignored and a tie (or nothing of either) gives ``en``."""
    totals = {"zh": 0.0, "en": 0.0}
    for code, p in probs:
        key = "zh" if code in ("zh", "yue") else code
        if key in totals:
            totals[key] += p
    return "zh" if totals["zh"] > totals["en"] else "en"


def compression_ratio(text: str) -> float:
    """UTF-8 length over zlib-compressed length, as Whisper measures a decoding loop (above 2.4: a loop)."""
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data)) if data else 0.0


@dataclass(frozen=True)
class RawWord:
    """A word as the recogniser gives it: raw text (English words carry their leading space) and times in
    seconds from the start of the chunk."""

    text: str
    start_s: float
    end_s: float
    probability: float | None = None


def split_at_gaps(words: Sequence[Word], max_gap_ms: int) -> list[list[Word]]:
    """Runs of words (in order) where no pause between one word's end and the next one's start is longer than
    ``max_gap_ms``."""
    groups: list[list[Word]] = []
    for word in words:
        if groups and word.start_ms - groups[-1][-1].end_ms <= max_gap_ms:
            groups[-1].append(word)
        else:
            groups.append([word])
    return groups


def words_in_text(text: str, words: Sequence[str]) -> bool:
    """Whether each of ``words`` occurs in ``text``, in order and without overlapping (how the QA rules locate a
    phrase's time: by finding its words' texts in the turn's text)."""
    at = 0
    for word in words:
        found = text.find(word, at)
        if found < 0:
            return False
        at = found + len(word)
    return True


def _confidence(words: Sequence[Word], fallback: float | None) -> float | None:
    probs = [w.probability for w in words if w.probability is not None]
    return sum(probs) / len(probs) if probs else fallback


def segment_turns(
    chunk: Chunk,
    text: str,
    words: Sequence[RawWord],
    *,
    lang: Literal["zh", "en"],
    normalizer: Callable[[str, Literal["zh", "en"]], str],
    max_gap_ms: int,
    confidence: float | None = None,
) -> list[Turn]:
    """The turns of one recogniser segment of ``chunk``: its words mapped to recording time and split where a
    pause is longer than ``max_gap_ms``. Without word times the whole segment is one turn over the chunk's
    speech. Turns whose normalised text is empty are dropped."""
    if not words:
        display = normalizer(text, lang)
        if not display:
            return []
        start, end = chunk.recording_ms(0.0), chunk.recording_ms(chunk.samples / SAMPLE_RATE_HZ, is_end=True)
        return [Turn(chunk.channel, display, start, end, lang, (), confidence)]
    mapped: list[Word] = []
    for w in words:
        start, end = chunk.map_span(w.start_s, w.end_s)
        mapped.append(Word(normalizer(w.text.strip(), lang), start, max(start, end), w.probability))
    turns: list[Turn] = []
    at = 0
    for group in split_at_gaps(mapped, max_gap_ms):
        raw = "".join(w.text for w in words[at : at + len(group)])  # groups are consecutive runs of the words
        at += len(group)
        kept = tuple(w for w in group if w.text)
        if not kept:
            continue
        display = normalizer(raw, lang)
        if not words_in_text(display, [w.text for w in kept]):  # e.g. a loop collapsed in the text only
            display = ("" if lang == "zh" else " ").join(w.text for w in kept)
        start, end = kept[0].start_ms, max(w.end_ms for w in kept)
        turns.append(Turn(chunk.channel, display, start, end, lang, kept, _confidence(kept, confidence)))
    return turns


def repeat_key(text: str) -> str:
    """A text for spotting repeats: case, spaces and punctuation ignored."""
    return "".join(ch for ch in text.casefold() if ch.isalnum())


def drop_echoes(turns: Sequence[Turn], *, max_ms: int = 200, window_ms: int = 15_000) -> list[Turn]:
    """``turns`` (ordered by start) without decoder echoes: a turn shorter than ``max_ms`` that repeats the text
    of a turn of the same party which ended less than ``window_ms`` before it. Whisper sometimes emits the last
    sentence of a chunk again, squeezed into an instant at its end; nobody says a whole sentence in 0.2 s."""
    kept: list[Turn] = []
    for turn in turns:
        key = repeat_key(turn.text)
        echo = turn.duration_ms < max_ms and any(
            k.channel == turn.channel and repeat_key(k.text) == key and turn.start_ms - k.end_ms < window_ms
            for k in kept[-20:]
        )
        if not echo:
            kept.append(turn)
    return kept
