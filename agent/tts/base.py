"""What a speech synthesizer is: text in, mono 16-bit PCM out, whole or sentence by sentence.

Synthesizers are synchronous and CPU-bound (Piper: an ONNX model, roughly 0.07 × real time on one core): call
them from a worker thread or process, never on an event loop. :func:`astream_sentences` does that for async code,
one sentence per ``asyncio.to_thread`` hop, so the first sentence can be played while the next is synthesized.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from typing import Protocol

from core.audio import AudioClip

__all__ = ["SpeechSynthesizer", "astream_sentences", "split_lead_clause", "split_sentences"]

# A boundary after CJK terminators (always), after ASCII ones only before whitespace (so "3.5%", "www.bank.com"
# and "e.g." inside a sentence stay whole), and at every newline. Runs of terminators ("?!", "……") stay together.
_BOUNDARY = re.compile(r"(?<=[。！？])(?![。！？」』”）)])|(?<=[.!?])(?=\s)|(?<=[.!?][\"'”’)])(?=\s)|\n")
_WORD = re.compile(r"\w")


_CLAUSE = re.compile(r"(?<=[,;:，；：、])\s*")


def split_lead_clause(text: str, *, longer_than: int = 60, min_chars: int = 12) -> list[str]:
    """``text`` with its first sentence cut after its first clause (``,;:`` or ``，；：、``) when that sentence is
    longer than ``longer_than`` characters and the clause has at least ``min_chars``; otherwise ``[text]``.

    Speech of a text made on the fly starts once its first piece is synthesised; a short first piece lets the
    caller hear the answer sooner (Piper's time grows with the length of what it renders). Pure function."""
    sentences = split_sentences(text)
    if not sentences or len(sentences[0]) <= longer_than:
        return [text] if sentences else []
    first = sentences[0]
    for match in _CLAUSE.finditer(first):
        if min_chars <= match.start() < len(first) - min_chars:
            return [first[: match.start()].rstrip(), first[match.end() :], *sentences[1:]]
    return sentences


def split_sentences(text: str) -> list[str]:
    """Split ``text`` into sentences, in order, each with its terminator.

    Boundaries: after ``。！？`` (a closing quote or bracket stays with its sentence), after ``.!?`` followed by
    whitespace or the end, and at newlines. Pieces are stripped; pieces with no letter or digit (``"..."``) are
    dropped. Pure function, any thread.
    """
    pieces = (piece.strip() for piece in _BOUNDARY.split(text))
    return [piece for piece in pieces if _WORD.search(piece)]


class SpeechSynthesizer(Protocol):
    """Turns text into speech: mono int16 :class:`AudioClip` at :attr:`sample_rate_hz`.

    Implementations are blocking and CPU-bound; one instance may be used from several threads at once unless it
    says otherwise.
    """

    @property
    def sample_rate_hz(self) -> int:
        """Rate of every clip this synthesizer returns (Hz), e.g. 22,050 for Piper's medium voices."""
        ...

    def synthesize(self, text: str) -> AudioClip:
        """All of ``text`` as one mono clip (the sentences back to back); an empty clip when there is nothing
        to say. Blocking; run it off the event loop."""
        ...

    def synthesize_sentences(self, text: str) -> Iterator[AudioClip]:
        """One mono clip per sentence of :func:`split_sentences` (same order and count), each synthesized only
        when the iterator is advanced. Blocking on each step; run it off the event loop."""
        ...


async def astream_sentences(synthesizer: SpeechSynthesizer, text: str) -> AsyncIterator[AudioClip]:
    """Async, sentence-by-sentence :meth:`SpeechSynthesizer.synthesize_sentences`: each sentence is synthesized
    in a worker thread (``asyncio.to_thread``), so the event loop never blocks on inference."""
    sentences = synthesizer.synthesize_sentences(text)
    while (clip := await asyncio.to_thread(next, sentences, None)) is not None:
        yield clip
