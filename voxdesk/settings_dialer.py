"""Settings of the outbound dialer process (``voxdesk dialer``, one of the children of ``voxdesk serve``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

__all__ = ["DialerSettings"]


class DialerSettings(BaseModel):
    """Where and how fast the dialer places campaign calls."""

    enabled: bool = True
    """Run the dialer under ``voxdesk serve`` (it idles while no campaign is running)."""
    dialer_id: str = "dialer-0"
    """This dialer's name in the attempts it claims; a restart with the same id settles what it left."""
    media_workers: list[int] | None = None
    """Indexes of the media workers that place calls (``None``: all of ``telephony.media_workers``). Give the dialer
    workers of its own when inbound traffic must never wait for a free slot."""
    max_channels: int = Field(16, ge=1, le=1024)
    """Calls in flight at once over all campaigns (each campaign also has its own ``max_channels``); at most
    4 per media worker."""
    tick_s: float = Field(1.0, gt=0, le=60)
    """How often running campaigns are looked at for due contacts (s)."""
    routes: dict[str, str] = Field(default_factory=lambda: {"": "sip:{number}@127.0.0.1:5090"})
    """E.164 prefix → SIP URI template of the trunk (carrier or SBC) that carries those numbers; the longest
    matching prefix wins. ``{number}`` is the E.164 number with ``+``, ``{digits}`` without it."""
    line: str = "outbound"
    """The outbound line the calls go out on (a ``telephony.lines`` entry of kind ``outbound``, or just a name)."""
    outcome_grace_s: float = Field(3.0, ge=0, le=60)
    """How long after an answered call's hangup the dialog's outcome is waited for (s)."""
    max_call_s: float = Field(900.0, gt=0)
    """An answered outbound call is hung up after this long whatever its dialog does (s)."""
    silent_after_s: float = Field(5.0, gt=0, le=60)
    """A call a person answered on which no campaign dialog speaks within this (s) is abandoned: the information
    message plays and the call is hung up."""
    abandon_message_wav: dict[Literal["zh", "en"], Path] = Field(default_factory=dict)
    """The information message played on an abandoned call, per language (a recording: the bank's name and why it
    called, any rate); none configured: the call is hung up without it."""
    max_abandon_rate: float = Field(0.03, ge=0, le=1)
    """A campaign whose abandoned / answered attempts of the day go over this is paused (3 %: the usual ceiling)."""

    @field_validator("routes")
    @classmethod
    def _templates(cls, routes: dict[str, str]) -> dict[str, str]:
        for prefix, template in routes.items():
            if "{number}" not in template and "{digits}" not in template:
                raise ValueError(f"route {prefix!r}: the template needs {{number}} or {{digits}}")
            if not template.startswith(("sip:", "sips:")):
                raise ValueError(f"route {prefix!r}: the template must be a sip: URI")
        return routes

    def route(self, phone: str) -> str:
        """The SIP URI to dial for the E.164 number ``phone``; raises ``LookupError`` when no route matches."""
        matches = [p for p in self.routes if phone.startswith(p) or phone.lstrip("+").startswith(p.lstrip("+"))]
        if not matches:
            raise LookupError("no dialer route for this number")
        template = self.routes[max(matches, key=len)]
        return template.format(number=phone, digits=phone.lstrip("+"))
