"""Figures of ``voxdesk bench calls`` from what the processes measured: pure functions over plain data.

Inputs, all gathered by :mod:`voxdesk.benches.calls`:

* the media workers' statistics files (:func:`voxdesk.media_main.write_stats`): per streamed leg of every call,
  the gaps between consecutive 20 ms frames at the pjsua2 media-port callback (p50/p99/max, ms), frames missing
  against the leg's duration, chunks dropped because a speech worker's queue was full, and the wall-clock time
  of the leg's first frame; per call leg, pjmedia's RTP receive counters (packets lost on the wire, frames the
  jitter buffer had to conceal);
* the speech workers' counters (:class:`asr.worker.SpeechWorkerStats`);
* every bus event with the wall-clock time (epoch ms) at which the benchmark received it;
* the program each caller played (:class:`voxdesk.benches.call_audio.CallProgram`, by caller number), to score
  the transcripts.

Final-transcript latency is measured from the moment the end of speech reached the media worker (the leg's first
frame time plus the utterance's ``end_ms`` in stream time) to the moment the ``FinalTranscript`` arrived on the
bus; so it includes the endpointer's silence hangover (``asr.endpoint_silence_ms``), queueing and decoding, but not
the jitter buffer delay before the media port (reported separately as ``jbuf_delay_ms_mean``).

Lost frames = frames missing at the media port + chunks dropped before a speech worker + RTP packets lost on the
wire. A run **holds** when every call was answered and completed, no frame was lost, the worst call's p99 frame
gap is under 40 ms and the final-transcript latency p95 is under 1.5 s.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from asr.metrics import ErrorCounts, error_counts
from core.events import CallEnded, CallStarted, Event, FinalTranscript
from voxdesk.benches.call_audio import CallProgram

__all__ = ["HOLD_FINAL_P95_MS", "HOLD_GAP_P99_MS", "CallRow", "analyse", "holds"]

HOLD_GAP_P99_MS = 40.0
HOLD_FINAL_P95_MS = 1500.0


@dataclass
class CallRow:
    """One benchmark call, as measured."""

    call_id: str
    lang: str
    ended: bool = False
    sip_code: int | None = None
    frames: int = 0
    gap_p99_ms: float = 0.0
    gap_max_ms: float = 0.0
    missing_frames: int = 0
    dropped_chunks: int = 0
    rtp_lost: int = 0
    jbuf_lost: int = 0
    jbuf_delay_ms: float = 0.0
    finals: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    counts: ErrorCounts = field(default_factory=ErrorCounts)

    @property
    def lost_frames(self) -> int:
        return self.missing_frames + self.dropped_chunks + self.rtp_lost


def _pct(values: Sequence[float], q: float) -> float | None:
    return round(float(np.percentile(np.asarray(values, dtype=np.float64), q)), 1) if values else None


def _rows(events: Sequence[tuple[float, Event]], programs: Mapping[str, CallProgram]) -> dict[str, CallRow]:
    rows: dict[str, CallRow] = {}
    said: dict[str, CallProgram] = {}
    for _, event in events:
        if isinstance(event, CallStarted) and event.caller is not None and event.caller in programs:
            said[event.call_id] = programs[event.caller]
            rows[event.call_id] = CallRow(event.call_id, programs[event.caller].lang)
        elif isinstance(event, CallEnded) and event.call_id in rows:
            rows[event.call_id].ended = True
            rows[event.call_id].sip_code = event.sip_code
    texts: dict[str, list[str]] = {call_id: [] for call_id in rows}
    for _, event in events:
        if isinstance(event, FinalTranscript) and event.call_id in rows and event.leg == "customer":
            rows[event.call_id].finals += 1
            if event.text:
                texts[event.call_id].append(event.text)
    for call_id, row in rows.items():
        program = said[call_id]
        row.counts = error_counts(program.reference, " ".join(texts[call_id]), program.lang)
    return rows


def _apply_media(rows: dict[str, CallRow], media: Sequence[Mapping[str, Any]]) -> dict[tuple[str, str], Any]:
    """Fold the media workers' per-leg statistics into ``rows``; returns the leg timings by (call_id, leg)."""
    timings: dict[tuple[str, str], Any] = {}
    for worker in media:
        for leg in worker.get("calls", []):
            timings[(leg["call_id"], leg["leg"])] = leg
            row = rows.get(leg["call_id"])
            if row is None or leg["leg"] != "customer":
                continue
            row.frames = int(leg.get("frames", 0))
            row.gap_p99_ms = float(leg.get("gap_p99_ms", 0.0))
            row.gap_max_ms = float(leg.get("gap_max_ms", 0.0))
            row.missing_frames = int(leg.get("missing_frames", 0))
            row.dropped_chunks = int(leg.get("dropped_chunks", 0))
        for rtp in worker.get("rtp", []):
            row = rows.get(rtp["call_id"])
            if row is not None and rtp["leg"] == "customer":
                row.rtp_lost += int(rtp.get("rx_lost", 0))
                row.jbuf_lost += int(rtp.get("jbuf_lost", 0))
                row.jbuf_delay_ms = float(rtp.get("jbuf_delay_ms_mean", 0.0))
    return timings


