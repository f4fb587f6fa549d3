"""One outbound campaign call at run time: a :class:`~agent.navigator.session.NavigatorSession` that waits for the
answering-machine verdict before it speaks and reports the dialog's outcome to the dialer.

The media worker answers nothing itself on an outbound call: ``CallAnswered(by="customer")`` means the callee
picked up, and the detector's ``AnsweringMachine`` verdict follows within a few seconds. Then:

* **a person** (or no telling: silence) — the campaign's flow starts (:class:`agent.navigator.campaign.
  CampaignEngine`): the bank's name and the purpose of the call come first. Should no verdict come within
  ``amd_wait_ms``, the flow starts anyway;
* **a machine** — the session waits for the end of the greeting, then leaves the voicemail message, or, with the
  campaign's ``voicemail: hangup``, hangs up without a word.

Before the bot hangs up or transfers, and at the latest when the call ends (the callee hung up mid-dialog), the
session publishes :class:`core.events.CampaignOutcome` with what the flow recorded: the contact's final outcome,
opt-out, captured fields, whether a machine answered and whether the call went to an agent. Event loop only.
"""

from __future__ import annotations

from typing import Any

from agent.navigator.actions import Action, Hangup, Transfer
from agent.navigator.campaign import CampaignEngine
from agent.navigator.runtime import Timer, TurnTiming
from agent.navigator.session import NavigatorSession, _Input
from core.events import AnsweringMachine, CallAnswered, CampaignCall, CampaignOutcome, Event
from core.logging import get_logger
from core.media import PlayControl

__all__ = ["CampaignSession"]

log = get_logger(__name__)

_GREETING_OVER = ("greeting_ended", "greeting_too_long")


class CampaignSession(NavigatorSession):
    """The session of one campaign call (see the module docstring); ``context`` is the dialer's
    :class:`CampaignCall`; ``amd_wait_ms`` how long after the answer the verdict is waited for (ms)."""

    engine: CampaignEngine

    def __init__(self, *args: Any, context: CampaignCall, amd_wait_ms: int = 6000, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.context = context
        self.machine = False
        self.outcome_sent = False
        self._amd_wait_ms = amd_wait_ms
        self._amd = Timer(self._clock, f"campaign-amd-{self.call_id}")
        self._transferring = False

    async def aclose(self) -> None:
        """Publish the outcome if the bot did not get to (the callee hung up), then close as a navigator call."""
        await self._amd.aclose()
        if not self.outcome_sent:
            await self._send_outcome(reason="call_ended")
        await super().aclose()

    # --- events -----------------------------------------------------------------------------------------------

    def _route(self, event: Event) -> None:
        if isinstance(event, CallAnswered):
            if event.by == "customer" and not self._answered:
                self._amd.arm(self._amd_wait_ms, self._no_verdict)
            return
        if isinstance(event, AnsweringMachine):
            self._on_verdict(event)
            return
        super()._route(event)

    def _on_verdict(self, event: AnsweringMachine) -> None:
        if self._answered:
            return
        if event.verdict != "machine":
            self._amd.cancel()
            self._begin("start")
        elif event.reason in _GREETING_OVER:
            self._amd.cancel()
            self.machine = True
            if self.context.dialog.get("voicemail", "message") == "hangup":
                self._answered = True
                self._enqueue(_Input("machine_hangup"))
            else:
                self._begin("voicemail")
        else:  # a machine: wait for its greeting to end (the detector reports it)
            self.machine = True
            self._amd.arm(25_000, self._no_verdict)

    def _no_verdict(self) -> None:
        if self._answered:
            return
        log.warning("no answering-machine verdict in time; starting the campaign dialog", call_id=self.call_id)
        self._begin("voicemail" if self.machine else "start")

    def _begin(self, kind: str) -> None:
        self._answered = True
        self._enqueue(_Input(kind))

    # --- the dialog -------------------------------------------------------------------------------------------

    async def _step(self, item: _Input) -> None:
        if item.kind == "voicemail":
            await self._carry_out(await self._blocking(self.engine.leave_voicemail), None)
        elif item.kind == "machine_hangup":
            await self._send_outcome(reason="voicemail_hangup")
            self._close_with(PlayControl(self.call_id, "hangup", reason="answering_machine"))
        else:
            await super()._step(item)

    async def _carry_out(self, actions: list[Action], turn: TurnTiming | None) -> None:
        ending = [a for a in actions if isinstance(a, Hangup | Transfer)]
        if ending and not self.outcome_sent:
            self._transferring = isinstance(ending[0], Transfer)
            await self._send_outcome(reason=ending[0].reason if isinstance(ending[0], Hangup) else "transfer")
        await super()._carry_out(actions, turn)

    async def _send_outcome(self, *, reason: str) -> None:
        self.outcome_sent = True
        engine, context = self.engine, self.context
        event = CampaignOutcome(
            call_id=self.call_id, attempt_id=context.attempt_id, campaign_id=context.campaign_id,
            final=engine.final, opt_out=engine.opt_out, machine=self.machine, transferred=self._transferring,
            result={k: v for k, v in engine.captured.items() if v is not None},
        )  # fmt: skip
        log.info("campaign call outcome", call_id=self.call_id, final=event.final, opt_out=event.opt_out,
                 machine=event.machine, reason=reason)  # fmt: skip
        await self._publish(event)
