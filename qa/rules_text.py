"""Rules on what was said: forbidden phrases, the required script steps and their order, agent emotion, customer
complaints and missed marketing opportunities.

Each rule is ``rule(ctx) -> list[Finding]`` over a :class:`qa.rules_base.RuleContext`. Compiled phrase indexes are
cached per rules configuration (a batch shares one), so a rule costs milliseconds per call. Pure; any thread.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from qa.models import Finding, Turn
from qa.rules_base import Hit, PhraseIndex, RuleContext, evidence, starts_between
from qa.rules_config import Bilingual, MarketingNeed, RequiredStep

__all__ = ["complaint_rule", "emotion_rule", "forbidden_rule", "marketing_rule", "required_rule"]


@functools.lru_cache(maxsize=256)
def _index(phrases: Bilingual, tag: str = "") -> PhraseIndex:
    return PhraseIndex(phrases, tag=tag)


def _hit_finding(rule: str, ctx_sev: str, hit: Hit, detail: str) -> Finding:
    return Finding(
        rule_id=rule,
        severity=ctx_sev,  # type: ignore[arg-type]
        evidence=evidence(hit.turn, hit.match.start, hit.match.end),
        start_ms=hit.start_ms,
        end_ms=hit.end_ms,
        channel=hit.turn.channel,
        detail=detail,
    )


def forbidden_rule(ctx: RuleContext) -> list[Finding]:
    """A finding per banned phrase the agent says (negated mentions allowed where the group says so)."""
    cfg = ctx.config.forbidden
    agent = ctx.transcript.of("agent")
    out: list[Finding] = []
    for group in cfg.groups:
        for hit in _index(group.phrases, group.id).hits(agent):
            if hit.negated and group.allow_negated:
                continue
            out.append(_hit_finding("forbidden_phrase", group.severity, hit, f"{group.id}:{hit.match.phrase}"))
    return out


def _anchor(step: RequiredStep, hits: Sequence[Hit]) -> Hit | None:
    if not hits:
        return None
    return hits[-1] if step.within_last_s is not None else hits[0]


def required_rule(ctx: RuleContext) -> list[Finding]:
    """Missing script steps (greeting, identity verification, risk disclosure, closing) and steps out of order."""
    cfg = ctx.config.required
    agent = ctx.transcript.of("agent")
    speech_ms = sum(t.duration_ms for t in agent)
    if not agent or speech_ms < cfg.min_agent_speech_s * 1000:
        return []
    first_ms, last_ms = agent[0].start_ms, max(t.end_ms for t in agent)
    out: list[Finding] = []
    anchors: list[tuple[RequiredStep, Hit]] = []
    for step in cfg.steps:
        trigger: Hit | None = None
        if step.when is not None:
            trigger = _index(step.when).first(agent, negated_ok=False)
            if trigger is None:
                continue  # not required on this call
        hits = [h for h in _index(step.phrases).hits(agent) if not h.negated]
        if step.within_first_s is not None:
            hits = [h for h in hits if h.start_ms <= first_ms + step.within_first_s * 1000]
        if step.within_last_s is not None:
            hits = [h for h in hits if h.end_ms >= last_ms - step.within_last_s * 1000]
        anchor = _anchor(step, hits)
        if anchor is None:
            out.append(_missing(step, agent, trigger, first_ms, last_ms))
            continue
        if step.before_when and trigger is not None and anchor.start_ms > trigger.start_ms:
            out.append(
                Finding(
                    rule_id=cfg.order_rule,
                    severity=cfg.order_severity,
                    evidence=f"{step.id} came after: {evidence(trigger.turn, trigger.match.start, trigger.match.end)}",
                    start_ms=trigger.start_ms,
                    end_ms=anchor.end_ms,
                    channel="agent",
                    detail=f"{step.id}:after_when",
                )
            )
        if step.ordered:
            anchors.append((step, anchor))
    latest: tuple[RequiredStep, Hit] | None = None
    for later, b in anchors:
        if latest is None or b.start_ms >= latest[1].start_ms:
            latest = (later, b)
            continue
        earlier, a = latest
        out.append(
            Finding(
                rule_id=cfg.order_rule,
                severity=cfg.order_severity,
                evidence=f"{later.id} before {earlier.id}: {evidence(b.turn, b.match.start, b.match.end)}",
                start_ms=b.start_ms,
                end_ms=a.end_ms,
                channel="agent",
                detail=f"{later.id}<{earlier.id}",
            )
        )
    return out


def _missing(step: RequiredStep, agent: Sequence[Turn], trigger: Hit | None, first_ms: int, last_ms: int) -> Finding:
    if trigger is not None:
        quote = evidence(trigger.turn, trigger.match.start, trigger.match.end)
        text, t0, t1 = f"no {step.id} although the agent said: {quote}", trigger.start_ms, trigger.end_ms
    elif step.within_first_s is not None:
        window = int(step.within_first_s * 1000)
        text, t0, t1 = f"no {step.id} in the agent's first {step.within_first_s:g} s", first_ms, first_ms + window
    elif step.within_last_s is not None:
        window = int(step.within_last_s * 1000)
        text, t0, t1 = f"no {step.id} in the agent's last {step.within_last_s:g} s", max(0, last_ms - window), last_ms
    else:
        text, t0, t1 = f"the agent never said the {step.id}", first_ms, last_ms
    return Finding(step.rule, step.severity, text, t0, t1, "agent", step.id)


def _per_turn(rule: str, severity: str, hits: Sequence[Hit], extra: Sequence[tuple[Turn, str]]) -> list[Finding]:
    """One finding per turn: the first phrase hit in it, else the sentiment cue."""
    seen: set[tuple[int, int]] = set()
    out: list[Finding] = []
    for hit in hits:
        key = (hit.turn.start_ms, hit.turn.end_ms)
        if key not in seen:
            seen.add(key)
            out.append(_hit_finding(rule, severity, hit, hit.match.phrase))
    for turn, cue in extra:
        key = (turn.start_ms, turn.end_ms)
        if key not in seen:
            seen.add(key)
            out.append(Finding(rule, severity, evidence(turn), turn.start_ms, turn.end_ms, turn.channel, cue))  # type: ignore[arg-type]
    return sorted(out, key=lambda f: f.start_ms)


def _one_per_stretch(findings: Sequence[Finding], other_starts: Sequence[int]) -> list[Finding]:
    """Findings (ordered by start) merged when nothing of the other party starts between them: one complaint said
    over several recogniser segments is one finding, located over all of them, quoting the first."""
    out: list[Finding] = []
    for f in findings:
        last = out[-1] if out else None
        if last is not None and not starts_between(other_starts, last.end_ms, f.start_ms):
            end = max(last.end_ms, f.end_ms)
            out[-1] = Finding(last.rule_id, last.severity, last.evidence, last.start_ms, end, last.channel, last.detail)
        else:
            out.append(f)
    return out


def emotion_rule(ctx: RuleContext) -> list[Finding]:
    """Agent impatience or anger: the rule's phrases, and anger cues of the sentiment lexicon."""
    cfg = ctx.config.emotion
    agent = ctx.transcript.of("agent")
    hits = [h for h in _index(cfg.phrases).hits(agent) if not h.negated]
    extra: list[tuple[Turn, str]] = []
    if cfg.use_sentiment and ctx.sentiment is not None:
        ignored = {c.lower() for c in cfg.ignore_cues}
        empathic = {(h.turn.start_ms, h.turn.end_ms) for h in _index(cfg.empathy).hits(agent) if not h.negated}
        for turn in agent:
            if (turn.start_ms, turn.end_ms) in empathic:
                continue
            cues = ctx.sentiment.score(turn.text, turn.lang).cues
            anger = [
                c
                for c in cues
                if c.kind == "anger" and c.text.lower() not in ignored and (cfg.typographic_cues or not c.typographic)
            ]
            if anger:
                extra.append((turn, f"anger:{anger[0].text}"))
    return _per_turn("agent_emotion", cfg.severity, hits, extra)