def _apply_latencies(
    rows: dict[str, CallRow], events: Sequence[tuple[float, Event]], timings: Mapping[tuple[str, str], Any]
) -> None:
    for received_ms, event in events:
        if not isinstance(event, FinalTranscript) or event.call_id not in rows:
            continue
        timing = timings.get((event.call_id, event.leg))
        if timing is None or "first_frame_wall_ms" not in timing:
            continue
        end_of_speech = float(timing["first_frame_wall_ms"]) + event.end_ms - int(timing.get("offset_ms", 0))
        rows[event.call_id].latencies_ms.append(received_ms - end_of_speech)


def _rate(counts: Sequence[ErrorCounts]) -> float | None:
    total = sum(counts, ErrorCounts())
    return round(total.rate, 4) if total.ref_len else None


def analyse(
    *,
    concurrent: int,
    seconds: float,
    events: Sequence[tuple[float, Event]],
    media: Sequence[Mapping[str, Any]],
    speech: Sequence[Mapping[str, Any]],
    programs: Mapping[str, CallProgram],
    cpu: Mapping[str, float],
    callers_ok: bool,
) -> tuple[list[CallRow], dict[str, Any]]:
    """Per-call rows and the summary object (the ``--json`` keys) of one run with ``concurrent`` calls;
    ``programs`` maps each benchmark caller's number (``CallStarted.caller``) to what it said."""
    rows = _rows(events, programs)
    timings = _apply_media(rows, media)
    _apply_latencies(rows, events, timings)
    ordered = sorted(rows.values(), key=lambda r: r.call_id)
    latencies = [lat for r in ordered for lat in r.latencies_ms]
    summary: dict[str, Any] = {
        "concurrent": concurrent,
        "seconds": seconds,
        "calls_seen": len(ordered),
        "calls_completed": sum(1 for r in ordered if r.ended and r.frames > 0),
        "callers_ok": callers_ok,
        "lost_frames": sum(r.lost_frames for r in ordered),
        "missing_frames": sum(r.missing_frames for r in ordered),
        "dropped_chunks": sum(r.dropped_chunks for r in ordered),
        "rtp_lost_packets": sum(r.rtp_lost for r in ordered),
        "jbuf_concealed_frames": sum(r.jbuf_lost for r in ordered),
        "frame_gap_p99_ms": max((r.gap_p99_ms for r in ordered), default=None),
        "frame_gap_max_ms": max((r.gap_max_ms for r in ordered), default=None),
        "jbuf_delay_ms_mean": _pct([r.jbuf_delay_ms for r in ordered], 50),
        "finals": len(latencies),
        "final_latency_p50_ms": _pct(latencies, 50),
        "final_latency_p95_ms": _pct(latencies, 95),
        "final_latency_max_ms": round(max(latencies), 1) if latencies else None,
        "wer_en": _rate([r.counts for r in ordered if r.lang == "en"]),
        "cer_zh": _rate([r.counts for r in ordered if r.lang == "zh"]),
        "partials": sum(int(s.get("partials", 0)) for s in speech),
        "partials_skipped": sum(int(s.get("partials_skipped", 0)) for s in speech),
        "speech_max_lag_ms": max((int(s.get("max_lag_ms", 0)) for s in speech), default=None),
        "speech_errors": sum(int(s.get("errors", 0)) for s in speech),
        **_timings(speech),
        **{key: round(value, 1) for key, value in cpu.items()},
    }
    summary["holds"] = holds(summary)
    return ordered, summary


def _timings(speech: Sequence[Mapping[str, Any]]) -> dict[str, float | None]:
    """p50/p95 (ms) of the speech workers' per-pass timings: waiting finals, final and partial decodes."""
    out: dict[str, float | None] = {}
    for name in ("final_wait_ms", "final_decode_ms", "partial_decode_ms"):
        values = [float(v) for s in speech for v in s.get(name, [])]
        stem = name.removesuffix("_ms")
        out[f"{stem}_p50_ms"], out[f"{stem}_p95_ms"] = _pct(values, 50), _pct(values, 95)
    return out


def holds(summary: Mapping[str, Any]) -> bool:
    """Whether a run meets the targets (see the module docstring)."""
    gap, p95 = summary.get("frame_gap_p99_ms"), summary.get("final_latency_p95_ms")
    return bool(
        summary.get("callers_ok")
        and summary.get("calls_completed") == summary.get("concurrent")
        and summary.get("lost_frames") == 0
        and gap is not None
        and gap < HOLD_GAP_P99_MS
        and p95 is not None
        and p95 < HOLD_FINAL_P95_MS
    )
