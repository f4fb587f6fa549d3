"""Rules that need more than the words: repeat calls (the call history), the call reason (intent classification)
and personal data read out by the agent (digits said as numerals or as words, both languages).

Pure apart from the injected history and intent functions; any thread.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from core.pii import cn_id_valid, luhn_valid, mask_text
from qa.models import Finding, Turn
from qa.rules_base import RuleContext, evidence, span_ms, starts_between

__all__ = ["DigitRun", "pii_rule", "reason_rule", "repeat_rule", "spoken_digit_runs"]

_REASON_WINDOW_MS = 90_000
"""The call reason is looked for in the customer's turns of the first 90 s (ms)."""

_EN_DIGITS = {
    "zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_ZH_DIGITS = {"零": "0", "〇": "0", "一": "1", "幺": "1", "二": "2", "两": "2", "三": "3", "四": "4", "五": "5",
              "六": "6", "七": "7", "八": "8", "九": "9"}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
_TOKEN = re.compile(r"\d+|[A-Za-z]+|[零〇一幺二两三四五六七八九]|[xX](?![A-Za-z])|\+|[^\s]")
_SEPARATORS = frozenset({"-", ",", ".", "/", "(", ")", "dash", "，", "、", "。"})


@dataclass(frozen=True)
class DigitRun:
    """Consecutive digits said or written in a text (separators, 'double'/'triple' allowed): characters
    ``start:end`` of the text; ``plus`` when a ``+`` came first; ``x`` when it ended with an ID check letter X."""

    digits: str
    start: int
    end: int
    plus: bool = False
    x: bool = False


def spoken_digit_runs(text: str) -> Iterator[DigitRun]:
    """Runs of at least 4 digits in ``text``, whether written ("6222 0212") or said ("six two two two")."""
    digits: list[str] = []
    start = end = -1
    plus = False
    pending = 1
    for m in _TOKEN.finditer(text):
        tok = m.group()
        low = tok.lower()
        value: str | None = None
        if tok.isdigit() and tok.isascii():
            value = tok
        elif low in _EN_DIGITS and (low not in ("o", "oh") or digits):
            value = _EN_DIGITS[low]
        elif tok in _ZH_DIGITS:
            value = _ZH_DIGITS[tok]
        if value is not None:
            if not digits:
                start = m.start()
            digits.append(value * pending)
            pending, end = 1, m.end()
            continue
        if low in _REPEAT and (digits or pending == 1):
            pending = _REPEAT[low]
            if not digits:
                start = m.start()
            continue
        if tok == "+" and not digits:
            plus = True
            continue
        if low in _SEPARATORS and digits:
            continue
        if low == "x" and digits:
            yield from _emit(digits, start, m.end(), plus, x=True)
        else:
            yield from _emit(digits, start, end, plus, x=False)
        digits, plus, pending = [], tok == "+", 1
    yield from _emit(digits, start, end, plus, x=False)


def _emit(digits: list[str], start: int, end: int, plus: bool, *, x: bool) -> Iterator[DigitRun]:
    joined = "".join(digits)
    if len(joined) >= 4:
        yield DigitRun(joined, start, end, plus, x)


def _pii_kind(run: DigitRun) -> str | None:
    d = run.digits
    if (len(d) == 18 and cn_id_valid(d)) or (len(d) == 17 and run.x and cn_id_valid(d + "X")):
        return "id"
    if 13 <= len(d) <= 19 and (luhn_valid(d) or len(d) >= 16):
        return "card"
    if (len(d) == 11 and d[0] == "1" and d[1] in "3456789") or (len(d) == 13 and d.startswith("861")):
        return "phone"
    if (len(d) == 10 and d[0] in "23456789") or (len(d) == 11 and d.startswith("1") and d[1] in "23456789"):
        return "phone"  # North American numbers, with or without the country code
    if run.plus and 8 <= len(d) <= 15:
        return "phone"
    return None


