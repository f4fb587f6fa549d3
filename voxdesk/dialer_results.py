"""Campaign call results into the shared customer profile: a timeline entry per placed attempt, tags per outcome.

:func:`profile_writer` gives the :data:`telephony.dialer.engine.ResultSink` the dialer process runs after each
attempt of a contact that has a customer id (blocking; a worker thread):

* a ``campaign`` timeline entry: the campaign, how the call went and what it captured (``ref`` = the attempt id,
  so the call's recording and transcript can be found from it);
* when the attempt settles the contact, the tag ``campaign:<campaign id>`` = the final outcome, and per outcome:
  ``promise_to_pay`` = the promised date (expires a week after it), ``survey_score`` = the score,
  ``interested:<product id>`` = ``callback`` or ``transfer`` (a lead for the sales team and the marketing engine,
  issue 9), ``calls_opted_out`` = the campaign (the number is on the DNC list as well).

A customer id the profile store does not know is logged and skipped. Phone numbers never reach the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from core.errors import NotFoundError
from core.logging import get_logger
from profiles.models import Tag
from profiles.store import ProfileStore
from telephony.dialer.engine import AttemptRecorded, ResultSink

__all__ = ["describe", "profile_writer", "tags_for"]

log = get_logger(__name__)

_KIND_NAMES = {
    "identity_verification": "identity verification",
    "collection": "payment reminder",
    "notification": "notification",
    "survey": "satisfaction survey",
    "marketing": "product offer",
}


def describe(recorded: AttemptRecorded) -> str:
    """One line for the timeline: ``payment reminder "Card bill reminder": promised (promise_date 2026-12-25)``."""
    campaign = recorded.campaign
    what = recorded.final or f"{recorded.outcome.value}, to be tried again"
    fields = ", ".join(f"{k} {v}" for k, v in recorded.result.items() if v not in (None, ""))
    kind = _KIND_NAMES.get(str(campaign.kind), str(campaign.kind))
    return f'{kind} "{campaign.name}": {what}' + (f" ({fields})" if fields else "")


def _promise_expiry(value: Any) -> datetime | None:
    try:
        day = date.fromisoformat(str(value))
    except ValueError:
        return None
    return datetime.combine(day + timedelta(days=7), time(0), tzinfo=UTC)


def tags_for(recorded: AttemptRecorded, product_id: str | None) -> list[Tag]:
    """The tags a settled attempt puts on the customer (none while the contact will be tried again)."""
    final = recorded.final
    if final is None:
        return []
    campaign_id, result = recorded.campaign.campaign_id, recorded.result
    tags = [Tag(name=f"campaign:{campaign_id}"[:64], value=final, source="dialer")]
    if final == "promised" and result.get("promise_date"):
        promised = str(result["promise_date"])
        tags.append(Tag(name="promise_to_pay", value=promised, source="dialer", expires_at=_promise_expiry(promised)))
    if result.get("score") is not None:
        tags.append(Tag(name="survey_score", value=str(result["score"]), source="dialer"))
    if final == "interested" and product_id:
        tags.append(
            Tag(name=f"interested:{product_id}"[:64], value=str(result.get("interest", "yes")), source="dialer")
        )
    if final == "opted_out":
        tags.append(Tag(name="calls_opted_out", value=campaign_id, source="dialer"))
    return tags


def profile_writer(profiles: ProfileStore) -> ResultSink:
    """The result sink that writes to ``profiles`` (see the module docstring)."""

    def write(recorded: AttemptRecorded) -> None:
        customer_id = recorded.customer_id
        if customer_id is None:
            return
        data: Mapping[str, Any] = {
            "campaign_id": recorded.campaign.campaign_id, "kind": str(recorded.campaign.kind),
            "outcome": recorded.outcome.value, "final": recorded.final, "result": dict(recorded.result),
            "call_id": recorded.call_id,
        }  # fmt: skip
        try:
            profiles.add_timeline(customer_id, "campaign", describe(recorded), ref=recorded.attempt_id,
                                  data=dict(data), at=recorded.at)  # fmt: skip
            product_id = recorded.fields.get("product_id") or recorded.campaign.config.get("product_id")
            for tag in tags_for(recorded, str(product_id) if product_id else None):
                profiles.set_tag(customer_id, tag)
        except NotFoundError:
            log.warning("campaign contact's customer is not in the profile store", attempt_id=recorded.attempt_id)

    return write
