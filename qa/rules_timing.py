"""Rules on how the call went in time: long silences, overlong calls, talk-over and the agent's speech rate.

Speech is located by word timestamps where the recogniser gave them (a turn's own start/end otherwise). Pure; any
thread; linear in the number of words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from asr.normalize import cjk_chars
from qa.models import Channel, Finding, Turn
from qa.rules_base import RuleContext, evidence

__all__ = ["overlong_rule", "silence_rule", "speech_intervals", "speech_rate_rule", "talk_over_rule"]

_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z]+)?")
_JOIN_GAP_MS = 300
"""Word gaps shorter than this (ms) count as continuous speech."""


def speech_intervals(turns: Iterable[Turn], *, join_gap_ms: int = _JOIN_GAP_MS) -> list[tuple[int, int]]:
    """Merged intervals (ms) during which the given turns speak."""
    raw: list[tuple[int, int]] = []
    for turn in turns:
        words = [w for w in turn.words if w.end_ms > w.start_ms]
        if words:
            raw.extend((w.start_ms, w.end_ms) for w in words)
        elif turn.end_ms > turn.start_ms:
            raw.append((turn.start_ms, turn.end_ms))
    raw.sort()
    merged: list[tuple[int, int]] = []
    for s, e in raw:
        if merged and s <= merged[-1][1] + join_gap_ms:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def silence_rule(ctx: RuleContext) -> list[Finding]:
    """Dead air: nobody speaks for longer than the threshold of the party who breaks the silence (the agent
    keeping the customer waiting, or the customer not answering). Silence before the first word counts (an
    unanswered greeting); silence after the last word does not."""
    cfg = ctx.config.silence
    spans: list[tuple[int, int, Channel]] = []
    for channel in ("agent", "customer"):
        spans.extend((s, e, channel) for s, e in speech_intervals(ctx.transcript.of(channel)))
    spans.sort()
    out: list[Finding] = []
    covered_to = 0
    for start, end, channel in spans:
        gap = start - covered_to
        limit_s = cfg.agent_max_s if channel == "agent" else cfg.customer_max_s
        if gap > limit_s * 1000:
            who = "agent" if channel == "agent" else "customer"
            out.append(
                Finding(
                    "long_silence",
                    cfg.severity,
                    f"{gap / 1000:.1f} s of silence before the {who} spoke",
                    covered_to,
                    start,
                    channel,
                    f"{gap / 1000:.1f}",
                )
            )
        covered_to = max(covered_to, end)
    return out


def overlong_rule(ctx: RuleContext) -> list[Finding]:
    """The whole call lasted longer than the limit."""
    cfg = ctx.config.overlong
    duration = ctx.transcript.duration_ms
    if duration <= cfg.max_s * 1000:
        return []
    text = f"call lasted {duration / 1000:.0f} s (limit {cfg.max_s:g} s)"
    return [Finding("overlong_call", cfg.severity, text, 0, duration, None, f"{duration / 1000:.1f}")]


def _active(intervals: Sequence[tuple[int, int]], at: int) -> tuple[int, int] | None:
    for s, e in intervals:
        if s < at < e:
            return s, e
        if s >= at:
            break
    return None


def _simultaneous_ms(a: Sequence[tuple[int, int]], b: Sequence[tuple[int, int]], start: int, end: int) -> int:
    """Milliseconds within ``[start, end)`` during which an interval of ``a`` and one of ``b`` both run."""
    total = 0
    for sa, ea in a:
        if ea <= start or sa >= end:
            continue
        for sb, eb in b:
            lo, hi = max(sa, sb, start), min(ea, eb, end)
            if hi > lo:
                total += hi - lo
    return total


def talk_over_rule(ctx: RuleContext) -> list[Finding]:
    """The agent starts speaking while the customer is speaking, and the two talk at the same time for at least
    ``min_overlap_s`` before either stops. A party's speech is one stretch across pauses under ``max_pause_s``
    ("okay, okay, listen to me" is one interruption); the overlap counts only the time both are really talking
    (word times), so backchannels ("mm", "right") between the customer's words stay below it. At most one
    finding per stretch of customer speech."""
    cfg = ctx.config.talk_over
    join_ms = round(cfg.max_pause_s * 1000)
    customer_turns, agent_turns = ctx.transcript.of("customer"), ctx.transcript.of("agent")
    customer_words, agent_words = speech_intervals(customer_turns), speech_intervals(agent_turns)
    customer = speech_intervals(customer_turns, join_gap_ms=join_ms)
    agent_stretches = speech_intervals(agent_turns, join_gap_ms=join_ms)
    out: list[Finding] = []
    flagged: set[tuple[int, int]] = set()
    for s, _ in agent_words:  # every point where the agent starts talking after a pause
        hit = _active(customer, s)
        if hit is None or hit in flagged:
            continue
        e = next((b for a, b in agent_stretches if a <= s < b), s)
        end = min(e, hit[1])
        overlap = _simultaneous_ms(agent_words, customer_words, s, end)
        if overlap < cfg.min_overlap_s * 1000:
            continue
        flagged.add(hit)
        turn = next((t for t in agent_turns if t.start_ms <= s + 200 and t.end_ms >= s), None)
        quote = evidence(turn) if turn is not None else ""
        text = f"agent spoke over the customer for {overlap / 1000:.1f} s: {quote}".rstrip(": ")
        out.append(Finding("talk_over", cfg.severity, text, s, end, "agent", f"{overlap / 1000:.1f}"))
    return out


def _timed_text(turn: Turn) -> str:
    """What a turn said in the time its words take: the words with a duration when it has word times (a word
    squeezed into an instant is a recogniser artefact, not speech), else its text."""
    if not turn.words:
        return turn.text
    return " ".join(w.text for w in turn.words if w.end_ms > w.start_ms)


def speech_rate_rule(ctx: RuleContext) -> list[Finding]:
    """The agent's rate over the call: words per minute (English) or characters per minute (Chinese) of speaking
    time (word-timed speech, pauses under ``max_pause_s`` included; only words that take time are counted)."""
    cfg = ctx.config.speech_rate
    agent = ctx.transcript.of("agent")
    join_ms = round(cfg.max_pause_s * 1000)
    speaking_ms = sum(e - s for s, e in speech_intervals(agent, join_gap_ms=join_ms))
    if not agent or speaking_ms < max(cfg.min_speech_s * 1000, 1):
        return []
    zh_chars = sum(cjk_chars(_timed_text(t)) for t in agent if t.lang == "zh")
    en_words = sum(len(_WORD.findall(_timed_text(t))) for t in agent if t.lang != "zh")
    zh_ms = sum(e - s for s, e in speech_intervals((t for t in agent if t.lang == "zh"), join_gap_ms=join_ms))
    en_ms = speaking_ms - zh_ms
    findings: list[Finding] = []
    start, end = agent[0].start_ms, max(t.end_ms for t in agent)
    if en_ms >= cfg.min_speech_s * 1000 and en_words:
        wpm = en_words * 60_000 / en_ms
        if wpm > cfg.max_wpm_en:
            text = f"{wpm:.0f} words/min over {en_ms / 1000:.0f} s of agent speech (limit {cfg.max_wpm_en:g})"
            findings.append(Finding("speech_rate", cfg.severity, text, start, end, "agent", f"{wpm:.0f} wpm"))
    if zh_ms >= cfg.min_speech_s * 1000 and zh_chars:
        cpm = zh_chars * 60_000 / zh_ms
        if cpm > cfg.max_cpm_zh:
            text = f"每分钟 {cpm:.0f} 字 ({zh_ms / 1000:.0f} s, limit {cfg.max_cpm_zh:g})"
            findings.append(Finding("speech_rate", cfg.severity, text, start, end, "agent", f"{cpm:.0f} cpm"))
    return findings
