"""Bilingual dialog flows of the voice navigator, declared in YAML and validated into frozen pydantic models.

A flow file holds ``prompts`` (key → ``{zh, en}``) and ``flows``. A flow is a list of steps; each step names the
step that follows (``next``; none = the flow is done and control returns to the step after the one that started it).
Step kinds:

* ``say`` — speak a prompt (``interruptible: false`` for disclosures, which play to the end);
* ``ask`` — fill one slot (``digits`` of a ``length``, ``date``, ``amount``, ``yes_no``, ``number`` from ``minimum``
  to ``maximum``, ``text`` (the caller's words as said), ``choice`` or ``branch``, the last two with options that
  have zh/en synonyms and a DTMF key; a ``branch`` option names a ``goto`` step);
  ``prompt``, ``reprompt`` (no match), ``no_input``; at most 2 reprompts, then ``on_fail`` or a transfer;
* ``intent`` — listen for the caller's request and route it: the intent's flow, its approved answer, or a transfer
  to the question's skill group; low-confidence intents are confirmed first (``confirm``, a template with
  ``{question}``); ``keypad`` maps DTMF keys to question ids (``agent`` = a human);
* ``call`` — one core-banking operation (:data:`Operation`) with ``args`` (``$variable`` or a literal) and a
  ``result`` variable (a quote also sets ``<result>_<field>``);
* ``branch`` — ``cases`` of ``if`` (``var``, ``not var``, ``var == value``, ``!=``, ``<``, ``<=``, ``>``, ``>=``)
  and ``goto``, then ``else``;
* ``outcome`` — record the outcome of an outbound campaign call (``final``, ``opt_out``, captured ``fields``);
* ``flow`` — run a named flow; ``answer`` — play the question's approved script; ``transfer`` (``skill_group``,
  ``reason``); ``end`` (optional prompt, then hang up).

Prompts are a key of ``prompts`` or inline ``{zh, en}``; both languages are required. Templates use ``{variable}``.
The loader (:func:`load_flows`) is in :mod:`agent.navigator.flow_loader`. Pure data; any thread.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "AnswerStep",
    "AskStep",
    "BranchCase",
    "BranchStep",
    "CallStep",
    "Choice",
    "Condition",
    "EndStep",
    "Flow",
    "FlowSet",
    "FlowStep",
    "IntentStep",
    "Lang",
    "Operation",
    "OutcomeStep",
    "PromptRef",
    "SayStep",
    "Slot",
    "SlotType",
    "Step",
    "Text",
    "TransferStep",
    "parse_condition",
]

Lang = Literal["zh", "en"]
SlotType = Literal["digits", "date", "amount", "yes_no", "choice", "branch", "number", "text"]
Operation = Literal["verify_identity", "balance", "installment_quote", "book_appointment", "report_lost_card"]
_ID = r"^[a-z][a-z0-9_]{0,63}$"
_FROZEN = ConfigDict(frozen=True, extra="forbid")


class Text(BaseModel):
    """One prompt in both languages."""

    model_config = _FROZEN
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def in_lang(self, lang: Lang) -> str:
        return self.zh if lang == "zh" else self.en


PromptRef = str | Text
"""A key of :attr:`FlowSet.prompts`, or an inline text."""


class Choice(BaseModel):
    """One option of a ``choice``/``branch`` slot; ``value`` (default ``id``) is what the slot variable holds."""

    model_config = _FROZEN
    id: str = Field(pattern=_ID)
    label: Text
    synonyms_zh: tuple[str, ...] = ()
    synonyms_en: tuple[str, ...] = ()
    dtmf: str = Field(pattern=r"^[0-9*#]$")
    value: str | None = None
    goto: str | None = None
    """``branch`` slots: the step to go to when this option is chosen."""

    @property
    def slot_value(self) -> str:
        return self.value if self.value is not None else self.id


class Slot(BaseModel):
    model_config = _FROZEN
    name: str = Field(pattern=_ID)
    type: SlotType
    length: int | None = Field(default=None, ge=1, le=32)
    """``digits``: how many digits (also the DTMF digits to collect)."""
    options: tuple[Choice, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    """``number``: the whole numbers accepted (a survey score 1–5), said or keyed."""


class _StepBase(BaseModel):
    model_config = _FROZEN
    id: str = Field(pattern=_ID)
    next: str | None = None


class SayStep(_StepBase):
    kind: Literal["say"]
    prompt: PromptRef
    interruptible: bool = True


class AskStep(_StepBase):
    kind: Literal["ask"]
    slot: Slot
    prompt: PromptRef
    reprompt: PromptRef
    no_input: PromptRef
    max_reprompts: int = Field(default=2, ge=0, le=2)
    timeout_ms: int = Field(default=5000, ge=500, le=30_000)
    """How long the caller has to start speaking, ms."""
    on_fail: str | None = None
    """Step after the last reprompt failed; none = transfer to a human."""


class IntentStep(_StepBase):
    kind: Literal["intent"]
    prompt: PromptRef
    reprompt: PromptRef
    no_input: PromptRef
    confirm: PromptRef
    """Asked when the top intent's confidence is under ``confirm_below``; ``{question}`` is the question text."""
    confirm_below: float = Field(default=0.75, ge=0.0, le=1.0)
    max_reprompts: int = Field(default=2, ge=0, le=2)
    timeout_ms: int = Field(default=6000, ge=500, le=30_000)
    keypad: dict[str, str] = Field(default_factory=dict)
    """DTMF key → question id, or ``agent`` for a human."""


