"""The dialog of an outbound campaign call: the campaign kind's flow, its outcome, voicemail, "stop calling me".

:class:`CampaignEngine` is a :class:`agent.navigator.engine.DialogEngine` that starts in the flow of the campaign's
kind (``campaign_<kind>`` in ``flows/campaigns.yaml``), with the contact's dialing-list fields and the campaign's
dialog configuration as variables (dates and amounts typed, so that they are read out as dates and money), and:

* runs ``outcome`` steps, which record the contact's final outcome, an opt-out and captured fields
  (:attr:`CampaignEngine.final`, :attr:`CampaignEngine.opt_out`, :attr:`CampaignEngine.captured`);
* honours an opt-out at any point of the call ("不要再打了", "stop calling me", "remove my number"): the
  ``campaign_opt_out`` flow confirms it and records ``opted_out`` (the dialer then puts the number on the DNC list);
* leaves the ``campaign_voicemail`` message on an answering machine (:meth:`CampaignEngine.leave_voicemail`).

Dialog configuration keys (``dialog`` in the campaign config, all optional): ``bank_name_zh``/``bank_name_en``,
``callback_number``, ``product_name_zh``/``product_name_en``, ``script_id`` (marketing: the approved marketing
script, resolved to ``product_script`` by the caller), ``voicemail`` (``message`` or ``hangup``). Pure; any thread
(the session runs it on its executor).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

from agent.navigator.actions import Action
from agent.navigator.banking import CoreBanking
from agent.navigator.engine import DialogEngine
from agent.navigator.flows import FlowSet, Lang, OutcomeStep, Step
from knowledge.library import Question

__all__ = [
    "CAMPAIGN_FLOWS",
    "OPT_OUT_FLOW",
    "VOICEMAIL_FLOW",
    "CampaignEngine",
    "campaign_variables",
    "is_opt_out",
]

CAMPAIGN_FLOWS: Mapping[str, str] = {
    kind: f"campaign_{kind}" for kind in ("identity_verification", "collection", "notification", "survey", "marketing")
}
"""Campaign kind → the flow its calls start in."""
VOICEMAIL_FLOW = "campaign_voicemail"
OPT_OUT_FLOW = "campaign_opt_out"

DEFAULT_BANK_NAME = {"zh": "沃思德演示银行", "en": "Voxdesk Demo Bank"}
DEFAULT_CALLBACK_NUMBER = "95500"

_OPT_OUT = re.compile(
    r"(?:不要|别|不用|请勿|不许)再?(?:给我)?(?:打|来电|打电话|打过来|联系)|再也别打|拉黑|把我(?:的号码)?(?:删|移)"
    r"|\bstop (?:calling|ringing|phoning)\b|\b(?:don'?t|do not|never) (?:call|ring|phone|contact) (?:me|this number)"
    r"|\bremove (?:me|my number)\b|\btake (?:me|my number) off\b|\bunsubscribe\b|\bput me on (?:the|your) do not call",
    re.IGNORECASE,
)
_DATE_FIELDS = ("due_date", "expiry_date", "maturity_date")
_AMOUNT_FIELDS = ("amount_due", "amount")


def is_opt_out(text: str) -> bool:
    """Whether the callee asks not to be called again (Chinese or English)."""
    return _OPT_OUT.search(text) is not None


def _typed(name: str, value: str) -> object:
    if name in _DATE_FIELDS:
        try:
            return date.fromisoformat(value)
        except ValueError:
            return value
    if name in _AMOUNT_FIELDS:
        try:
            return Decimal(value.replace(",", ""))
        except InvalidOperation:
            return value
    return value


def campaign_variables(fields: Mapping[str, str], dialog: Mapping[str, Any], lang: Lang) -> dict[str, object]:
    """The flow variables of one contact: the list's ``fields`` (dates and amounts typed) and the dialog config's
    bank name, callback number, product name and script in the call's language."""
    variables: dict[str, object] = {name: _typed(name, str(value)) for name, value in fields.items()}
    variables["bank_name"] = str(dialog.get(f"bank_name_{lang}") or DEFAULT_BANK_NAME[lang])
    variables["callback_number"] = str(dialog.get("callback_number") or DEFAULT_CALLBACK_NUMBER)
    variables["product_name"] = str(dialog.get(f"product_name_{lang}") or dialog.get("product_name") or "")
    variables["product_script"] = str(dialog.get("product_script") or "")
    return variables


class CampaignEngine(DialogEngine):
    """The dialog of one campaign call (see the module docstring)."""

    def __init__(
        self,
        flows: FlowSet,
        *,
        kind: str,
        fields: Mapping[str, str],
        dialog: Mapping[str, Any],
        banking: CoreBanking,
        questions: Mapping[str, Question],
        lang: Lang,
        customer_id: str | None,
        today: date,
    ) -> None:
        if kind not in CAMPAIGN_FLOWS:
            raise ValueError(f"unknown campaign kind {kind!r}")
        super().__init__(
            flows, banking=banking, questions=questions, lang=lang, customer_id=customer_id, today=today,
            start_flow=CAMPAIGN_FLOWS[kind], variables=campaign_variables(fields, dialog, lang),
        )  # fmt: skip
        self.kind = kind
        self.final: str | None = None
        """The contact's final outcome, once an ``outcome`` step set one."""
        self.opt_out = False
        self.captured: dict[str, object] = {}
        """Fields captured by ``outcome`` steps (promise date, score, reason, interest…)."""

    def leave_voicemail(self) -> list[Action]:
        """The answering machine's greeting ended: the voicemail message, then hang up (instead of :meth:`start`)."""
        self.start_flow = VOICEMAIL_FLOW
        return self.start()

    def on_utterance(self, text: str, intent: Any = None) -> list[Action]:
        """As :meth:`DialogEngine.on_utterance`, except that an opt-out is honoured at once, whatever was asked."""
        if not self.finished and self.start_flow != VOICEMAIL_FLOW and is_opt_out(text):
            self._note_caller(text)
            return self._restart_in(OPT_OUT_FLOW)
        return super().on_utterance(text, intent)

    def _exec_other(self, step: Step, out: list[Action]) -> None:
        if not isinstance(step, OutcomeStep):
            super()._exec_other(step, out)
            return
        if step.final is not None:
            self.final = step.final
        self.opt_out = self.opt_out or step.opt_out
        for name, ref in step.fields.items():
            value = self.variables.get(ref[1:]) if ref.startswith("$") else ref
            self.captured[name] = value.isoformat() if isinstance(value, date) else value