def complaint_rule(ctx: RuleContext) -> list[Finding]:
    """Customer complaints and dissatisfaction: the rule's phrases, and turns the sentiment scorer finds
    dissatisfied through a cue of ``cue_kinds`` (complaint, regulator, escalation by default; asking how to
    complain is not one). One finding per stretch of customer speech (until the agent speaks)."""
    cfg = ctx.config.complaint
    customer = ctx.transcript.of("customer")
    hits = [h for h in _index(cfg.phrases).hits(customer) if not h.negated]
    extra: list[tuple[Turn, str]] = []
    if cfg.use_sentiment and ctx.sentiment is not None:
        for turn in customer:
            result = ctx.sentiment.score(turn.text, turn.lang)
            decisive = [c for c in result.cues if c.kind in cfg.cue_kinds and not c.typographic]
            if result.dissatisfied and decisive:
                extra.append((turn, f"{decisive[0].kind}:{decisive[0].text}"))
    agent_starts = [t.start_ms for t in ctx.transcript.of("agent")]
    return _one_per_stretch(_per_turn("customer_complaint", cfg.severity, hits, extra), agent_starts)


@functools.lru_cache(maxsize=256)
def _offer_index(need: MarketingNeed, catalog_names: tuple[str, ...]) -> PhraseIndex:
    return PhraseIndex(tuple(dict.fromkeys(need.offer_phrases.all() + catalog_names)))


def marketing_rule(ctx: RuleContext) -> list[Finding]:
    """A need the customer voiced (not negated) whose products the agent never offered anywhere in the call."""
    cfg = ctx.config.marketing
    customer, agent = ctx.transcript.of("customer"), ctx.transcript.of("agent")
    out: list[Finding] = []
    for need in cfg.needs:
        voiced = _index(need.phrases).first(customer, negated_ok=False)
        if voiced is None:
            continue
        catalog = tuple(n for pid in need.products for n in ctx.product_names.get(pid, ()))
        if _offer_index(need, catalog).first(agent) is not None:
            continue
        quote = evidence(voiced.turn, voiced.match.start, voiced.match.end)
        detail = f"{need.id}:{','.join(need.products)}"
        out.append(Finding("missed_marketing", cfg.severity, quote, voiced.start_ms, voiced.end_ms, "customer", detail))
    return out