class CallStep(_StepBase):
    kind: Literal["call"]
    operation: Operation
    args: dict[str, str | int] = Field(default_factory=dict)
    result: str = Field(pattern=_ID)


class BranchCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    when: str = Field(alias="if")
    goto: str


class BranchStep(_StepBase):
    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)
    kind: Literal["branch"]
    cases: tuple[BranchCase, ...] = Field(min_length=1)
    otherwise: str | None = Field(default=None, alias="else")
    """Step when no case holds; none = the next step."""


class FlowStep(_StepBase):
    kind: Literal["flow"]
    flow: str = Field(pattern=_ID)


class AnswerStep(_StepBase):
    kind: Literal["answer"]
    question_id: str | None = None
    """Default: the call's current intent."""


class TransferStep(_StepBase):
    kind: Literal["transfer"]
    skill_group: str | None = None
    """Default: the flow's, else the current question's skill group."""
    reason: str = "transfer"
    prompt: PromptRef | None = None


class OutcomeStep(_StepBase):
    """Record how an outbound campaign call went (:class:`core.events.CampaignOutcome`): the contact's ``final``
    outcome, an opt-out, and ``fields`` to capture (``$variable`` or a literal). A later outcome step adds to and
    overrides an earlier one."""

    kind: Literal["outcome"]
    final: str | None = Field(default=None, pattern=_ID)
    opt_out: bool = False
    fields: dict[str, str] = Field(default_factory=dict)


class EndStep(_StepBase):
    kind: Literal["end"]
    prompt: PromptRef | None = None
    reason: str = "completed"


Step = Annotated[
    SayStep
    | AskStep
    | IntentStep
    | CallStep
    | BranchStep
    | FlowStep
    | AnswerStep
    | TransferStep
    | OutcomeStep
    | EndStep,
    Field(discriminator="kind"),
]


class Flow(BaseModel):
    """A named flow; ``intent`` (a question id) makes it the flow that the router runs for that intent."""

    model_config = _FROZEN
    id: str = Field(pattern=_ID)
    intent: str | None = None
    skill_group: str | None = None
    steps: tuple[Step, ...] = Field(min_length=1)

    def step(self, step_id: str) -> Step:
        for s in self.steps:
            if s.id == step_id:
                return s
        raise KeyError(step_id)


class FlowSet(BaseModel):
    """All flows of a navigator line (``main`` is where a call starts) and their prompts."""

    model_config = _FROZEN
    flows: dict[str, Flow]
    prompts: dict[str, Text]
    default_skill_group: str = "general"

    @property
    def main(self) -> Flow:
        return self.flows["main"]

    def for_intent(self, question_id: str) -> Flow | None:
        """The flow declared for this question id, if any."""
        return next((f for f in self.flows.values() if f.intent == question_id), None)

    def text(self, ref: PromptRef) -> Text:
        return ref if isinstance(ref, Text) else self.prompts[ref]


class Condition(BaseModel):
    """``var`` (truthy), ``not var``, or ``var <op> value`` with a literal ``true``/``false``/number/string."""

    model_config = _FROZEN
    var: str
    op: Literal["truthy", "falsy", "==", "!=", "<", "<=", ">", ">="]
    value: bool | Decimal | str | None = None

    def holds(self, variables: dict[str, object]) -> bool:
        """Whether the condition is true of ``variables`` (a missing variable is ``None``)."""
        got = variables.get(self.var)
        if self.op == "truthy":
            return bool(got)
        if self.op == "falsy":
            return not got
        if self.op in ("==", "!="):
            same = _comparable(got) == self.value
            return same if self.op == "==" else not same
        left, right = _comparable(got), self.value
        if not isinstance(left, Decimal) or not isinstance(right, Decimal):
            return False
        return {"<": left < right, "<=": left <= right, ">": left > right, ">=": left >= right}[self.op]


_CONDITION = re.compile(r"^\s*(?:(not)\s+)?([a-z][a-z0-9_]*)\s*(?:(==|!=|<=|>=|<|>)\s*(\S+))?\s*$")


def parse_condition(text: str) -> Condition:
    """Parse a branch condition; raises :class:`ValueError` for anything else."""
    m = _CONDITION.match(text)
    if m is None or (m.group(1) and m.group(3)):
        raise ValueError(f"bad condition {text!r}")
    negated, var, op, raw = m.groups()
    if op is None:
        return Condition(var=var, op="falsy" if negated else "truthy")
    return Condition(var=var, op=op, value=_literal(raw))


def _literal(raw: str) -> bool | Decimal | str:
    if raw in ("true", "false"):
        return raw == "true"
    try:
        return Decimal(raw)
    except InvalidOperation:
        return raw.strip("'\"")


def _comparable(value: object) -> object:
    if isinstance(value, bool | Decimal | str) or value is None:
        return value
    if isinstance(value, int | float):
        return Decimal(str(value))
    return str(value)
