"""Who may be dialed, and when: the checks every attempt passes just before the dialer places the call.

:func:`dial_blockers` returns every reason not to dial a contact now (empty: dial). The reasons are:

* ``outside_window``: not inside the campaign's calling window in the callee's local time (all candidate zones).
* ``dnc``: the number is on the bank's do-not-call list. This applies to every campaign kind.
* ``no_consent``: a marketing or survey campaign, and the customer has not granted ``marketing_calls`` consent.
  An unknown customer has not granted it.
* ``max_attempts``: the contact has used up its attempts.
* ``finished``: the contact already has a final outcome (reached, opted out, wrong number…).

The checks are repeated at dial time, not only at import, so a number added to the DNC list or a consent withdrawn
mid-campaign is honoured at the next attempt. Pure; any thread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal
from zoneinfo import ZoneInfo

from telephony.dialer.calendar import CallingCalendar

__all__ = [
    "CAMPAIGN_KINDS",
    "CONSENT_KINDS",
    "Blocker",
    "CampaignKind",
    "ContactState",
    "dial_blockers",
    "needs_consent",
]

CampaignKind = Literal["identity_verification", "collection", "notification", "survey", "marketing"]
CAMPAIGN_KINDS: Final[tuple[CampaignKind, ...]] = (
    "identity_verification",
    "collection",
    "notification",
    "survey",
    "marketing",
)
CONSENT_KINDS: Final[frozenset[CampaignKind]] = frozenset({"marketing", "survey"})
"""Campaign kinds that need the customer's marketing-calls consent: calls that sell or ask a favour. Service calls
(identity checks, collection reminders, account notifications) are part of the account relationship."""


class Blocker(StrEnum):
    """Why a contact is not dialed now."""

    OUTSIDE_WINDOW = "outside_window"
    DNC = "dnc"
    NO_CONSENT = "no_consent"
    MAX_ATTEMPTS = "max_attempts"
    FINISHED = "finished"


@dataclass(frozen=True)
class ContactState:
    """What the checks need to know about one contact at dial time."""

    zones: Sequence[ZoneInfo]
    """The callee's candidate time zones (from the list's column, else from the number); never empty."""
    on_dnc: bool
    marketing_consent: bool | None
    """The customer's ``marketing_calls`` consent; ``None`` when the contact is not a known customer."""
    attempts: int
    """Attempts already placed (dialed), whatever their outcome."""
    finished: bool = False


def needs_consent(kind: CampaignKind) -> bool:
    """Whether a campaign of ``kind`` may call only customers with marketing-calls consent."""
    return kind in CONSENT_KINDS


def dial_blockers(
    contact: ContactState,
    at: datetime,
    *,
    kind: CampaignKind,
    calendar: CallingCalendar,
    max_attempts: int,
) -> list[Blocker]:
    """Every reason not to dial ``contact`` at ``at`` (aware) in a campaign of ``kind``; empty means dial."""
    out: list[Blocker] = []
    if contact.finished:
        out.append(Blocker.FINISHED)
    if contact.on_dnc:
        out.append(Blocker.DNC)
    if needs_consent(kind) and contact.marketing_consent is not True:
        out.append(Blocker.NO_CONSENT)
    if contact.attempts >= max_attempts:
        out.append(Blocker.MAX_ATTEMPTS)
    if not calendar.allows(at, contact.zones):
        out.append(Blocker.OUTSIDE_WINDOW)
    return out
