"""Phone number normalisation to E.164 and the time zones a number may be in (``phonenumbers``)."""

from __future__ import annotations

import phonenumbers
from phonenumbers import timezone as number_zones

from core.errors import InvalidInputError

__all__ = ["normalise_phone", "number_time_zones", "try_normalise_phone"]


def normalise_phone(raw: str, default_region: str = "CN") -> str:
    """Return ``raw`` as E.164 (``+8613800138000``).

    Accepts spaces, dashes, brackets, ``+86``/``0086`` prefixes and local numbers of ``default_region`` (ISO
    3166 alpha-2). SIP user parts like ``sip:+8613800138000@host`` are not handled here; strip them first.
    Raises :class:`InvalidInputError` when the text is not a valid number.
    """
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        parsed = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise InvalidInputError("not a phone number") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise InvalidInputError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def try_normalise_phone(raw: str, default_region: str = "CN") -> str | None:
    """Like :func:`normalise_phone` but returns ``None`` for text that is not a valid number (for lookups)."""
    try:
        return normalise_phone(raw, default_region)
    except InvalidInputError:
        return None


def number_time_zones(e164: str) -> tuple[str, ...]:
    """The IANA time zones an E.164 number may be in, from its prefix (``("Asia/Shanghai",)`` for +86); empty
    when the number's zone is unknown. A mobile number of a multi-zone country gives all that country's zones."""
    try:
        zones = number_zones.time_zones_for_number(phonenumbers.parse(e164))
    except phonenumbers.NumberParseException:
        return ()
    return tuple(z for z in zones if z != "Etc/Unknown")
