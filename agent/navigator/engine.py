"""The navigator's dialog engine: one per call, synchronous and deterministic, no I/O of its own.

Drive it with :meth:`DialogEngine.start`, then the caller's inputs — :meth:`~DialogEngine.on_utterance` (a final
transcript and the intent classifier's result for it, classified outside), :meth:`~DialogEngine.on_dtmf` (one key),
:meth:`~DialogEngine.on_no_input` (the :class:`Listen` timeout passed) — and carry out the returned
:mod:`agent.navigator.actions` in order. Core-banking calls (:class:`CoreBanking`) run inline, so call the engine
from the call's dialog thread, not the event loop. "人工" / "agent" / "operator" at any point transfers to a human
with the call's context. Not thread-safe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from agent.navigator.actions import Action, Hangup, Listen, PlayAnswer, Say, Transfer, TransferContext, Turn
from agent.navigator.banking import CoreBanking, InstallmentQuote
from agent.navigator.flows import (
    AnswerStep,
    AskStep,
    BranchStep,
    CallStep,
    Choice,
    EndStep,
    Flow,
    FlowSet,
    FlowStep,
    IntentStep,
    Lang,
    PromptRef,
    SayStep,
    Step,
    TransferStep,
    parse_condition,
)
from agent.navigator.slots import is_agent_request, parse_slot, parse_slot_keys, parse_yes_no
from core.errors import InvalidInputError, VoxdeskError
from core.logging import get_logger
from knowledge.library import Question
from nlu.intents import IntentResult

log = get_logger(__name__)

__all__ = ["DialogEngine"]

_DTMF_DIGITS = {"date": 8, "yes_no": 1, "choice": 1, "branch": 1, "amount": 12, "text": 0}
_MAX_STEPS = 500
"""Steps run between two inputs before the engine assumes a loop in the flows and transfers."""


@dataclass
class _Frame:
    flow: Flow
    step_id: str | None


@dataclass
class _Pending:
    step: AskStep | IntentStep
    failures: int = 0
    dtmf: str = ""
    confirming: str | None = None
    """Intent: the question id the caller is asked to confirm."""


class DialogEngine:
    """Runs a :class:`FlowSet` for one call in language ``lang``.

    ``questions`` maps question ids to library questions (skill group, approved answer script, text for
    confirmations); ``customer_id`` is the caller matched by phone number, if any (identity is still verified by the
    flows); ``today`` anchors relative dates ("明天").
    """

    def __init__(
        self,
        flows: FlowSet,
        *,
        banking: CoreBanking,
        questions: Mapping[str, Question],
        lang: Lang = "zh",
        customer_id: str | None = None,
        today: date,
        start_flow: str = "main",
        variables: Mapping[str, object] | None = None,
    ) -> None:
        self._flows = flows
        self._banking = banking
        self._questions = questions
        self.lang: Lang = lang
        self._today = today
        self._vars: dict[str, object] = {
            **(variables or {}), "customer_id": customer_id, "identity_verified": False, "today": today,
        }  # fmt: skip
        self.start_flow = start_flow
        """The flow the call starts in (``main``; a campaign's flow for an outbound call)."""
        self._slot_order: list[str] = []
        self._transcript: list[Turn] = []
        self._stack: list[_Frame] = []
        self._pending: _Pending | None = None
        self._intent_confidence: float | None = None
        self._started = False
        self.finished = False
        """Whether the call has been transferred or hung up (inputs then return no actions)."""

    # --- inputs -------------------------------------------------------------------------------------------

    def start(self) -> list[Action]:
        """The call was answered: the greeting and the first :class:`Listen`."""
        if self._started:
            raise InvalidInputError("the dialog has already started")
        self._started = True
        flow = self._flows.flows[self.start_flow]
        self._stack.append(_Frame(flow, flow.steps[0].id))
        return self._run([])

    def on_utterance(self, text: str, intent: IntentResult | None = None) -> list[Action]:
        """A final transcript of the caller; ``intent`` is the classifier's result for it (needed at intent steps)."""
        if self.finished or not text.strip():
            return []
        self._transcript.append(Turn("caller", text))
        if is_agent_request(text):
            return self._transfer([], None, "caller_request")
        if self._pending is None:
            return []
        out: list[Action] = []
        pending = self._pending
        if isinstance(pending.step, IntentStep):
            return self._intent_text(pending, text, intent, out)
        value = parse_slot(pending.step.slot, text, today=self._today)
        return self._fail(out, no_input=False) if value is None else self._fill(value, out)

    def on_dtmf(self, digit: str) -> list[Action]:
        """One keypad key (``0``–``9``, ``*`` = start again, ``#`` = done)."""
        if self.finished or self._pending is None:
            return []
        self._transcript.append(Turn("dtmf", digit))
        pending, out = self._pending, list[Action]()
        if digit == "*":
            pending.dtmf = ""
            return self._prompt(pending, pending.step.prompt, out)
        if digit != "#":
            pending.dtmf += digit
        if digit != "#" and len(pending.dtmf) < self._dtmf_digits(pending):
            return []
        keys, pending.dtmf = pending.dtmf, ""
        if isinstance(pending.step, IntentStep):
            return self._intent_keys(pending, keys, out)
        value = parse_slot_keys(pending.step.slot, keys, today=self._today)
        return self._fail(out, no_input=False) if value is None else self._fill(value, out)

    def on_no_input(self) -> list[Action]:
        """The caller said nothing within the :class:`Listen` timeout."""
        if self.finished or self._pending is None:
            return []
        return self._fail([], no_input=True)

    # --- state for the runtime ----------------------------------------------------------------------------

    @property
    def variables(self) -> Mapping[str, object]:
        """Slots, call results and built-ins (``customer_id``, ``identity_verified``, ``intent``), read-only view."""
        return dict(self._vars)

    @property
    def transcript(self) -> tuple[Turn, ...]:
        return tuple(self._transcript)

    # --- the step machine ---------------------------------------------------------------------------------

    def _run(self, out: list[Action]) -> list[Action]:
        for _ in range(_MAX_STEPS):
            if self.finished or self._pending is not None:
                return out
            if not self._stack:
                return self._hangup(out, "completed")
            frame = self._stack[-1]
            if frame.step_id is None:
                self._stack.pop()
                continue
            step = frame.flow.step(frame.step_id)
            frame.step_id = step.next
            self._exec(step, frame, out)
        return self._transfer(out, None, "flow_loop")

    def _exec(self, step: Step, frame: _Frame, out: list[Action]) -> None:
        if isinstance(step, SayStep):
            self._say(step.prompt, out, interruptible=step.interruptible)
        elif isinstance(step, AskStep | IntentStep):
            self._pending = _Pending(step)
            self._prompt(self._pending, step.prompt, out)
        elif isinstance(step, CallStep):
            self._call(step, out)
        elif isinstance(step, BranchStep):
            target = next((c.goto for c in step.cases if parse_condition(c.when).holds(self._vars)), step.otherwise)
            frame.step_id = target if target is not None else frame.step_id
        elif isinstance(step, FlowStep):
            flow = self._flows.flows[step.flow]
            self._stack.append(_Frame(flow, flow.steps[0].id))
        elif isinstance(step, AnswerStep):
            self._answer(step.question_id or self._current_intent(), out)
        elif isinstance(step, TransferStep):
            if step.prompt is not None:
                self._say(step.prompt, out)
            self._transfer(out, step.skill_group, step.reason)
        elif isinstance(step, EndStep):
            if step.prompt is not None:
                self._say(step.prompt, out)
            self._hangup(out, step.reason)
        else:
            self._exec_other(step, out)

    def _note_caller(self, text: str) -> None:
        """Add the caller's words to the transcript."""
        self._transcript.append(Turn("caller", text))

    def _restart_in(self, flow_id: str) -> list[Action]:
        """Drop what the dialog was doing and go on in ``flow_id`` (the call ends where that flow ends)."""
        flow = self._flows.flows[flow_id]
        self._pending = None
        self._stack = [_Frame(flow, flow.steps[0].id)]
        return self._run([])

    def _exec_other(self, step: Step, out: list[Action]) -> None:
        """A step kind this engine does not run (``outcome``: see :class:`agent.navigator.campaign.CampaignEngine`);
        skipped with a warning."""
        log.warning("flow step kind not run by this dialog", kind=step.kind, step=step.id)

    def _call(self, step: CallStep, out: list[Action]) -> None:
        args: dict[str, Any] = {
            k: self._vars.get(v[1:]) if isinstance(v, str) and v.startswith("$") else v for k, v in step.args.items()
        }
        try:
            result = self._invoke(step.operation, args)
        except (VoxdeskError, KeyError, TypeError, ValueError):
            self._transfer(out, None, "backend_error")
            return
        self._set(step.result, result)
        if step.operation == "verify_identity":
            self._vars["identity_verified"] = bool(result)
        if isinstance(result, InstallmentQuote):
            for name in ("periods", "principal_per_period", "fee_per_period", "per_period", "total_fee"):
                self._set(f"{step.result}_{name}", getattr(result, name))

    def _invoke(self, op: str, a: dict[str, Any]) -> object:
        customer = a.get("customer_id")
        if not isinstance(customer, str):
            raise ValueError("no customer")
        b = self._banking
        if op == "verify_identity":
            return b.verify_identity(customer, str(a["card_last4"]), a["birth_date"])
        if op == "balance":
            return b.balance(customer)
        if op == "installment_quote":
            return b.installment_quote(customer, Decimal(str(a["amount"])), int(a["periods"]))
        if op == "book_appointment":
            day = a["day"] if isinstance(a["day"], date) else date.fromisoformat(str(a["day"]))
            return b.book_appointment(
                customer, str(a["branch_id"]), datetime.combine(day, time.fromisoformat(a["time"]))
            )
        return b.report_lost_card(customer, str(a["card_last4"]))

    def _answer(self, question_id: str | None, out: list[Action]) -> None:
        question = self._questions.get(question_id) if question_id else None
        if question is not None and question.answer_script_id:
            out.append(PlayAnswer(question.answer_script_id, question.question_id))
            self._transcript.append(Turn("bot", f"[script {question.answer_script_id}]"))

    # --- intent routing -----------------------------------------------------------------------------------

    def _intent_text(self, p: _Pending, text: str, result: IntentResult | None, out: list[Action]) -> list[Action]:
        step = p.step
        assert isinstance(step, IntentStep)
        if p.confirming is not None:
            yes = parse_yes_no(text)
            if yes is True:
                return self._route(p.confirming, out)
            if yes is False:
                p.confirming = None
                return self._fail(out, no_input=False)
        label = result.label if result is not None else None
        if label is None or not self._routable(label):
            return self._fail(out, no_input=False)
        confidence = result.top[0].confidence if result is not None else 0.0
        self._intent_confidence = confidence
        if confidence >= step.confirm_below:
            return self._route(label, out)
        p.confirming = label
        question = self._questions.get(label)
        text_of = (question.text_zh if self.lang == "zh" else question.text_en) if question else label
        self._say(step.confirm, out, extra={"question": text_of})
        out.append(Listen("confirm_intent", step.timeout_ms, 1))
        return out

    def _intent_keys(self, p: _Pending, keys: str, out: list[Action]) -> list[Action]:
        step = p.step
        assert isinstance(step, IntentStep)
        if p.confirming is not None and keys in ("1", "2"):
            if keys == "1":
                return self._route(p.confirming, out)
            p.confirming = None
            return self._fail(out, no_input=False)
        target = step.keypad.get(keys)
        if target == "agent":
            return self._transfer(out, None, "caller_request")
        if target is None or not self._routable(target):
            return self._fail(out, no_input=False)
        self._intent_confidence = 1.0
        return self._route(target, out)

    def _routable(self, question_id: str) -> bool:
        return question_id in self._questions or self._flows.for_intent(question_id) is not None

    def _route(self, question_id: str, out: list[Action]) -> list[Action]:
        """(b) the intent's flow, else (a) its approved answer, else (c) a transfer to its skill group."""
        self._pending = None
        self._vars["intent"] = question_id
        flow = self._flows.for_intent(question_id)
        question = self._questions.get(question_id)
        if flow is not None:
            self._stack.append(_Frame(flow, flow.steps[0].id))
        elif question is not None and question.answer_script_id:
            self._answer(question_id, out)
        else:
            return self._transfer(out, question.skill_group if question else None, "routed")
        return self._run(out)

    # --- slots --------------------------------------------------------------------------------------------

    def _dtmf_digits(self, p: _Pending) -> int:
        if isinstance(p.step, IntentStep):
            return 1 if p.step.keypad or p.confirming else 0
        slot = p.step.slot
        if slot.type == "number":
            return len(str(slot.maximum if slot.maximum is not None else 9))
        return slot.length or 0 if slot.type == "digits" else _DTMF_DIGITS[slot.type]

    def _fill(self, value: object, out: list[Action]) -> list[Action]:
        assert self._pending is not None and isinstance(self._pending.step, AskStep)
        step, self._pending = self._pending.step, None
        if step.slot.type in ("choice", "branch"):
            assert isinstance(value, Choice)
            self._set(step.slot.name, value.slot_value)
            self._set(f"{step.slot.name}_label", value.label.in_lang(self.lang))
            if value.goto is not None:
                self._stack[-1].step_id = value.goto
        else:
            self._set(step.slot.name, value)
        return self._run(out)

    def _fail(self, out: list[Action], *, no_input: bool) -> list[Action]:
        p = self._pending
        assert p is not None
        p.failures += 1
        p.dtmf = ""
        if p.failures > p.step.max_reprompts:
            self._pending = None
            on_fail = p.step.on_fail if isinstance(p.step, AskStep) else None
            if on_fail is None:
                return self._transfer(out, None, "no_input" if no_input else "no_match")
            self._stack[-1].step_id = on_fail
            return self._run(out)
        return self._prompt(p, p.step.no_input if no_input else p.step.reprompt, out)

    # --- output helpers -----------------------------------------------------------------------------------

    def _prompt(self, p: _Pending, ref: PromptRef, out: list[Action]) -> list[Action]:
        self._say(ref, out)
        slot = p.step.slot.name if isinstance(p.step, AskStep) else "intent"
        out.append(Listen(slot, p.step.timeout_ms, self._dtmf_digits(p)))
        return out

    def _say(
        self, ref: PromptRef, out: list[Action], *, interruptible: bool = True, extra: Mapping[str, str] = {}
    ) -> None:
        template = self._flows.text(ref).in_lang(self.lang)
        key = ref if isinstance(ref, str) else None
        text = template
        if "{" in template:
            values = _Values({k: self._format(v) for k, v in self._vars.items()} | dict(extra or {}))
            text, key = template.format_map(values), None
        out.append(Say(text, interruptible, key))
        self._transcript.append(Turn("bot", text))

    def _format(self, value: object) -> str:
        if isinstance(value, bool):
            return ("是" if value else "否") if self.lang == "zh" else ("yes" if value else "no")
        if isinstance(value, Decimal):
            return f"{value:.2f}" if self.lang == "zh" else f"{value:,.2f}"
        if isinstance(value, date):
            return f"{value.year}年{value.month}月{value.day}日" if self.lang == "zh" else value.strftime("%B %-d, %Y")
        return "" if value is None else str(value)

    def _set(self, name: str, value: object) -> None:
        self._vars[name] = value
        if name not in self._slot_order:
            self._slot_order.append(name)

    def _current_intent(self) -> str | None:
        intent = self._vars.get("intent")
        return intent if isinstance(intent, str) else None

    def _skill_group(self, explicit: str | None) -> str:
        if explicit:
            return explicit
        for frame in reversed(self._stack):
            if frame.flow.skill_group:
                return frame.flow.skill_group
        question = self._questions.get(self._current_intent() or "")
        return question.skill_group if question else self._flows.default_skill_group

    def _transfer(self, out: list[Action], skill_group: str | None, reason: str) -> list[Action]:
        verified = self._vars.get("identity_verified") is True
        context = TransferContext(
            reason=reason,
            transcript=tuple(self._transcript),
            intent=self._current_intent(),
            intent_confidence=self._intent_confidence,
            customer_id=customer if isinstance(customer := self._vars.get("customer_id"), str) else None,
            identity_verified=verified,
            slots=tuple((n, self._format(self._vars[n])) for n in self._slot_order),
        )
        out.append(Transfer(self._skill_group(skill_group), context))
        self.finished, self._pending = True, None
        return out

    def _hangup(self, out: list[Action], reason: str) -> list[Action]:
        out.append(Hangup(reason))
        self.finished, self._pending = True, None
        return out


class _Values(dict[str, str]):
    """Template values; a missing variable reads as an empty string."""

    def __missing__(self, key: str) -> str:
        return ""
