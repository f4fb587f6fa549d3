"""The dialer loop: claim due contacts, check them, place the calls within the channel limits, record outcomes.

Every ``tick_s`` the :class:`Dialer` looks at each running campaign and claims as many due contacts as it has free
channels. The limit is the campaign's ``max_channels`` and the dialer's ``max_channels`` overall, counting this
dialer's calls in flight. Each claimed attempt then goes through these steps:

1. :func:`telephony.dialer.policy.dial_blockers` runs again at dial time. Outside the calling window, the queued
   attempt is released and the contact waits for the next opening. On the DNC list, without the consent the kind
   needs, or out of attempts, the attempt is cancelled and the contact finished with that reason.
2. The attempt is committed as ``dialing``, then the :class:`CallPlacer` places the call. The placer reports
   ``ringing`` and ``answered`` as they happen and returns the outcome.
3. The attempt is closed and, in the same transaction, the contact is rescheduled (retry delay of the outcome,
   moved to the next opening) or finished. An opt-out ("stop calling me") puts the number on the DNC list first.
   For a contact with a customer id, ``on_recorded`` then writes the attempt to the customer's profile.

A campaign whose abandon rate of the day (abandoned / answered attempts, UTC day) goes over ``max_abandon_rate``
(3 %) is paused, so that a supervisor looks at why calls are answered and not served before more are placed.

On start, :meth:`Dialer.run` settles what a previous run of this dialer id left (:meth:`DialerStore.recover`), so
a crash never redials a live attempt and never loses one. Store calls run in worker threads; the loop never
blocks. Times come from the injected clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from core.clock import Clock, SystemClock
from core.errors import ConflictError, VoxdeskError
from core.logging import get_logger
from telephony.dialer.attempts import FINAL_STATES, TRANSITIONS, AttemptState, RetryPolicy
from telephony.dialer.calendar import CallingCalendar, parse_calendar, zone
from telephony.dialer.campaigns import Campaign, CampaignBook
from telephony.dialer.policy import Blocker, ContactState, dial_blockers
from telephony.dialer.store import Claim, DialerStore, DueContact

log = get_logger(__name__)

__all__ = [
    "AttemptRecorded",
    "CallPlacer",
    "ConsentLookup",
    "DialEvents",
    "DialRequest",
    "DialResult",
    "Dialer",
    "ResultSink",
]

ConsentLookup = Callable[[str], bool | None]
"""``customer_id`` → the customer's marketing-calls consent, ``None`` for an unknown customer (blocking; one
indexed read)."""

_FINAL_OF: Mapping[Blocker, str] = {
    Blocker.DNC: "blocked_dnc",
    Blocker.NO_CONSENT: "no_consent",
    Blocker.MAX_ATTEMPTS: "attempts_exhausted",
    Blocker.FINISHED: "finished",
}


@dataclass(frozen=True)
class DialRequest:
    """One call to place."""

    attempt_id: str
    campaign: Campaign
    phone: str
    language: str
    customer_id: str | None
    fields: Mapping[str, str]
    ring_timeout_s: float


@dataclass(frozen=True)
class DialResult:
    """How a placed call ended."""

    outcome: AttemptState
    """``completed``, ``voicemail``, ``abandoned``, ``busy``, ``no_answer`` or ``failed``."""
    sip_code: int | None = None
    call_id: str | None = None
    final: str | None = None
    """The contact's final outcome when the call settles it (``reached``, ``promised``, ``declined``…)."""
    opt_out: bool = False
    """The callee asked not to be called again: the number goes on the DNC list."""
    result: Mapping[str, Any] = field(default_factory=dict)
    """Fields the dialog captured (promise-to-pay date, scores, interest…)."""


@dataclass(frozen=True)
class AttemptRecorded:
    """A placed attempt that has been recorded: what the profile store's timeline and tags get."""

    attempt_id: str
    campaign: Campaign
    phone: str
    customer_id: str | None
    fields: Mapping[str, str]
    """The contact's dialing-list fields (a marketing contact's ``product_id``…)."""
    outcome: AttemptState
    final: str | None
    """The contact's final outcome when the attempt finished it; ``None`` when it will be tried again."""
    result: Mapping[str, Any]
    call_id: str | None
    at: datetime


ResultSink = Callable[[AttemptRecorded], None]
"""Writes a recorded attempt elsewhere (the customer's timeline and tags); blocking, run in a worker thread. Its
failure is logged and never undoes the attempt."""


class DialEvents(Protocol):
    """What the placer reports while the call is in progress (each at most once, in this order)."""

    async def ringing(self) -> None: ...

    async def answered(self, *, machine: bool | None = None) -> None: ...


class CallPlacer(Protocol):
    """Places one outbound call and runs the campaign's dialog on it (a media worker, or a fake in tests)."""

    async def place(self, request: DialRequest, events: DialEvents) -> DialResult: ...