def pii_rule(ctx: RuleContext) -> list[Finding]:
    """A finding each time the agent reads out a full card number, resident ID number or phone number. The
    evidence is masked (the QA pages must not show the number either)."""
    cfg = ctx.config.pii
    out: list[Finding] = []
    for turn in ctx.transcript.of("agent"):
        for run in spoken_digit_runs(turn.text):
            kind = _pii_kind(run)
            if kind is None or kind not in cfg.kinds:
                continue
            quote = _masked(turn, run)
            t0, t1 = span_ms(turn, run.start, run.end)
            out.append(Finding("agent_pii", cfg.severity, quote, t0, t1, "agent", kind))
    return out


def _masked(turn: Turn, run: DigitRun) -> str:
    text = turn.text[: run.start] + f"[{len(run.digits)} digits ending {run.digits[-4:]}]" + turn.text[run.end :]
    return mask_text(evidence(Turn(turn.channel, text, turn.start_ms, turn.end_ms, turn.lang)))


def repeat_rule(ctx: RuleContext) -> list[Finding]:
    """The same phone number called within a configured window before this call: the tightest window that holds
    the latest earlier call sets the severity."""
    meta = ctx.meta
    windows = sorted(ctx.config.repeat.windows, key=lambda w: w.hours)
    if ctx.history is None or not meta.customer_phone or meta.started_at is None or not windows:
        return []
    prior = ctx.history.prior_calls(meta.customer_phone, meta.started_at, windows[-1].hours)
    if not prior:
        return []
    latest = max(prior, key=lambda p: p.started_at)
    hours = (meta.started_at - latest.started_at).total_seconds() / 3600
    window = next(w for w in windows if hours <= w.hours)
    text = f"{len(prior)} earlier call(s) in the previous {window.hours:g} h; the last {hours:.1f} h before"
    duration = ctx.transcript.duration_ms
    return [Finding("repeat_call", window.severity, text, 0, duration, None, latest.call_id)]


def _customer_stretches(ctx: RuleContext) -> list[list[Turn]]:
    """The customer's turns of the first 90 s, grouped into what the customer says before the agent answers."""
    customer = [t for t in ctx.transcript.of("customer") if t.text.strip()]
    if not customer:
        return []
    until = customer[0].start_ms + _REASON_WINDOW_MS
    agent_starts = [t.start_ms for t in ctx.transcript.of("agent")]
    stretches: list[list[Turn]] = []
    for turn in (t for t in customer if t.start_ms < until):
        previous = stretches[-1][-1] if stretches else None
        if previous is not None and not starts_between(agent_starts, previous.end_ms, turn.start_ms):
            stretches[-1].append(turn)
        else:
            stretches.append([turn])
    return stretches


def reason_rule(ctx: RuleContext) -> list[Finding]:
    """Why the customer called (info): the first request of the customer that the intent classifier recognises
    with at least ``min_confidence``. The customer's speech of the first 90 s is taken stretch by stretch (what
    the customer says before the agent answers); within a stretch each turn and the stretch's first three turns
    together are classified and the most confident wins ("Deposit rates are so low. Is there something steady
    that pays more?" is one request). The earliest stretch with a confident answer decides, so a later side
    question ("and what time do you close?") never replaces the reason the customer opened with. ``detail`` is
    the question id, or ``unknown``."""
    if ctx.intent is None:
        return []
    stretches = _customer_stretches(ctx)
    if not stretches:
        return []
    min_conf = ctx.config.call_reason.min_confidence
    for stretch in stretches:
        candidates: list[tuple[str, Turn, Turn]] = [(t.text, t, t) for t in stretch]
        if len(stretch) > 1:
            candidates.append((" ".join(t.text for t in stretch[:3]), stretch[0], stretch[min(2, len(stretch) - 1)]))
        best: tuple[float, str, Turn, Turn] | None = None
        for text, first, last in candidates:
            label, confidence = ctx.intent(text)
            if label is not None and confidence >= min_conf and (best is None or confidence > best[0]):
                best = (confidence, label, first, last)
        if best is not None:
            _, label, first, last = best
            joined = f"{first.text} … {last.text}"
            quote = evidence(first) if first is last else evidence(Turn(first.channel, joined, 0, 0))
            return [Finding("call_reason", "info", quote, first.start_ms, last.end_ms, "customer", label)]
    turn = stretches[0][0]
    return [Finding("call_reason", "info", evidence(turn), turn.start_ms, turn.end_ms, "customer", "unknown")]
