"""What the navigator runtime says and publishes on its own: the built-in apology, backchannel matching, the
``IntentDetected`` of a caller turn, and the :class:`~core.events.NavigatorHandoff` an agent's panel shows when a
call is transferred, with card and identity digits masked.

Masking: the values of *sensitive* slots (:func:`sensitive_slots`: every ``digits`` slot and every argument of the
``verify_identity`` operation, e.g. ``card_last4`` and ``birth_date``) have their digits starred in ``slots``, in
bot prompts that repeat them ("the card ending in ****") and in the caller's answers to them (speech or keypad);
every turn then goes through :func:`core.pii.mask_text` (full card, ID, account and phone numbers). Pure; any
thread.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping

from agent.navigator.actions import Transfer
from agent.navigator.flows import AskStep, CallStep, FlowSet, Text
from core.events import IntentDetected, Lang, NavigatorHandoff
from core.ids import CallId, CustomerId, QuestionId
from core.pii import mask_text
from knowledge.library import Question
from nlu.intents import IntentResult

__all__ = [
    "BUILTIN_PROMPTS",
    "NO_AGENT_KEY",
    "backchannel_sets",
    "handoff_event",
    "intent_detected",
    "is_backchannel",
    "mask_digits",
    "normalise",
    "sensitive_slots",
]

NO_AGENT_KEY = "no_agent_free"
"""Prompt key of the built-in apology (also the file stem of its pre-recorded version: ``no_agent_free.wav``)."""

BUILTIN_PROMPTS: Mapping[str, Text] = {
    NO_AGENT_KEY: Text(
        zh="抱歉，现在没有空闲的人工客服，请您稍后再拨。感谢您的来电，再见。",
        en="Sorry, no agent is free right now. Please call again later. Thank you for calling, goodbye.",
    )
}
"""Prompts the runtime speaks without a flow: a transfer with no agent to go to, or one that failed."""

_NORMALISE = re.compile(r"[\s\W_]+", re.UNICODE)
_DIGITS = re.compile(
    r"[0-9０-９零〇一二两三四五六七八九十幺拐洞勾]|\b(?:zero|oh|one|two|three|four|five|six|seven|eight|nine)\b",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    """Lower case with spaces and punctuation removed: how backchannels are compared (``"Uh-huh."`` → ``uhhuh``)."""
    return _NORMALISE.sub("", text.lower())


_TOKEN = re.compile(r"[a-z]+(?:['-][a-z]+)*|[\u3400-\u9fff]")
_HUM = re.compile(r"[mh]+")


def is_backchannel(text: str, words: frozenset[str]) -> bool:
    """Whether ``text`` says nothing but backchannels (``words``, normalised): nothing at all, a listed word or
    phrase, a repetition of listed words (ASR writes "Okay okay", "嗯嗯嗯"), or hums of only m and h ("mhm",
    "hmmm")."""
    norm = normalise(text)
    if not norm or norm in words:
        return True
    tokens = _TOKEN.findall(text.lower())
    return bool(tokens) and all(normalise(t) in words or _HUM.fullmatch(normalise(t)) for t in tokens)


def backchannel_sets(raw: Mapping[Lang, Iterable[str]]) -> dict[Lang, frozenset[str]]:
    """The backchannels of each language, normalised (see :func:`normalise`); empty entries are dropped."""
    return {lang: frozenset(n for n in (normalise(w) for w in words) if n) for lang, words in raw.items()}


def sensitive_slots(flows: FlowSet) -> frozenset[str]:
    """Slots whose values are masked in a handoff: every ``digits`` slot and every variable passed to
    ``verify_identity`` (the identity answers)."""
    names: set[str] = set()
    for flow in flows.flows.values():
        for step in flow.steps:
            if isinstance(step, AskStep) and step.slot.type == "digits":
                names.add(step.slot.name)
            elif isinstance(step, CallStep) and step.operation == "verify_identity":
                names |= {v[1:] for v in step.args.values() if isinstance(v, str) and v.startswith("$")}
    names.discard("customer_id")
    return frozenset(names)


def mask_digits(text: str) -> str:
    """Every digit (``0-9``, full-width, Chinese ``一``…``九``/``幺``/``两``…, English ``one``…``nine``) as ``*``."""
    return _DIGITS.sub("*", text)


def intent_detected(
    call_id: CallId, text: str, result: IntentResult, questions: Mapping[str, Question], lang: Lang
) -> IntentDetected:
    """The ``IntentDetected`` of a caller's utterance: the question id (``None`` out of scope), its text in ``lang``
    as the label (``out_of_scope`` when there is none) and the top confidence."""
    label = result.label
    question = questions.get(label) if label else None
    title = (question.text_zh if lang == "zh" else question.text_en) if question else label
    return IntentDetected(
        call_id=call_id,
        question_id=QuestionId(label) if label else None,
        label=title or "out_of_scope",
        score=round(result.top[0].confidence, 4) if result.top else 0.0,
        text=text,
    )


def handoff_event(
    call_id: CallId,
    transfer: Transfer,
    *,
    sensitive: Collection[str],
    sensitive_turns: Collection[int] = (),
) -> NavigatorHandoff:
    """The :class:`NavigatorHandoff` for ``transfer``: its context with the values of the ``sensitive`` slots and
    the transcript turns at ``sensitive_turns`` (indexes of the caller's answers to those slots) masked."""
    context = transfer.context
    secrets = sorted(
        {value for name, value in context.slots if name in sensitive and len(value.strip()) >= 2},
        key=len,
        reverse=True,
    )

    def clean(text: str) -> str:
        for value in secrets:
            text = text.replace(value, mask_digits(value))
        return mask_text(text)

    transcript = [
        (turn.speaker, clean(mask_digits(turn.text) if i in sensitive_turns else turn.text))
        for i, turn in enumerate(context.transcript)
    ]
    slots = [(name, mask_digits(value) if name in sensitive else clean(value)) for name, value in context.slots]
    return NavigatorHandoff(
        call_id=call_id,
        skill_group=transfer.skill_group,
        reason=context.reason,
        intent=QuestionId(context.intent) if context.intent else None,
        intent_confidence=context.intent_confidence,
        customer_id=CustomerId(context.customer_id) if context.customer_id else None,
        identity_verified=context.identity_verified,
        transcript=transcript,
        slots=slots,
    )