class _Progress:
    """The store side of :class:`DialEvents` for one attempt: moves it ``dialing → ringing → answered``."""

    def __init__(self, store: DialerStore, attempt_id: str) -> None:
        self._store = store
        self._id = attempt_id
        self.state = AttemptState.DIALING

    async def ringing(self) -> None:
        if self.state is AttemptState.DIALING:
            await asyncio.to_thread(self._store.move, self._id, self.state, AttemptState.RINGING)
            self.state = AttemptState.RINGING

    async def answered(self, *, machine: bool | None = None) -> None:
        if self.state in (AttemptState.DIALING, AttemptState.RINGING):
            await asyncio.to_thread(self._store.move, self._id, self.state, AttemptState.ANSWERED, machine=machine)
            self.state = AttemptState.ANSWERED


class Dialer:
    """One dialer process's loop over the running campaigns."""

    def __init__(
        self,
        store: DialerStore,
        campaigns: CampaignBook,
        placer: CallPlacer,
        *,
        consent: ConsentLookup,
        dialer_id: str,
        on_recorded: ResultSink | None = None,
        max_abandon_rate: float = 0.03,
        abandon_min_answered: int = 20,
        max_channels: int = 16,
        tick_s: float = 1.0,
        clock: Clock | None = None,
    ) -> None:
        self._store = store
        self._campaigns = campaigns
        self._placer = placer
        self._consent = consent
        self._on_recorded = on_recorded
        self.max_abandon_rate = max_abandon_rate
        self.abandon_min_answered = abandon_min_answered
        self._abandon_checked: dict[str, float] = {}
        self.dialer_id = dialer_id
        self.max_channels = max_channels
        self._tick_s = tick_s
        self._clock = clock or SystemClock()
        self._in_flight: dict[str, set[asyncio.Task[None]]] = {}
        self._calendars: dict[str, CallingCalendar] = {}

    @property
    def live_calls(self) -> int:
        """Attempts of this dialer being checked or placed now."""
        return sum(len(t) for t in self._in_flight.values())

    async def run(self) -> None:
        """Recover, then dial until cancelled; cancelling waits for the calls in flight to be recorded."""
        await asyncio.to_thread(self._store.recover, self._reschedule, dialer_id=self.dialer_id)
        try:
            while True:
                await self.tick()
                await self._clock.sleep(self._tick_s)
        finally:
            await self.drain()

    async def drain(self) -> None:
        """Wait for every attempt in flight to finish and be recorded."""
        tasks = [t for ts in self._in_flight.values() for t in ts]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def tick(self) -> int:
        """Claim and start attempts for every running campaign; returns how many were started."""
        started = 0
        for campaign in await asyncio.to_thread(self._campaigns.running):
            if await self._over_abandon_ceiling(campaign):
                continue
            mine = self._in_flight.setdefault(campaign.campaign_id, set())
            free = min(campaign.max_channels - len(mine), self.max_channels - self.live_calls)
            if free <= 0:
                continue
            try:
                claims = await asyncio.to_thread(
                    self._store.claim_due, campaign.campaign_id, limit=free, dialer_id=self.dialer_id
                )
            except ConflictError:  # another dialer won this round
                continue
            for claim in claims:
                task = asyncio.create_task(self._attempt(campaign, claim), name=f"dial-{claim.attempt_id}")
                mine.add(task)
                task.add_done_callback(mine.discard)
                started += 1
        return started

    async def _over_abandon_ceiling(self, campaign: Campaign) -> bool:
        """Pause ``campaign`` when today's abandon rate (UTC day) is above ``max_abandon_rate`` over at least
        ``abandon_min_answered`` answered attempts; checked every 30 s per campaign. Returns whether it was paused."""
        now = self._clock.monotonic()
        if now - self._abandon_checked.get(campaign.campaign_id, -1e9) < 30.0:
            return False
        self._abandon_checked[campaign.campaign_id] = now
        day = self._clock.now().astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        answered, abandoned = await asyncio.to_thread(self._store.answered_today, campaign.campaign_id, day)
        if answered < self.abandon_min_answered or abandoned <= self.max_abandon_rate * answered:
            return False
        log.error("abandon rate over the ceiling; pausing the campaign", campaign_id=campaign.campaign_id,
                  answered=answered, abandoned=abandoned, ceiling=self.max_abandon_rate)  # fmt: skip
        with contextlib.suppress(ConflictError):  # moved meanwhile (paused or stopped by a person)
            await asyncio.to_thread(self._campaigns.set_status, campaign.campaign_id, "paused")
        return True

    # --- one attempt ---------------------------------------------------------------------------------------

    def _calendar(self, campaign: Campaign) -> CallingCalendar:
        cal = self._calendars.get(campaign.campaign_id)
        if cal is None:
            cal = parse_calendar(campaign.config.get("calendar") or {})
            self._calendars[campaign.campaign_id] = cal
        return cal

    def _retry_time(
        self, campaign: Campaign, contact: DueContact, outcome: AttemptState, at: datetime
    ) -> datetime | None:
        """When a contact whose attempt ended with ``outcome`` at ``at`` is tried again (moved into its calling
        window), or ``None`` when it is done. ``contact.attempts`` counts the attempt that ended."""
        policy = RetryPolicy.from_minutes(campaign.max_attempts, campaign.config.get("retry_minutes"))
        retry_at = policy.retry_at(outcome, at, contact.attempts)
        if retry_at is None:
            return None
        return self._calendar(campaign).next_opening(retry_at, [zone(z) for z in contact.zones])

    def _reschedule(self, contact: DueContact, outcome: AttemptState, at: datetime) -> datetime | None:
        """:meth:`_retry_time` for recovery, which knows only the contact (blocking: reads the campaign)."""
        return self._retry_time(self._campaigns.get(contact.campaign_id), contact, outcome, at)

    async def _attempt(self, campaign: Campaign, claim: Claim) -> None:
        try:
            await self._checked_attempt(campaign, claim)
        except VoxdeskError as exc:  # the attempt stays where it is; recovery settles it
            log.error("dial attempt not recorded", attempt_id=claim.attempt_id, error=exc.code)
        except Exception:  # the loop's task root: one attempt never stops the dialer
            log.exception("dial attempt crashed", attempt_id=claim.attempt_id)

    async def _checked_attempt(self, campaign: Campaign, claim: Claim) -> None:
        contact = claim.contact
        now = self._clock.now()
        zones = [zone(z) for z in contact.zones]
        on_dnc = bool(await asyncio.to_thread(self._store.dnc_numbers, [contact.phone]))
        consent = await asyncio.to_thread(self._consent, contact.customer_id) if contact.customer_id else None
        state = ContactState(zones, on_dnc=on_dnc, marketing_consent=consent, attempts=contact.attempts)
        blockers = dial_blockers(
            state, now, kind=campaign.kind, calendar=self._calendar(campaign), max_attempts=campaign.max_attempts
        )
        if blockers == [Blocker.OUTSIDE_WINDOW]:
            opening = self._calendar(campaign).next_opening(now, zones)
            await asyncio.to_thread(self._store.release, claim.attempt_id, opening, "outside_window")
            return
        if blockers:
            final = next((_FINAL_OF[b] for b in blockers if b in _FINAL_OF), "blocked")
            await asyncio.to_thread(
                self._store.close, claim.attempt_id, AttemptState.QUEUED, AttemptState.CANCELLED,
                retry_at=None, final=final, detail=",".join(blockers),
            )  # fmt: skip
            return
        await asyncio.to_thread(self._store.move, claim.attempt_id, AttemptState.QUEUED, AttemptState.DIALING)
        progress = _Progress(self._store, claim.attempt_id)
        request = DialRequest(
            claim.attempt_id,
            campaign,
            contact.phone,
            contact.language,
            contact.customer_id,
            contact.fields,
            float(campaign.config.get("ring_timeout_s", 30)),
        )
        try:
            result = await self._placer.place(request, progress)
        except Exception:  # a placer failure is the outcome of the attempt, never of the loop
            log.exception("call placement failed", attempt_id=claim.attempt_id)
            result = DialResult(AttemptState.FAILED, final=None)
        await self._record(campaign, claim, progress.state, result)

    async def _record(self, campaign: Campaign, claim: Claim, state: AttemptState, result: DialResult) -> None:
        contact = claim.contact
        outcome = result.outcome
        if outcome not in TRANSITIONS[state] or outcome not in FINAL_STATES:
            # an answered outcome without an answer, or a ring outcome after one: the placer is wrong
            log.warning("placer outcome does not fit the call", state=str(state), outcome=str(outcome))
            outcome = AttemptState.FAILED
        retry_at: datetime | None = None
        final = result.final
        if result.opt_out:
            await asyncio.to_thread(self._store.add_dnc, contact.phone, reason="opt_out", source=campaign.campaign_id)
            final = "opted_out"
        elif final is None:
            counted = dataclasses.replace(contact, attempts=contact.attempts + 1)
            retry_at = self._retry_time(campaign, counted, outcome, self._clock.now())
            if retry_at is None and outcome is not AttemptState.COMPLETED:
                final = "attempts_exhausted" if counted.attempts >= campaign.max_attempts else outcome.value
        await asyncio.to_thread(
            self._store.close, claim.attempt_id, state, outcome,
            retry_at=retry_at, final=final, result=result.result, sip_code=result.sip_code, call_id=result.call_id,
        )  # fmt: skip
        if self._on_recorded is not None and contact.customer_id:
            settled = (final or outcome.value) if retry_at is None else None
            recorded = AttemptRecorded(
                claim.attempt_id, campaign, contact.phone, contact.customer_id, contact.fields, outcome, settled,
                result.result, result.call_id, self._clock.now(),
            )  # fmt: skip
            try:
                await asyncio.to_thread(self._on_recorded, recorded)
            except Exception:  # the attempt is recorded; the profile write is best effort and logged
                log.exception("attempt result not written to the profile", attempt_id=claim.attempt_id)
