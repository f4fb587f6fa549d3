"""The base of every event and the small vocabularies events share (legs, languages, severities).

Kept apart from :mod:`core.events` so that event modules of one area (:mod:`core.events_dialer`) can define their
events without importing the whole catalogue; :mod:`core.events` re-exports everything here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from core.clock import utcnow

__all__ = ["Event", "Lang", "Leg", "Severity"]

Leg = Literal["customer", "agent", "bot"]
"""Which side of a call: the customer, the human agent, or the voice bot."""

Lang = Literal["zh", "en"]
"""Supported languages: Mandarin Chinese and English."""

Severity = Literal["info", "warning", "critical"]


class Event(BaseModel):
    """Base of all events: immutable, JSON-serialisable."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    at: datetime = Field(default_factory=utcnow)
