"""RTTM reference files and the diarization error rate (DER) of a hypothesis against them.

RTTM lines look like ``SPEAKER <file> <chan> <start_s> <dur_s> <NA> <NA> <speaker> <NA> <NA>``; only
``SPEAKER`` lines count, blank lines and ``#`` comments are skipped. DER comes from ``pyannote.metrics`` (imported
on use). Called from the CLI thread of ``voxdesk eval diarization`` and from tests.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import InvalidInputError
from qa.models import SpeakerTurn

__all__ = ["RttmSegment", "der_report", "parse_rttm", "read_rttm", "turns_to_rttm"]


@dataclass(frozen=True)
class RttmSegment:
    """One reference turn: ``speaker`` talks from ``start_s`` for ``duration_s`` seconds."""

    speaker: str
    start_s: float
    duration_s: float

    @property
    def end_s(self) -> float:
        return self.start_s + self.duration_s


def parse_rttm(text: str) -> list[RttmSegment]:
    """The ``SPEAKER`` segments of RTTM ``text``; raises :class:`InvalidInputError` naming the first bad line
    (1-based ``line`` detail and in the message)."""
    out: list[RttmSegment] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        if fields[0] != "SPEAKER":
            continue
        if len(fields) < 8:
            raise InvalidInputError(f"RTTM line {number}: needs at least 8 fields", line=number)
        try:
            start, duration = float(fields[3]), float(fields[4])
        except ValueError as exc:
            raise InvalidInputError(f"RTTM line {number}: start and duration must be numbers", line=number) from exc
        if not (math.isfinite(start) and math.isfinite(duration)) or start < 0 or duration < 0:
            raise InvalidInputError(f"RTTM line {number}: start and duration must be >= 0", line=number)
        out.append(RttmSegment(fields[7], start, duration))
    return out


def read_rttm(path: Path) -> list[RttmSegment]:
    """:func:`parse_rttm` of a file; a missing or unreadable file raises :class:`InvalidInputError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError("RTTM file cannot be read", path=str(path)) from exc
    segments = parse_rttm(text)
    if not segments:
        raise InvalidInputError("RTTM file has no SPEAKER lines", path=str(path))
    return segments


def turns_to_rttm(turns: tuple[SpeakerTurn, ...] | list[SpeakerTurn], file_id: str = "audio") -> str:
    """Diarization turns (ms) as RTTM text."""
    return "".join(
        f"SPEAKER {file_id} 1 {t.start_ms / 1000:.3f} {(t.end_ms - t.start_ms) / 1000:.3f} <NA> <NA> {t.speaker} "
        "<NA> <NA>\n"
        for t in turns
    )


def der_report(
    reference: list[RttmSegment], hypothesis: tuple[SpeakerTurn, ...] | list[SpeakerTurn], *, collar: float = 0.0
) -> dict[str, float]:
    """DER (pyannote.metrics, ``skip_overlap=False``) with its parts as fractions of the reference speech:
    ``der``, ``miss``, ``false_alarm``, ``confusion``, and ``total_s`` (reference speech, seconds)."""
    from pyannote.core import Annotation, Segment  # type: ignore[import-untyped]
    from pyannote.metrics.diarization import DiarizationErrorRate

    ref = Annotation()
    for i, r in enumerate(reference):
        if r.duration_s > 0:
            ref[Segment(r.start_s, r.end_s), i] = r.speaker
    hyp = Annotation()
    for i, t in enumerate(hypothesis):
        if t.end_ms > t.start_ms:
            hyp[Segment(t.start_ms / 1000, t.end_ms / 1000), i] = t.speaker
    detail: dict[str, Any] = DiarizationErrorRate(collar=collar, skip_overlap=False)(ref, hyp, detailed=True)
    total = float(detail["total"]) or 1.0
    return {
        "der": float(detail["diarization error rate"]),
        "miss": float(detail["missed detection"]) / total,
        "false_alarm": float(detail["false alarm"]) / total,
        "confusion": float(detail["confusion"]) / total,
        "total_s": float(detail["total"]),
    }
