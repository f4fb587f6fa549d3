"""A :class:`~qa.models.CallTranscript` as JSON and back, losslessly (times in ms, word probabilities kept).

Used to cache transcripts between runs of the rules evaluation, so that a change to the rules is re-scored in
seconds without running Whisper again.
"""

from __future__ import annotations

from typing import Any

from core.errors import InvalidInputError
from qa.models import CallTranscript, Turn, Word

__all__ = ["transcript_from_json", "transcript_to_json"]


def transcript_to_json(transcript: CallTranscript) -> dict[str, Any]:
    """A JSON-ready dict of ``transcript``."""
    return {
        "duration_ms": transcript.duration_ms,
        "lang": transcript.lang,
        "source": transcript.source,
        "turns": [
            {
                "channel": t.channel,
                "text": t.text,
                "start_ms": t.start_ms,
                "end_ms": t.end_ms,
                "lang": t.lang,
                "confidence": t.confidence,
                "words": [[w.text, w.start_ms, w.end_ms, w.probability] for w in t.words],
            }
            for t in transcript.turns
        ],
    }


def transcript_from_json(data: Any) -> CallTranscript:
    """The transcript of :func:`transcript_to_json`; raises :class:`InvalidInputError` for anything else."""
    try:
        turns = tuple(
            Turn(
                _one_of(t["channel"], ("agent", "customer")),
                str(t["text"]),
                int(t["start_ms"]),
                int(t["end_ms"]),
                _one_of(t["lang"], ("zh", "en")),
                tuple(Word(str(w), int(a), int(b), None if p is None else float(p)) for w, a, b, p in t["words"]),
                None if t["confidence"] is None else float(t["confidence"]),
            )
            for t in data["turns"]
        )
        return CallTranscript(
            turns,
            int(data["duration_ms"]),
            _one_of(data["lang"], ("zh", "en")),
            _one_of(data["source"], ("stereo", "diarized", "mono")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"not a saved call transcript: {exc}") from exc


def _one_of(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError(f"{value!r} is not one of {allowed}")
    return value
